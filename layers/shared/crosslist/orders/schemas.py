"""Sales (the per-sale log) and the user's settings, as the HTTP API shows and accepts them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from crosslist.db.models import Order
from crosslist.jobs.schemas import JobError


class SaleActionKind(enum.StrEnum):
    """What a sale did on one other marketplace of its product: delete, update_quantity (the stock left), none;
    or, on Vinted where it sold, republish: the item sold while stock is left, so a `publish` job puts a new
    Vinted item of the product on sale."""

    DELETE = "delete"
    UPDATE_QUANTITY = "update_quantity"
    REPUBLISH = "republish"
    NONE = "none"


class SaleActionView(BaseModel):
    marketplace: str
    action: SaleActionKind
    reason: str | None = Field(
        description="Why nothing was done (auto_delist_off, single_item_listing, listing_being_deleted,"
        " pending_job_cancelled, not_listed; for a republish: already_listed, sold_out), why it failed before any"
        " job (e.g. action_not_available, not_publishable), or waiting_for_job"
    )
    job_id: uuid.UUID | None = Field(
        description="The job that carries it out (a republish: the Vinted `publish`), or the one the sale cancelled"
    )
    waiting_for_job_id: uuid.UUID | None = Field(
        description="The product's job that was already running there: this action's job followed it"
    )
    status: str = Field(
        description="Its job's status, live; without a job: waiting (for waiting_for_job_id to end), skipped or failed"
    )
    error: JobError | None
    started_at: datetime | None
    completed_at: datetime | None
    delisted_after_sale_seconds: float | None = Field(
        description="From the sale to its job's completion, once completed"
    )


class SaleView(BaseModel):
    sale_id: uuid.UUID
    marketplace: str = Field(description="Where it sold")
    external_order_id: str
    quantity: int
    sold_at: datetime
    detected_at: datetime = Field(description="When an orders import found it")
    detection_delay_seconds: float = Field(description="From the sale to its detection")
    actions: list[SaleActionView] = Field(
        description="One per other marketplace of the product; for a sale on Vinted leaving stock, one more on"
        " Vinted: its republish"
    )


class UserSettingsView(BaseModel):
    auto_delist: bool = Field(
        description="A sale on one marketplace deletes the product's other listings (or lowers their quantity"
        " when stock remains) at once, and a Vinted item sold while stock remains is replaced by a new one; off:"
        " the sale is only logged and the product's quantity is left as it is"
    )
    remove_duplicates: bool = Field(
        description="A sync that finds a second live item of a product on Vinted or Etsy (the same title and price)"
        " newer than crosslist's listing removes it; off: it is only reported (`listing.duplicate`)"
    )


class UserSettingsUpdate(BaseModel):
    """The settings to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    auto_delist: StrictBool | None = None
    remove_duplicates: StrictBool | None = None


class SalePage(BaseModel):
    items: list[SaleView] = Field(description="Newest sale first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class OrderView(BaseModel):
    id: uuid.UUID
    marketplace: str
    external_order_id: str = Field(description="The marketplace's own id (Vinted: the transaction id)")
    product_id: uuid.UUID | None = Field(description="The product whose listing sold, when crosslist knows it")
    item_ids: list[str]
    title: str
    price: Decimal
    currency: str
    buyer: str | None
    status: str
    sold_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls.model_validate(order, from_attributes=True)


class OrderPage(BaseModel):
    items: list[OrderView] = Field(description="Newest sale first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
