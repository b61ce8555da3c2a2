"""What eBay's and Etsy's workflows share: their answers mapped onto the engine's failure kinds, with the
marketplace's own message kept for the user."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from crosslist.errors import InvalidRequest
from crosslist.marketplaces import DISPLAY_NAMES
from crosslist.workflows.base import (
    JobContext,
    JsonDict,
    ListingChange,
    ListingRef,
    ListingState,
    OrderRecord,
    ProductSnapshot,
    Records,
    Reply,
    Step,
    StepAction,
    StepFailed,
)

LIVE_STATES = ("active", "hidden", "reserved")  # a listing an update or delete can act on

MAX_MESSAGE = 500
SKU_PREFIX = "CL-"


def sku_of(product_id: str) -> str:
    """The SKU crosslist gives a product on eBay and Etsy: stable across retries and relists."""
    return f"{SKU_PREFIX}{product_id}"


def listed_on(product: ProductSnapshot | None, marketplace: str, action: str) -> JsonDict:
    """The product's live listing on the marketplace; InvalidRequest when it has none to act on."""
    name = DISPLAY_NAMES[marketplace]
    if product is None:
        raise InvalidRequest(f"{action} on {name} needs a product_id")
    listing = product.listings.get(marketplace)
    if listing is None or listing["status"] not in LIVE_STATES:
        raise InvalidRequest(f"this product has no live {name} listing to {action}", code="not_listed")
    return listing


def reconcile(records: Records, state_of: Callable[[ListingRef], ListingState]) -> JsonDict:
    """A sync's end: each of the user's listings takes the state the marketplace shows (`state_of`)."""
    changes = [
        ListingChange(listing.product_id, state)
        for listing in records.listings()
        # A deleted listing is final: what the marketplace shows under its id now is not it.
        if listing.status != "deleted" and (state := state_of(listing)) != listing.status
    ]
    records.update_listings(changes)
    return {"changed": dict(sorted(Counter(change.status for change in changes).items()))}


def parsed[Attributes: BaseModel](marketplace: str, model: type[Attributes], reply: Reply, doing: str) -> Attributes:
    """The marketplace's answer in the shape crosslist relies on; a permanent failure showing what came back
    if not (a changed API must be seen, not guessed around)."""
    try:
        return model.model_validate(reply.result or {})
    except ValidationError:
        raise StepFailed(
            f"{marketplace}_reply_unrecognised",
            f"{DISPLAY_NAMES[marketplace]}'s answer to {doing} was not what crosslist expects",
            retryable=False,
            detail={"body": str(reply.result)[:500]},
        ) from None


def failure(marketplace: str, reply: Reply, doing: str, message: str | None, detail: JsonDict | None) -> StepFailed:
    """How a refused or failed call is handled: 429 pauses the user's lane for the Retry-After (no attempt
    used); no answer or a 5xx is tried again after a backoff; any other refusal is final, with the
    marketplace's message (a 401 here survived a token refresh: the account must be looked at)."""
    said = (message or reply.error or "no answer")[:MAX_MESSAGE]
    status = reply.status
    name = DISPLAY_NAMES.get(marketplace, marketplace)
    if status == 429:
        return StepFailed(
            f"{marketplace}_rate_limited",
            f"{name} asks to slow down while {doing}: {said}",
            kind="throttled",
            retry_after_seconds=reply.retry_after,
            detail=detail,
        )
    if status is None or status >= 500 or status == 408:
        return StepFailed(f"{marketplace}_unavailable", f"{name} failed while {doing}: {said}", detail=detail)
    return StepFailed(f"{marketplace}_refused", f"{name} refused {doing}: {said}", retryable=False, detail=detail)


class ApiWorkflow:
    """Defaults for a workflow whose writes are safe to send again, or that verifies none."""

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return None

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None


def record_orders(marketplace: str, orders: dict[str, JsonDict], records: Records) -> JsonDict:
    """Store the new orders (each once); a sale of a product crosslist knows is recorded, told and acted on. A
    listing is known by its id or, failing that, by crosslist's SKU."""
    listings = {listing.external_id: listing for listing in records.listings()}
    by_product = {listing.product_id: listing for listing in listings.values()}
    found = []
    for order_id, order in sorted(orders.items()):
        listing = listings.get(str(order.get("listing_id")))
        sku = str(order.get("sku") or "")
        if listing is None and sku.startswith(SKU_PREFIX):
            listing = by_product.get(sku.removeprefix(SKU_PREFIX))
        found.append(
            OrderRecord(
                external_order_id=order_id,
                item_ids=[str(order["listing_id"])] if order.get("listing_id") else [],
                title=order["title"] or "(untitled)",
                price=order["price"],
                currency=order["currency"],
                buyer=order["buyer"],
                status=order["status"],
                sold_at=order["sold_at"],
                product_id=listing.product_id if listing is not None else None,
                quantity=int(order.get("quantity") or 1),
            )
        )
    added = records.add_orders(found)  # each sale of a known product is told and acted on (orders.delist)
    return {"orders_new": len(added), "products_sold": sorted({o.product_id for o in added if o.product_id})}
