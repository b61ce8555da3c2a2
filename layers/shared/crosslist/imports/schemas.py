"""What the imports API takes and shows."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from crosslist.db.models import JobStatus
from crosslist.jobs.schemas import JobError
from crosslist.marketplaces import Marketplace

ImportStatus = Literal["running", "completed", "failed", "cancelled"]
MatchStatus = Literal["proposed", "accepted", "rejected"]
MAX_SKIPPED_SHOWN = 500


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marketplaces: list[Marketplace] = Field(
        min_length=1, max_length=3, description="The shops to import: one `import` job each, run side by side"
    )
    migrate_ebay: StrictBool = Field(
        default=False,
        description="Also migrate the eBay listings made on ebay.com or in Seller Hub into eBay's Inventory API, so"
        " crosslist can revise and end them. **eBay's migration is one-way**: a migrated listing cannot go back.",
    )

    @field_validator("marketplaces")
    @classmethod
    def _once_each(cls, marketplaces: list[Marketplace]) -> list[Marketplace]:
        if len(set(marketplaces)) != len(marketplaces):
            raise ValueError("name each marketplace once")
        return marketplaces


class ImportJob(BaseModel):
    marketplace: Marketplace
    job_id: uuid.UUID
    status: JobStatus
    description: str | None = Field(description="What the job is doing, e.g. `200 of 500 inventory items`")
    error: JobError | None


class SkippedListing(BaseModel):
    marketplace: Marketplace
    external_id: str
    url: str | None
    reason: str = Field(description="variations_not_supported, no_price, no_title, not_listed, ended_meanwhile…")


class ImportCounts(BaseModel):
    created: int = Field(default=0, description="Listings that became a new product")
    linked: int = Field(default=0, description="Listings linked to a product they surely are (SKU, or score ≥ 0.9)")
    proposed: int = Field(default=0, description="Listings that may be a product: waiting for the user's answer")
    skipped: int = Field(default=0, description="Listings crosslist cannot represent (see `skipped`)")
    known: int = Field(default=0, description="Listings that already were a product's listing")
    already_imported: int = Field(default=0, description="Listings an earlier import recorded: nothing made again")
    updated: int = Field(default=0, description="Listings read again in another state (sold while importing)")
    sold: int = Field(default=0, description="Listings imported as sold")


class ImportView(BaseModel):
    id: uuid.UUID
    status: ImportStatus = Field(description="running while any job runs; failed when one failed")
    migrate_ebay: bool
    jobs: list[ImportJob]
    counts: ImportCounts = Field(description="Live: they grow page by page")
    skipped: list[SkippedListing] = Field(description=f"The first {MAX_SKIPPED_SHOWN} skipped listings")
    warnings: list[str]
    created_at: datetime


class ImportPage(BaseModel):
    items: list[ImportView] = Field(description="Newest first")


class MatchProduct(BaseModel):
    id: uuid.UUID
    title: str
    price: Decimal
    currency: str
    image_url: str | None


class MatchView(BaseModel):
    id: uuid.UUID
    marketplace: Marketplace
    external_id: str
    url: str | None
    title: str
    price: Decimal | None
    image_url: str | None
    confidence: float = Field(description="How sure crosslist is that the listing is the product (from 0.6)")
    reason: str = Field(
        description="Why: title_price (a close title at the same price), title_price_photo (and the same first photo,"
        " re-hosted), ambiguous (two products as close)"
    )
    product: MatchProduct | None = Field(description="The product it may be (null: deleted since)")
    status: MatchStatus
    product_id: uuid.UUID | None = Field(description="Accepted: the product; rejected: the new product made of it")


class MatchPage(BaseModel):
    items: list[MatchView]


class MatchDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept: StrictBool = Field(description="true: the listing is that product's; false: it becomes a new product")
