"""Link a listing that is already on Vinted to crosslist: to one of the user's products (`product_id`),
or to a new product built from the item itself (`create_product: true`). One read, GET
item_upload/items/{id}: it says the item exists and can still be edited (Vinted answers 404 for a sold,
reserved or deleted item), and it holds what the new product is made of.

The listing is written in the transaction that completes the job. For a new product, the product and
its listing are written there too (`Completion.effects`), with the item's photo URLs as both the
product's photos and the photos the listing shows: a later update keeps the item's photos rather than
upload them again.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from crosslist.errors import InvalidRequest
from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.vinted import MAX_PHOTOS
from crosslist.marketplaces.vinted.delete import GONE_STATES
from crosslist.marketplaces.vinted.publish import VintedId, VintedItem
from crosslist.marketplaces.vinted.replies import check, parse
from crosslist.marketplaces.vinted.update import READ_ITEM, item_path
from crosslist.products.image_urls import MAX_IMAGE_URL_LENGTH
from crosslist.products.schemas import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH
from crosslist.realtime.messages import PluginCommand
from crosslist.workflows.base import (
    Completion,
    JobContext,
    JsonDict,
    Listed,
    NewProduct,
    PluginCall,
    ProductSnapshot,
    Records,
    Reply,
    Step,
    StepAction,
    StepFailed,
    parse_params,
)

MAX_PRICE = Decimal("9999999999.99")  # products.price is numeric(12, 2)
CENT = Decimal("0.01")
# The widths of products.brand, size and condition.
MAX_BRAND_LENGTH, MAX_SIZE_LENGTH, MAX_CONDITION_LENGTH = 100, 50, 50


class LinkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vinted_item_id: str = Field(pattern=r"^[0-9]{1,19}$", description="The Vinted item's id (digits)")
    create_product: StrictBool = Field(default=False, description="Create the product from the Vinted item")

    @field_validator("vinted_item_id", mode="before")
    @classmethod
    def _digits(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("vinted_item_id")
    @classmethod
    def _an_id(cls, value: str) -> str:
        number = int(value)
        if not 1 <= number < 2**63:
            raise ValueError("not a Vinted item id")
        return str(number)  # one spelling: "0042" is item 42


# ---------------------------------------------------------------------- Vinted's read
class _Photo(BaseModel):
    id: VintedId
    url: str | None = None
    full_size_url: str | None = None


class _Item(VintedItem):
    """What linking needs of GET item_upload/items/{id}: the item's id, its URL when usable, its photos."""

    model_config = ConfigDict(extra="allow")

    photos: list[_Photo] = Field(default_factory=list)


class _Money(BaseModel):
    amount: Decimal
    currency_code: str | None = Field(default=None, pattern="^[A-Z]{3}$")


class _ImportedItem(_Item):
    """What a new product is made of: an item without a title or a usable price is not a shape we know."""

    title: str = Field(min_length=1)
    description: str | None = None
    price: _Money | Decimal
    currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    catalog_id: int | None = None
    status_id: int | None = None
    package_size_id: int | None = None
    brand_id: int | None = None
    size_id: int | None = None
    color1_id: int | None = None
    color2_id: int | None = None

    @field_validator("title")
    @classmethod
    def _a_title(cls, title: str) -> str:
        if not title.strip():
            raise ValueError("the title is blank")
        return title.strip()

    @property
    def amount(self) -> Decimal:
        return self.price.amount if isinstance(self.price, _Money) else self.price

    @property
    def currency_code(self) -> str | None:
        return self.currency or (self.price.currency_code if isinstance(self.price, _Money) else None)


class _LinkedReply(BaseModel):
    item: _Item


class _ImportReply(BaseModel):
    item: _ImportedItem


