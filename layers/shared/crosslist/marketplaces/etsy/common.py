"""Etsy's Open API v3 as crosslist uses it: paths (relative to the API base, which ends in /v3), the
product as Etsy takes it, and Etsy's errors (`{"error": "..."}`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crosslist.marketplaces.product_check import checked_product
from crosslist.marketplaces.rest import failure as rest_failure
from crosslist.marketplaces.rest import parsed
from crosslist.workflows.base import JobContext, JsonDict, ProductSnapshot, Reply, StepFailed

MAX_TITLE = 140
MAX_PHOTOS = 10
MAX_SKU = 32


class EtsyAttributes(BaseModel):
    """marketplace_attributes.etsy of a product."""

    model_config = ConfigDict(extra="forbid")

    taxonomy_id: int = Field(gt=0, description="Etsy's seller taxonomy id")
    who_made: Literal["i_did", "someone_else", "collective"]
    # e.g. made_to_order, 2020_2026, 2010_2019, before_2007, 1990s, before_1700
    when_made: str = Field(pattern=r"^(made_to_order|\d{4}_\d{4}|before_\d{4}|\d{4}s)$")
    is_supply: bool = False
    tags: list[str] = Field(default_factory=list, max_length=13)


def shop(context: JobContext) -> str:
    return f"/application/shops/{int(context.input['seller']['shop_id'])}"


def product_input(product: ProductSnapshot | None, action: str) -> JsonDict:
    """What a job writing the product to Etsy needs of it; InvalidRequest naming everything missing."""
    too_long = product is not None and product.sku is not None and len(product.sku) > MAX_SKU
    product, attributes = checked_product(
        product,
        "etsy",
        action,
        EtsyAttributes,
        max_title=MAX_TITLE,
        max_photos=MAX_PHOTOS,
        more=[f"sku: Etsy takes at most {MAX_SKU} characters"] if too_long else None,
    )
    return {
        "product_id": product.id,
        # The seller's own SKU (Etsy's listings are found by id: crosslist needs none of its own there).
        "sku": product.sku or "",
        "title": product.title,
        "description": product.description or product.title,
        "image_urls": product.image_urls,
        "quantity": product.quantity,
        "price": product.price,
        "currency": product.currency,
        **attributes.model_dump(),
    }


def listing_fields(item: JsonDict) -> JsonDict:
    """The listing's fields crosslist manages, as createDraftListing and updateListing take them."""
    fields: JsonDict = {
        "title": item["title"],
        "description": item["description"],
        "taxonomy_id": item["taxonomy_id"],
        "who_made": item["who_made"],
        "when_made": item["when_made"],
        "is_supply": item["is_supply"],
    }
    if item.get("tags"):
        fields["tags"] = item["tags"]
    return fields


def price(item: JsonDict) -> float:
    return float(Decimal(item["price"]))


def listing_url(listing_id: str) -> str:
    return f"https://www.etsy.com/listing/{listing_id}"


class EtsyError(BaseModel):
    error: str = ""


def failure(reply: Reply, doing: str) -> StepFailed:
    try:
        message = EtsyError.model_validate(reply.result or {}).error or None
    except ValidationError:
        message = None
    return rest_failure("etsy", reply, doing, message, {"error": message} if message else None)


def parse[Model: BaseModel](model: type[Model], reply: Reply, doing: str) -> Model:
    return parsed("etsy", model, reply, doing)


class Money(BaseModel):
    amount: int
    divisor: int = 100

    def text(self) -> str:
        return str(Decimal(self.amount) / Decimal(self.divisor or 1))


class Listing(BaseModel):
    listing_id: int
    state: str = ""
    title: str = ""
    price: Money | None = None
    url: str | None = None
    quantity: int | None = None
    creation_timestamp: int | None = None


class Listings(BaseModel):
    count: int = 0
    results: list[Listing] = Field(default_factory=list)


def listing_state(state: str) -> Literal["active", "closed", "sold", "hidden"]:
    """Etsy's listing state as marketplace_listings says it."""
    if state == "active":
        return "active"
    if state == "sold_out":
        return "sold"
    if state == "draft":
        return "hidden"
    return "closed"  # inactive, expired
