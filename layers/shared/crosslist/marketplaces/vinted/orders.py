"""Import the user's Vinted sales: page through my_orders (sold, every status), store each order once
(by Vinted's transaction id), and mark the listing of a newly sold item `sold`, telling the user
(`listing.sold`): what auto-delisting on the other marketplaces starts from."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from pydantic import BaseModel, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.vinted.paging import PagedRead, Pagination, after_page, page_number
from crosslist.marketplaces.vinted.publish import VintedId
from crosslist.marketplaces.vinted.replies import check, parse
from crosslist.realtime.messages import PluginCommand
from crosslist.workflows.base import (
    Again,
    Completion,
    JobContext,
    JsonDict,
    ListingChange,
    OrderRecord,
    PluginCall,
    Records,
    Reply,
    Step,
)

ORDERS_PATH = "/api/v2/my_orders?type=sold&status=all&page={page}&per_page={per_page}"
ORDERS_PAGE_SIZE = 100


class _Price(BaseModel):
    amount: str = Field(max_length=40)
    currency_code: str = Field(default="EUR", max_length=3)


class _Buyer(BaseModel):
    login: str | None = Field(default=None, max_length=200)


class _Order(BaseModel):
    transaction_id: VintedId
    item_id: VintedId
    title: str = Field(max_length=1000)
    price: _Price | str
    status: str = Field(max_length=40)
    date: datetime
    buyer: _Buyer | None = None


class _OrdersPage(BaseModel):
    my_orders: list[_Order] = Field(max_length=ORDERS_PAGE_SIZE)
    pagination: Pagination


class VintedOrders(PagedRead):
    marketplace: Marketplace = "vinted"
    action = "orders"

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("read_orders", "Reading your Vinted sales", kind="read_orders")]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        return PluginCall(PluginCommand(method="GET", path=_path(context)), kind="read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        check(reply)
        page = parse(_OrdersPage, reply, _path(context))
        orders = dict(context.accumulated.get("orders", {}))
        for order in page.my_orders:
            price = order.price if isinstance(order.price, _Price) else _Price(amount=order.price)
            orders[str(order.transaction_id)] = {
                "item_id": str(order.item_id),
                "title": order.title,
                "price": price.amount,
                "currency": price.currency_code,
                "status": order.status,
                "sold_at": order.date.isoformat(),
                "buyer": order.buyer.login if order.buyer else None,
            }
        return after_page(context, {**context.accumulated, "orders": orders}, page.pagination)

    def complete(self, context: JobContext) -> Completion:
        orders: dict[str, JsonDict] = context.accumulated.get("orders", {})
        return Completion(result={"orders_seen": len(orders)}, effects=partial(_record, orders))


def _record(orders: dict[str, JsonDict], records: Records) -> JsonDict:
    """Store the new orders; the listings they sold are `sold` from now on, and the user is told."""
    listings = {listing.external_id: listing for listing in records.listings()}
    found = [
        OrderRecord(
            external_order_id=order_id,
            item_ids=[order["item_id"]],
            title=order["title"],
            price=order["price"],
            currency=order["currency"],
            buyer=order["buyer"],
            status=order["status"],
            sold_at=order["sold_at"],
            product_id=listings[order["item_id"]].product_id if order["item_id"] in listings else None,
        )
        for order_id, order in sorted(orders.items())
    ]
    added = records.add_orders(found)
    changes: list[ListingChange] = []
    for order in added:
        listing = listings.get(order.item_ids[0])
        if listing is None or listing.status == "sold":
            continue
        changes.append(ListingChange(listing.product_id, "sold"))
    records.update_listings(changes)
    return {"orders_new": len(added), "listings_sold": [change.product_id for change in changes]}


def _path(context: JobContext) -> str:
    return ORDERS_PATH.format(page=page_number(context), per_page=ORDERS_PAGE_SIZE)
