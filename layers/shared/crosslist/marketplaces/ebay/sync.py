"""Keep crosslist's eBay listings in step with eBay, and import eBay's orders.

Sync: eBay's Inventory API finds offers only by SKU, so the sync pages through the inventory items,
then reads the offer of each SKU (crosslist's, and the seller's own that imported listings keep), one call
per step (each one a checkpoint: an interrupted sync resumes where it stopped), and reconciles the listings
when it completes. Orders: the Fulfillment API's
orders modified in the last days (lastmodifieddate, so an order changed since is seen again), page by
page; each line item is one order record, stored once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import cast
from urllib.parse import quote

from pydantic import BaseModel, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.ebay.common import (
    INVENTORY,
    EbayModel,
    Offer,
    ebay_sku,
    failure,
    find_offer,
    found_offer,
    listing_state,
    parse,
)
from crosslist.marketplaces.rest import SKU_PREFIX, ApiWorkflow, reconcile, record_orders
from crosslist.workflows.base import (
    Again,
    Completion,
    Done,
    HttpCall,
    JobContext,
    JsonDict,
    ListingRef,
    ListingState,
    ProductSnapshot,
    Records,
    Reply,
    Step,
    StepAction,
    parse_params,
)

PAGE_SIZE = 100  # inventory items per page (eBay's maximum is 200)
ORDERS_PAGE_SIZE = 50


class _Item(EbayModel):
    sku: str


class _Items(EbayModel):
    inventory_items: list[_Item] = Field(default_factory=list)
    total: int = 0


class EbaySync(ApiWorkflow):
    marketplace: Marketplace = "ebay"
    action = "sync"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return {}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [
            Step("read_inventory", "Reading your eBay inventory", kind="read_inventory"),
            Step("read_offers", "Reading your eBay offers", kind="read_offers"),
        ]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        data = context.accumulated
        if step.kind == "read_inventory":
            offset = int(data.get("offset", 0))
            return HttpCall(
                "GET", f"{INVENTORY}/inventory_item?limit={PAGE_SIZE}&offset={offset}", "read", repeatable=True
            )
        pending = [sku for sku in data.get("skus", []) if sku not in data.get("offers", {})]
        if not pending:
            return Done(data)
        return find_offer(_for_sku(context, pending[0]))

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        data = dict(context.accumulated)
        if step.kind == "read_inventory":
            if not reply.success:
                raise failure(reply, "reading the inventory")
            page = parse(_Items, reply, "reading the inventory")
            # Every SKU's offer is read: imported listings keep the seller's own SKUs (crosslist's start with CL-).
            skus = [*data.get("skus", []), *(item.sku for item in page.inventory_items)]
            others = int(data.get("others", 0)) + sum(not i.sku.startswith(SKU_PREFIX) for i in page.inventory_items)
            offset = int(data.get("offset", 0)) + PAGE_SIZE
            data |= {"skus": sorted(set(skus)), "others": others, "offset": offset, "offers": {}}
            if page.inventory_items and offset < page.total:
                return Again(data, note=f"{min(offset, page.total)} of {page.total} items read")
            return data
        sku = next(sku for sku in data.get("skus", []) if sku not in data.get("offers", {}))
        found = found_offer(_for_sku(context, sku), reply)
        data["offers"] = {**data.get("offers", {}), sku: _summary(found)}
        left = len(data["skus"]) - len(data["offers"])
        return Again(data, note=f"{len(data['offers'])} of {len(data['skus'])} offers read") if left else data

    def complete(self, context: JobContext) -> Completion:
        offers: dict[str, JsonDict] = context.accumulated.get("offers", {})
        others = int(context.accumulated.get("others", 0))
        return Completion(
            result={"offers_seen": len(offers), "items_not_from_crosslist": others}, effects=partial(_reconcile, offers)
        )


def _for_sku(context: JobContext, sku: str) -> JobContext:
    return replace(context, input={**context.input, "sku": sku})


def _summary(found: Offer | None) -> JsonDict:
    return {
        "state": listing_state(found),
        "listing_id": found.listing.listing_id if found is not None and found.listing else None,
    }


def _reconcile(offers: dict[str, JsonDict], records: Records) -> JsonDict:
    def state_of(listing: ListingRef) -> ListingState:
        if listing.attributes.get("outside_inventory_api"):
            return cast("ListingState", listing.status)  # not in the Inventory API: its orders tell of it
        seen = offers.get(ebay_sku(listing.product_id, listing.attributes))
        return seen["state"] if seen is not None else "deleted"

    # eBay allows one offer per SKU: crosslist's listings cannot be doubled there through the Inventory API, and
    # items listed on ebay.com are invisible to it (imports read them: issue 20), so no duplicates are sought.
    return {**reconcile(records, state_of), **records.reconcile_catalogue([])}


# ---------------------------------------------------------------- orders
class _Money(BaseModel):
    value: str
    currency: str


class _Buyer(EbayModel):
    username: str | None = None


class _LineItem(EbayModel):
    line_item_id: str
    legacy_item_id: str | None = None
    sku: str | None = None
    title: str = Field(default="", max_length=1000)
    quantity: int = 1
    line_item_cost: _Money | None = None


class _Order(EbayModel):
    order_id: str
    creation_date: datetime
    order_fulfillment_status: str = ""
    order_payment_status: str = ""
    buyer: _Buyer | None = None
    line_items: list[_LineItem] = Field(default_factory=list)


class _OrdersPage(EbayModel):
    orders: list[_Order] = Field(default_factory=list, max_length=200)
    total: int = 0


class _OrdersParams(BaseModel):
    days: int = Field(default=7, ge=1, le=90, description="How many days of orders to read")


class EbayOrders(ApiWorkflow):
    marketplace: Marketplace = "ebay"
    action = "sync_orders"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        days = parse_params(_OrdersParams, params, "an eBay orders import takes {days}").days
        since = datetime.now(UTC) - timedelta(days=days)
        return {"since": since.strftime("%Y-%m-%dT%H:%M:%S.000Z")}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("read_orders", "Reading your eBay orders", kind="read_orders")]

    def plan(self, step: Step, context: JobContext) -> HttpCall:
        offset = int(context.accumulated.get("offset", 0))
        window = quote(f"lastmodifieddate:[{context.input['since']}..]", safe=":")
        path = f"/sell/fulfillment/v1/order?filter={window}&limit={ORDERS_PAGE_SIZE}&offset={offset}"
        return HttpCall("GET", path, "read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        if not reply.success:
            raise failure(reply, "reading the orders")
        page = parse(_OrdersPage, reply, "reading the orders")
        orders = dict(context.accumulated.get("orders", {}))
        for order in page.orders:
            several = len(order.line_items) > 1
            for line in order.line_items:
                cost = line.line_item_cost or _Money(value="0", currency="EUR")
                orders[f"{order.order_id}:{line.line_item_id}" if several else order.order_id] = {
                    "listing_id": line.legacy_item_id,
                    "sku": line.sku,
                    "title": line.title,
                    "price": cost.value,
                    "currency": cost.currency,
                    "quantity": line.quantity,
                    "status": order.order_fulfillment_status or order.order_payment_status or "paid",
                    "sold_at": order.creation_date.isoformat(),
                    "buyer": order.buyer.username if order.buyer else None,
                }
        offset = int(context.accumulated.get("offset", 0)) + ORDERS_PAGE_SIZE
        data = {**context.accumulated, "orders": orders, "offset": offset}
        if page.orders and offset < page.total:
            return Again(data, note=f"{min(offset, page.total)} of {page.total} orders read")
        return data

    def complete(self, context: JobContext) -> Completion:
        orders: dict[str, JsonDict] = context.accumulated.get("orders", {})
        return Completion(result={"orders_seen": len(orders)}, effects=partial(record_orders, "ebay", orders))
