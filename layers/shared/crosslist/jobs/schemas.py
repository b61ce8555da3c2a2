"""Job requests and views as the HTTP API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from crosslist.db.models import JobStatus, MarketplaceJob
from crosslist.marketplaces import Marketplace, RestAction, VintedAction


class CreateJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marketplace: Marketplace
    action: str = Field(min_length=1, max_length=40)
    product_id: uuid.UUID | None = None
    priority: int | None = Field(default=None, ge=1, le=9, description="1 highest … 9 lowest (default: the action's)")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    params: dict[str, Any] | None = Field(
        default=None,
        description="What the action needs beyond a product: message {conversation_id, body};"
        " link_product {vinted_item_id, create_product?}",
    )


# What POST /jobs takes, by marketplace: each offers its own actions (the document lists them).
class VintedJobRequest(CreateJobRequest):
    marketplace: Literal["vinted"]
    action: VintedAction = Field(description="Vinted runs in the user's browser extension")


class EbayJobRequest(CreateJobRequest):
    marketplace: Literal["ebay"]
    action: RestAction


class EtsyJobRequest(CreateJobRequest):
    marketplace: Literal["etsy"]
    action: RestAction


JobRequest = Annotated[VintedJobRequest | EbayJobRequest | EtsyJobRequest, Field(discriminator="marketplace")]


MAX_BATCH_PRODUCTS = 500


class CreateBatchRequest(BaseModel):
    """One job per product, all of the same action on the same marketplace."""

    model_config = ConfigDict(extra="forbid")

    marketplace: Marketplace
    action: str = Field(min_length=1, max_length=40)
    product_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BATCH_PRODUCTS)
    priority: int | None = Field(default=None, ge=1, le=9, description="1 highest … 9 lowest (default: the action's)")

    @field_validator("product_ids")
    @classmethod
    def _each_product_once(cls, product_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(product_ids)) != len(product_ids):
            raise ValueError("a product may appear only once in a batch")
        return product_ids


# A batch runs one product action: by marketplace, the actions that take a product.
class VintedBatchRequest(CreateBatchRequest):
    marketplace: Literal["vinted"]
    action: Literal["publish", "update", "delete", "relist"]


class EbayBatchRequest(CreateBatchRequest):
    marketplace: Literal["ebay"]
    action: Literal["publish", "update", "delete"]


class EtsyBatchRequest(CreateBatchRequest):
    marketplace: Literal["etsy"]
    action: Literal["publish", "update", "delete"]


BatchRequest = Annotated[VintedBatchRequest | EbayBatchRequest | EtsyBatchRequest, Field(discriminator="marketplace")]


class JobError(BaseModel):
    code: str
    message: str
    detail: dict[str, Any] | None = Field(
        default=None,
        description="Only when there is more to show: e.g. the path and start of a reply that did not parse",
    )

    @model_serializer(mode="wrap")
    def _without_empty_detail(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("detail") is None:
            data.pop("detail", None)
        return data


class JobView(BaseModel):
    id: uuid.UUID
    marketplace: str
    action: str
    product_id: uuid.UUID | None
    status: JobStatus
    wait_reason: str | None = Field(
        description="Why a waiting job waits: pacing, backoff, no_plugin, plugin_not_ready, plugin_logged_out,"
        " challenge, rate_limited, reauth_required, or queued (behind the job `waiting_for_job_id`)"
    )
    waiting_for_job_id: uuid.UUID | None = Field(
        default=None, description="The started job holding the lane this one is queued behind (wait_reason queued)"
    )
    wait_until: datetime | None = Field(description="When the wait ends, if known")
    priority: int
    attempts: int
    max_attempts: int
    current_step: int
    total_steps: int
    accumulated_data: dict[str, Any]
    result: dict[str, Any] | None
    error: JobError | None
    cancel_requested: bool = Field(description="cancel was asked while the job ran: it stops at its next step")
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, job: MarketplaceJob) -> JobView:
        return cls(
            id=job.id,
            marketplace=job.marketplace,
            action=job.action_code,
            product_id=job.product_id,
            status=job.status,
            wait_reason=job.wait_reason,
            wait_until=job.wait_until,
            priority=job.priority,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            current_step=job.current_step,
            total_steps=job.total_steps,
            accumulated_data=job.accumulated_data,
            result=job.result,
            error=JobError.model_validate(job.error) if job.error is not None else None,
            cancel_requested=job.cancel_requested_at is not None,
            created_at=job.created_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            updated_at=job.updated_at,
        )


class JobPage(BaseModel):
    items: list[JobView] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class RefusedProduct(BaseModel):
    """A product of a batch that got no job, and why (the same reason a single POST /jobs would give)."""

    product_id: uuid.UUID
    code: str
    message: str


class BatchView(BaseModel):
    id: uuid.UUID
    marketplace: str
    action: str
    total_jobs: int
    counts: dict[str, int] = Field(description="How many of the batch's jobs are in each status")
    jobs: list[JobView]
    created_at: datetime


class BatchCreated(BatchView):
    refused: list[RefusedProduct] = Field(description="Products that got no job, each with its reason")


class UnlinkedItem(BaseModel):
    """A listing on the marketplace that no product of the user knows: it can be linked to one."""

    item_id: str
    title: str
    price: str | None
    url: str | None
    state: str


class UnlinkedItems(BaseModel):
    marketplace: str
    synced_at: datetime | None = Field(description="When the sync these come from ended; null: never synced")
    sync_job_id: uuid.UUID | None
    items: list[UnlinkedItem]
    total: int = Field(description="How many the sync found (items lists at most 500)")
