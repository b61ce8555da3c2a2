"""Two live items on one marketplace for one product: a listing crosslist made (or linked) and another item the
sync saw there that looks the same (the same title, and the same price where the marketplace shows one) and
belongs to no product. A seller who listed by hand as well, or a publish repeated outside crosslist, sells
the same thing twice."""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, ConfigDict, Field

from crosslist.errors import InvalidRequest
from crosslist.workflows.base import Duplicate, JsonDict, ListingRef, SeenItem, parse_params

LIVE = ("active", "hidden", "reserved")


def find_duplicates(listings: list[ListingRef], seen: list[SeenItem]) -> list[Duplicate]:
    """The live items no product holds that look like a product's live listing."""
    linked = {listing.external_id for listing in listings}
    by_id = {item.external_id: item for item in seen}
    candidates: dict[str, list[SeenItem]] = {}
    for item in seen:
        if item.external_id not in linked and item.state in LIVE:
            candidates.setdefault(_normalised(item.title), []).append(item)
    found = []
    for listing in listings:
        if listing.status not in LIVE or not listing.title.strip():
            continue
        for item in candidates.get(_normalised(listing.title), []):
            if item.price is not None and not _same_price(item.price, listing.price):
                continue
            mine = by_id.get(listing.external_id)
            newer = _newer(item, mine, listing.external_id)
            found.append(Duplicate(listing.product_id, listing.external_id, item.external_id, newer))
    return sorted(found, key=lambda d: (d.product_id, d.duplicate_id))


def _normalised(title: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", title).casefold().split())


def _same_price(a: str, b: str) -> bool:
    try:
        return round(float(a), 2) == round(float(b), 2)
    except ValueError:
        return False


def _newer(item: SeenItem, mine: SeenItem | None, my_id: str) -> bool:
    if item.created is not None and mine is not None and mine.created is not None:
        return item.created > mine.created
    if item.external_id.isdigit() and my_id.isdigit():  # Vinted's and Etsy's ids grow with time
        return int(item.external_id) > int(my_id)
    return True


class DeleteParams(BaseModel):
    """A delete's `params`: none to delete the product's listing; `duplicate_id` to delete instead a second live
    item of the product on the marketplace, leaving the product's listing as it is."""

    model_config = ConfigDict(extra="forbid")

    duplicate_id: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,20}$",
        description="The marketplace's id of the duplicate item to delete (a sync's `duplicates`)",
    )


def duplicate_to_delete(params: JsonDict | None, listing_id: str) -> str | None:
    """The duplicate a delete's `params` name (None: the product's own listing); InvalidRequest when they name
    nothing valid, or the product's own listing."""
    duplicate_id = parse_params(DeleteParams, params, "a delete takes no params but `duplicate_id`").duplicate_id
    if duplicate_id is not None and duplicate_id == listing_id:
        raise InvalidRequest(
            "duplicate_id is the product's own listing: delete it without params", code="invalid_params"
        )
    return duplicate_id
