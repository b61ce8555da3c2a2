"""Sync the user's Vinted listings with what their wardrobe shows.

The wardrobe is read one page of 96 at a time (paced as reads, never in parallel); each page read is
a checkpoint (the job's data), so a sync interrupted after page 2 of 3 resumes at page 3. Once every
page is read, the user's listings are reconciled in the completing transaction: sold, closed,
hidden, reserved, back to active, or deleted when the wardrobe no longer shows them. Title and price
drift between a listing and its product is reported, and so are the items no product knows
(linkable: GET /marketplaces/vinted/unlinked).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal, InvalidOperation
from functools import partial

from pydantic import BaseModel, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.duplicates import find_duplicates
from crosslist.marketplaces.vinted.paging import PagedRead, Pagination, after_page, page_number
from crosslist.marketplaces.vinted.publish import WARDROBE_PAGE_SIZE, VintedId, account_in_path
from crosslist.marketplaces.vinted.replies import check, parse
from crosslist.realtime.messages import PluginCommand
from crosslist.workflows.base import (
    Again,
    Completion,
    JobContext,
    JsonDict,
    ListingChange,
    ListingRef,
    ListingState,
    PluginCall,
    Reconciled,
    Records,
    Reply,
    SeenItem,
    Step,
)

WARDROBE_PAGE_PATH = "/api/v2/wardrobe/{account_id}/items?page={page}&per_page={per_page}&order=relevance"
MAX_UNLINKED = 500  # reported in the job's result (a wardrobe may hold thousands)


class _Price(BaseModel):
    amount: str = Field(max_length=40)
    currency_code: str | None = Field(default=None, max_length=10)


class WardrobeItem(BaseModel):
    id: VintedId
    title: str = Field(max_length=1000)
    price: _Price | str | None = None
    url: str | None = Field(default=None, max_length=500)
    is_closed: bool = False
    item_closing_action: str | None = None
    is_hidden: bool = False
    is_reserved: bool = False
    is_draft: bool = False

    @property
    def state(self) -> ListingState:
        if self.is_closed:
            return "sold" if self.item_closing_action == "sold" else "closed"
        if self.is_reserved:
            return "reserved"
        if self.is_hidden or self.is_draft:
            return "hidden"
        return "active"

    @property
    def amount(self) -> str | None:
        return self.price.amount if isinstance(self.price, _Price) else self.price


class _WardrobePage(BaseModel):
    items: list[WardrobeItem] = Field(max_length=WARDROBE_PAGE_SIZE)
    pagination: Pagination


class VintedSync(PagedRead):
    marketplace: Marketplace = "vinted"
    action = "sync"

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("read_wardrobe", "Reading your Vinted listings", kind="read_wardrobe")]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        return PluginCall(PluginCommand(method="GET", path=self._path(context)), kind="read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        check(reply)
        path = self._path(context)
        page = parse(_WardrobePage, reply, path)
        seen = dict(context.accumulated.get("seen", {}))
        for listing in page.items:
            seen[str(listing.id)] = {
                "state": listing.state,
                "title": listing.title,
                "price": listing.amount,
                "url": listing.url,
            }
        data = {**context.accumulated, "seen": seen, "pages": page.pagination.total_pages}
        return after_page(context, data, page.pagination)

    def complete(self, context: JobContext) -> Completion:
        seen: dict[str, JsonDict] = context.accumulated.get("seen", {})
        return Completion(
            result={"pages": context.accumulated.get("pages", 0), "items_seen": len(seen)},
            effects=partial(_record, seen),
        )

    @staticmethod
    def _path(context: JobContext) -> str:
        account = account_in_path(context, code="cannot_sync", unable="Your Vinted wardrobe cannot be read")
        return WARDROBE_PAGE_PATH.format(account_id=account, page=page_number(context), per_page=WARDROBE_PAGE_SIZE)


def _record(seen: dict[str, JsonDict], records: Records) -> JsonDict:
    listings = records.listings()
    reconciled = reconcile(seen, listings)
    records.update_listings(reconciled.changes)
    items = [
        SeenItem(item_id, str(item.get("state") or ""), str(item.get("title") or ""), _text(item.get("price")))
        for item_id, item in seen.items()
    ]
    return {**reconciled.result, **records.reconcile_catalogue(find_duplicates(records.listings(), items))}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def reconcile(seen: dict[str, JsonDict], listings: list[ListingRef]) -> Reconciled:
    """What the wardrobe says of each listing, and what the user should know."""
    changes: list[ListingChange] = []
    drift: list[JsonDict] = []
    known: set[str] = set()
    for listing in listings:
        if listing.status == "deleted":
            # Final: an item under its id now is not this listing (an id handed out again), so it stays
            # deleted and the item is shown as unlinked rather than tied to a product that no longer has it.
            continue
        known.add(listing.external_id)
        item = seen.get(listing.external_id)
        if item is None:  # no longer in the wardrobe: gone from Vinted
            changes.append(ListingChange(listing.product_id, "deleted"))
            continue
        state: ListingState = item["state"]
        if state != listing.status:
            changes.append(ListingChange(listing.product_id, state))
        if item["title"] != listing.title:
            drift.append({"product_id": listing.product_id, "field": "title", "vinted": item["title"]})
        if not _same_amount(item["price"], listing.price):
            drift.append({"product_id": listing.product_id, "field": "price", "vinted": item["price"]})
    unlinked = [{"item_id": item_id, **item} for item_id, item in seen.items() if item_id not in known]
    counts = Counter(change.status for change in changes)
    return Reconciled(
        changes=changes,
        result={
            "changed": dict(sorted(counts.items())),
            "drift": drift,
            "unlinked": unlinked[:MAX_UNLINKED],
            "unlinked_total": len(unlinked),
        },
    )


def _same_amount(vinted: str | None, ours: str) -> bool:
    try:
        return vinted is not None and Decimal(vinted) == Decimal(ours)
    except InvalidOperation:
        return False