# ---------------------------------------------------------------------- the workflow
class VintedLink:
    marketplace: Marketplace = "vinted"
    action = "link_product"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        link = parse_params(
            LinkParams, params, "linking a Vinted listing needs params {vinted_item_id, create_product?}"
        )
        if product is None and not link.create_product:
            raise InvalidRequest(
                "linking a Vinted listing needs either a product_id (the product to link it to) or "
                "params.create_product: true (create the product from the listing)",
                code="invalid_params",
            )
        if product is not None and link.create_product:
            raise InvalidRequest(
                "give either a product_id or params.create_product: true, not both: a product_id links the "
                "listing to that product, create_product makes a new product from it",
                code="invalid_params",
            )
        if product is not None:
            listing = product.listings.get("vinted")
            if listing is not None and listing["status"] not in GONE_STATES:
                raise InvalidRequest(
                    f"this product is already linked to Vinted listing {listing['external_id']}",
                    code="already_listed",
                    external_id=listing["external_id"],
                    url=listing.get("url"),
                )
        return {
            "item_id": link.vinted_item_id,
            "create_product": link.create_product,
            "product_id": product.id if product is not None else None,
            # The product's photos, to tell whether the listing shows exactly them (see `complete`).
            "image_urls": list(product.image_urls) if product is not None else [],
        }

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step(READ_ITEM, "Reading the Vinted listing", kind=READ_ITEM)]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        return PluginCall(PluginCommand(method="GET", path=item_path(context)), kind="read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if not reply.success and reply.status == 404:
            raise StepFailed(
                "item_unavailable",
                f"Vinted listing {context.input['item_id']} cannot be linked: Vinted says it is sold, reserved "
                "or gone. Check the item id, or run a sync of your Vinted listings to see its status.",
                kind="permanent",
            )
        check(reply)
        path = item_path(context)
        if context.input["create_product"]:
            item = parse(_ImportReply, reply, path).item
            return {"item_id": str(item.id), "url": item.url, "product": product_fields(item)}
        linked = parse(_LinkedReply, reply, path).item
        return {"item_id": str(linked.id), "url": linked.url, "photo_urls": photo_urls(linked.photos)}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return None  # a read: simply repeated

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None

    def complete(self, context: JobContext) -> Completion:
        data = context.accumulated
        item_id, url = context.input["item_id"], data.get("url")
        if context.input["create_product"]:
            product = data["product"]
            return Completion(
                result={"item_id": item_id, "url": url},
                effects=partial(_create_and_link, item_id, url, product),
            )
        product_id = context.input["product_id"]
        photos = data.get("photo_urls")
        return Completion(
            result={"item_id": item_id, "url": url, "product_id": product_id, "created_product": False},
            # The listing shows the product's photos only if they are the item's own; else none of them
            # (not None, "unknown": a listing row kept from an older, deleted listing would keep its photos),
            # so the first update uploads the product's photos.
            listing=Listed(
                external_id=item_id,
                url=url,
                status="active",
                image_urls=list(context.input["image_urls"]) if photos == context.input["image_urls"] else [],
            ),
            effects=partial(_linked_elsewhere, item_id, product_id),
        )


def product_fields(item: _ImportedItem) -> JsonDict:
    """The product a Vinted item makes (as NewProduct's fields, JSON for the job's data)."""
    extra: dict[str, Any] = item.model_extra or {}
    return {
        "title": item.title[:MAX_TITLE_LENGTH],
        "description": (item.description or "")[:MAX_DESCRIPTION_LENGTH],
        "price": str(_price(item)),
        "currency": item.currency_code or "EUR",
        "brand": _name(extra, ("brand", "brand_title", "brand_dto"), MAX_BRAND_LENGTH),
        "size": _name(extra, ("size_title", "size"), MAX_SIZE_LENGTH),
        # Not `status`: whether it names the condition or the listing's state in this read is not known.
        "condition": _name(extra, ("status_title",), MAX_CONDITION_LENGTH),
        "image_urls": photo_urls(item.photos),
        "quantity": 1,
        "marketplace_attributes": {
            "vinted": {
                "catalog_id": item.catalog_id,
                "status_id": item.status_id,
                "package_size_id": item.package_size_id,
                "brand_id": item.brand_id,
                "size_id": item.size_id,
                "color_ids": [colour for colour in (item.color1_id, item.color2_id) if colour is not None],
            }
        },
    }


def _price(item: _ImportedItem) -> Decimal:
    """The item's price in cents, as a product stores it; StepFailed when a product cannot hold it."""
    amount = item.amount
    price = amount.quantize(CENT, rounding=ROUND_HALF_UP) if 0 < amount <= MAX_PRICE else None
    if price is None or not 0 < price <= MAX_PRICE:
        raise StepFailed(
            "item_not_importable",
            f"Vinted listing {item.id} has a price a crosslist product cannot hold ({amount}); create the "
            "product yourself and link the listing to it with its product_id.",
            kind="permanent",
        )
    return price


def photo_urls(photos: list[_Photo]) -> list[str]:
    """The item's photos as image URLs (the largest Vinted gives), http(s) only, at most MAX_PHOTOS."""
    urls: list[str] = []
    for photo in photos:
        url = next(
            (
                candidate
                for candidate in (photo.full_size_url, photo.url)
                if candidate is not None
                and candidate.startswith(("https://", "http://"))
                and len(candidate) <= MAX_IMAGE_URL_LENGTH
            ),
            None,
        )
        if url is not None:
            urls.append(url)
    return urls[:MAX_PHOTOS]


def _name(extra: dict[str, Any], keys: tuple[str, ...], limit: int) -> str | None:
    """A human name (a brand, a size, a condition) from the first of `keys` that holds one: a string, or an
    object with a string `title` (Vinted's `brand_dto`). Ids and numbers are not names."""
    for key in keys:
        value = extra.get(key)
        if isinstance(value, dict):
            value = value.get("title")
        if isinstance(value, str) and value.strip() and not value.strip().isdigit():
            return value.strip()[:limit]
    return None


def _create_and_link(item_id: str, url: str | None, product: JsonDict, records: Records) -> JsonDict:
    """The product made from the item, and its listing. An item already linked (an import asked twice) is
    not made into a second product: the result names the product it is linked to."""
    for listing in records.listings():
        if listing.external_id == item_id and listing.status not in GONE_STATES:
            return {"product_id": listing.product_id, "created_product": False, "already_linked": True}
    product_id = records.create_product(NewProduct(**product))
    records.link(product_id, item_id, url, list(product["image_urls"]))
    return {"product_id": product_id, "created_product": True}


def _linked_elsewhere(item_id: str, product_id: str, records: Records) -> JsonDict:
    """Other products whose listing is this same item: reported, so the user can tell them apart."""
    others = [
        listing.product_id
        for listing in records.listings()
        if listing.external_id == item_id and listing.product_id != product_id and listing.status not in GONE_STATES
    ]
    return {"also_linked_to": others} if others else {}
