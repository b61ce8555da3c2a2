"""Keep crosslist's Etsy listings in step with the shop, and import Etsy's receipts.

Sync: the shop's listings are read by state (active, inactive, sold out), a page per step (each one a
checkpoint), and the listings reconciled when the sync completes. Orders: the receipts modified in the
last days (min_last_modified), page by page; each transaction (a listing bought) is one order record.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from pydantic import BaseModel, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.duplicates import find_duplicates
from crosslist.marketplaces.etsy.common import Listings, failure, listing_state, parse, shop
from crosslist.marketplaces.rest import ApiWorkflow, reconcile, record_orders
from crosslist.workflows.base import (
    Again,
    Completion,
    HttpCall,
    JobContext,
    JsonDict,
    ListingState,
    ProductSnapshot,
    Records,
    Reply,
    SeenItem,
    Step,
    parse_params,
)

PAGE_SIZE = 100  # Etsy's maximum
STATES = ("active", "inactive", "sold_out")


class EtsySync(ApiWorkflow):
    marketplace: Marketplace = "etsy"
    action = "sync"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return {}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step(f"read_{state}", f"Reading your Etsy listings ({state})", kind=state) for state in STATES]

    def plan(self, step: Step, context: JobContext) -> HttpCall:
        offset = int(context.accumulated.get(f"offset_{step.kind}", 0))
        path = f"{shop(context)}/listings?state={step.kind}&limit={PAGE_SIZE}&offset={offset}"
        return HttpCall("GET", path, "read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        if not reply.success:
            raise failure(reply, "reading the shop's listings")
        page = parse(Listings, reply, "reading the shop's listings")
        seen = dict(context.accumulated.get("seen", {}))
        for listing in page.results:
            seen[str(listing.listing_id)] = {
                "state": listing_state(listing.state or step.kind),
                "title": listing.title,
                "price": listing.price.text() if listing.price is not None else None,
                "created": listing.creation_timestamp,
            }
        offset = int(context.accumulated.get(f"offset_{step.kind}", 0)) + PAGE_SIZE
        data = {**context.accumulated, "seen": seen, f"offset_{step.kind}": offset}
        if page.results and offset < page.count:
            return Again(data, note=f"{min(offset, page.count)} of {page.count} read")
        return data

    def complete(self, context: JobContext) -> Completion:
        seen = [_seen(listing_id, read) for listing_id, read in context.accumulated.get("seen", {}).items()]
        return Completion(result={"listings_seen": len(seen)}, effects=partial(_reconcile, seen))


def _seen(listing_id: str, read: JsonDict | str) -> SeenItem:
    if isinstance(read, str):  # a checkpoint saved before titles were kept: its state only
        return SeenItem(listing_id, read, "")
    return SeenItem(listing_id, read["state"], read.get("title") or "", read.get("price"), read.get("created"))


def _reconcile(seen: list[SeenItem], records: Records) -> JsonDict:
    states: dict[str, ListingState] = {item.external_id: item.state for item in seen}  # type: ignore[misc]
    changed = reconcile(records, lambda listing: states.get(listing.external_id, "deleted"))
    return {**changed, **records.reconcile_catalogue(find_duplicates(records.listings(), seen))}


# ---------------------------------------------------------------- orders
class _Money(BaseModel):
    amount: int
    divisor: int = 100
    currency_code: str

    @property
    def value(self) -> str:
        return str(Decimal(self.amount) / Decimal(self.divisor or 1))


class _Transaction(BaseModel):
    transaction_id: int
    listing_id: int | None = None
    title: str = Field(default="", max_length=1000)
    quantity: int = 1
    sku: str | None = None
    price: _Money | None = None


class _Receipt(BaseModel):
    receipt_id: int
    name: str | None = None
    status: str = "paid"
    create_timestamp: int
    transactions: list[_Transaction] = Field(default_factory=list)


class _Receipts(BaseModel):
    count: int = 0
    results: list[_Receipt] = Field(default_factory=list, max_length=PAGE_SIZE)


class _OrdersParams(BaseModel):
    days: int = Field(default=7, ge=1, le=90, description="How many days of receipts to read")


class EtsyOrders(ApiWorkflow):
    marketplace: Marketplace = "etsy"
    action = "sync_orders"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        days = parse_params(_OrdersParams, params, "an Etsy orders import takes {days}").days
        return {"min_last_modified": int(time.time()) - days * 86400}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("read_receipts", "Reading your Etsy sales", kind="read_receipts")]

    def plan(self, step: Step, context: JobContext) -> HttpCall:
        offset = int(context.accumulated.get("offset", 0))
        since = int(context.input["min_last_modified"])
        path = f"{shop(context)}/receipts?min_last_modified={since}&limit={PAGE_SIZE}&offset={offset}"
        return HttpCall("GET", path, "read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        if not reply.success:
            raise failure(reply, "reading the receipts")
        page = parse(_Receipts, reply, "reading the receipts")
        orders = dict(context.accumulated.get("orders", {}))
        for receipt in page.results:
            several = len(receipt.transactions) > 1
            for sold in receipt.transactions:
                money = sold.price or _Money(amount=0, currency_code="EUR")
                key = f"{receipt.receipt_id}:{sold.transaction_id}" if several else str(receipt.receipt_id)
                orders[key] = {
                    "listing_id": str(sold.listing_id) if sold.listing_id else None,
                    "sku": sold.sku,
                    "title": sold.title,
                    "price": money.value,
                    "currency": money.currency_code,
                    "quantity": sold.quantity,
                    "status": receipt.status,
                    "sold_at": _iso(receipt.create_timestamp),
                    "buyer": receipt.name,
                }
        offset = int(context.accumulated.get("offset", 0)) + PAGE_SIZE
        data = {**context.accumulated, "orders": orders, "offset": offset}
        if page.results and offset < page.count:
            return Again(data, note=f"{min(offset, page.count)} of {page.count} receipts read")
        return data

    def complete(self, context: JobContext) -> Completion:
        orders: dict[str, JsonDict] = context.accumulated.get("orders", {})
        return Completion(result={"orders_seen": len(orders)}, effects=partial(record_orders, "etsy", orders))


def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()
