"""Publish a product on Vinted: upload each photo, then create the item with the collected photo ids.

A create whose reply was lost may have landed: it is verified in the account's wardrobe (its newest
listings) before it is ever sent again, since a second create would be a duplicate listing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from urllib.parse import quote

from pydantic import BaseModel, Field, ValidationError, field_validator

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.product_check import NOT_PUBLISHABLE, checked_product
from crosslist.marketplaces.vinted import MAX_PHOTOS
from crosslist.marketplaces.vinted.replies import check, parse
from crosslist.realtime.messages import PluginCommand
from crosslist.workflows.base import (
    Completion,
    JobContext,
    JsonDict,
    Listed,
    PluginCall,
    ProductSnapshot,
    Reply,
    Step,
    StepAction,
    StepFailed,
)

PHOTOS_PATH = "/api/v2/photos"
ITEMS_PATH = "/api/v2/item_upload/items"
WARDROBE_PAGE_SIZE = 96  # Vinted's cap
# Newest first: a create that landed moments ago is on the first page.
WARDROBE_PATH = f"/api/v2/wardrobe/{{account_id}}/items?page=1&per_page={WARDROBE_PAGE_SIZE}&order=newest_first"
UPLOAD_PHOTO = "upload_photo"
CREATE_ITEM = "create_item"


class VintedAttributes(BaseModel):
    """Vinted's catalogue ids for a product, stored under marketplace_attributes["vinted"]."""

    catalog_id: int
    status_id: int
    package_size_id: int
    brand_id: int | None = None
    size_id: int | None = None
    color_ids: list[int] = Field(default_factory=list, max_length=2)


# Ids as Vinted sends them, bounded by what a listing row keeps (external_id is 100 characters).
VintedId = Annotated[int, Field(ge=1, le=2**63 - 1)] | Annotated[str, Field(min_length=1, max_length=100)]
MAX_LISTING_URL_LENGTH = 500  # marketplace_listings.url


class _PhotoReply(BaseModel):
    id: VintedId


class VintedItem(BaseModel):
    """An item in a Vinted reply: its id, and its URL when it can be stored."""

    id: VintedId
    url: str | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _keep_a_url_we_can_store(cls, url: object) -> object:
        # The item exists on Vinted whatever its URL looks like: an unusable URL must not lose its id.
        if not isinstance(url, str) or len(url) > MAX_LISTING_URL_LENGTH or not url.startswith("https://"):
            return None
        return url


class _ItemReply(BaseModel):
    item: VintedItem


class _Money(BaseModel):
    amount: Decimal
    currency_code: str | None = Field(default=None, max_length=10)


class _WardrobePhoto(BaseModel):
    id: VintedId


class _WardrobeItem(VintedItem):
    title: str = Field(max_length=1000)
    # {"amount": "27.90", "currency_code": "EUR"}, or a plain amount in older shapes.
    price: _Money | Decimal | None = None
    photos: list[_WardrobePhoto] = Field(default_factory=list, max_length=4 * MAX_PHOTOS)  # generous bound

    @property
    def amount(self) -> Decimal | None:
        return self.price.amount if isinstance(self.price, _Money) else self.price


class Wardrobe(BaseModel):
    items: list[_WardrobeItem] = Field(max_length=WARDROBE_PAGE_SIZE)


def _parse_item(reply: Reply, path: str) -> VintedItem:
    # Vinted answers {"item": {...}}; an extension that already unwrapped it sends the item itself.
    if reply.result is not None and "item" in reply.result:
        return parse(_ItemReply, reply, path, kind="retryable").item
    return parse(VintedItem, reply, path, kind="retryable")


def _created(context: JobContext, item: VintedItem) -> JsonDict:
    """The job's data once the item exists on Vinted, whether its create reply came or it was found later."""
    return {**context.accumulated, "item_id": str(item.id), "url": item.url}  # ids are strings everywhere


def account_in_path(context: JobContext, *, code: str, unable: str) -> str:
    """The executing tab's Vinted account id, quoted for a wardrobe path; a retryable StepFailed (`code`,
    starting with `unable`) when its extension did not report it."""
    if context.account_id is None:
        raise StepFailed(
            code,
            f"{unable}: the browser extension did not report which Vinted account it is logged in as. It will "
            "check again; update the crosslist extension if this keeps happening.",
            kind="retryable",
        )
    return quote(context.account_id, safe="")


def product_input(
    product: ProductSnapshot | None, action: str, *, code: str = NOT_PUBLISHABLE, for_sale: bool = True
) -> JsonDict:
    """What a job that writes the product to Vinted needs of it; InvalidRequest (with `code`) naming
    everything missing: the check eBay's and Etsy's jobs make (`for_sale`: the job puts the item on sale)."""
    product, attributes = checked_product(
        product, "vinted", action, VintedAttributes, max_photos=MAX_PHOTOS, code=code, for_sale=for_sale
    )
    return {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "price": product.price,
        "currency": product.currency,
        "brand": product.brand,
        "image_urls": product.image_urls,
        "vinted": attributes.model_dump(),
    }


def item_fields(product: JsonDict) -> JsonDict:
    """The item's fields crosslist manages, as Vinted's create and update take them. Since 2026 condition
    and size travel in `item_attributes`; `size_id` is still sent too."""
    vinted = product["vinted"]
    attributes = [{"code": "condition", "ids": [vinted["status_id"]]}]
    if vinted.get("size_id") is not None:
        attributes.append({"code": "size", "ids": [vinted["size_id"]]})
    return {
        "title": product["title"],
        "description": product["description"],
        "price": product["price"],
        "currency": product["currency"],
        "brand_id": vinted["brand_id"],
        "brand": product["brand"],
        "size_id": vinted["size_id"],
        "catalog_id": vinted["catalog_id"],
        "status_id": vinted["status_id"],
        "color_ids": vinted["color_ids"],
        "package_size_id": vinted["package_size_id"],
        "item_attributes": attributes,
    }


def assigned_photos(photo_ids: list[int | str]) -> list[JsonDict]:
    return [{"id": photo_id, "orientation": 0} for photo_id in photo_ids]


def photo_steps(count: int) -> list[Step]:
    return [
        Step(f"upload_photo_{n}", f"Uploading photo {n} of {count}", kind=UPLOAD_PHOTO, index=n - 1)
        for n in range(1, count + 1)
    ]


def upload_photo(product: JsonDict, step: Step, context: JobContext) -> PluginCall:
    """Upload the product's photo of `step`: repeatable (an unused photo id is harmless). The extension
    downloads the image itself: WebSocket messages are limited to 128 KB."""
    payload = {"image_url": product["image_urls"][step.index], "photo": {"type": "item", "temp_uuid": context.job_id}}
    return PluginCall(PluginCommand(method="POST", path=PHOTOS_PATH, payload=payload), kind="write", repeatable=True)


def uploaded_photo(step: Step, context: JobContext, reply: Reply) -> JsonDict:
    check(reply)
    # Retryable: an upload is simply done again.
    photo_id = parse(_PhotoReply, reply, PHOTOS_PATH, kind="retryable").id
    # Indexed, not appended: a repeated step can never add a photo twice.
    photo_ids = list(context.accumulated.get("photo_ids", []))[: step.index]
    photo_ids.append(photo_id)
    return {**context.accumulated, "photo_ids": photo_ids}


class VintedPublish:
    marketplace: Marketplace = "vinted"
    action = "publish"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return {"product": product_input(product, self.action)}

    def steps(self, job_input: JsonDict) -> list[Step]:
        photos = photo_steps(len(job_input["product"]["image_urls"]))
        return [*photos, Step("create_item", "Creating the Vinted listing", kind=CREATE_ITEM)]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        product = context.input["product"]
        if step.kind == CREATE_ITEM:
            payload = self._item_payload(context.job_id, product, context.accumulated["photo_ids"])
            return PluginCall(PluginCommand(method="POST", path=ITEMS_PATH, payload=payload), kind="write")
        return upload_photo(product, step, context)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        check(reply)
        if step.kind == CREATE_ITEM:
            # Retryable: Vinted accepted the create, so the item is looked for in the wardrobe next (the
            # engine marks a write whose reply could not be applied unconfirmed), never created again.
            return _created(context, _parse_item(reply, ITEMS_PATH))
        return uploaded_photo(step, context, reply)

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        if step.kind != CREATE_ITEM:
            return None  # a photo upload is safe to redo: an unused photo id is harmless
        unable = "The Vinted listing may already have been created, but crosslist cannot check"
        path = WARDROBE_PATH.format(account_id=account_in_path(context, code="cannot_verify", unable=unable))
        return PluginCall(PluginCommand(method="GET", path=path), kind="read", repeatable=True)

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        check(reply)
        try:
            wardrobe = Wardrobe.model_validate(reply.result)
        except ValidationError:
            raise StepFailed(
                "invalid_plugin_result",
                "Vinted's list of your listings could not be read, so crosslist cannot tell whether the "
                "listing was created; it will check again.",
                kind="retryable",
            ) from None
        product = context.input["product"]
        photo_ids = {str(photo_id) for photo_id in context.accumulated.get("photo_ids", [])}
        price = Decimal(str(product["price"]))
        for item in wardrobe.items:
            if item.title != product["title"]:
                continue
            # Photo ids belong to this upload session: the surest sign. The price tells it from an older
            # listing of another product with the same title.
            if any(str(photo.id) in photo_ids for photo in item.photos) or item.amount == price:
                return _created(context, item)
        return None

    def complete(self, context: JobContext) -> Completion:
        data = context.accumulated
        item_id = str(data["item_id"])
        return Completion(
            result={"item_id": item_id, "url": data.get("url"), "photo_ids": data["photo_ids"]},
            listing=Listed(
                external_id=item_id, url=data.get("url"), image_urls=list(context.input["product"]["image_urls"])
            ),
        )

    @staticmethod
    def _item_payload(job_id: str, product: JsonDict, photo_ids: list[int | str]) -> JsonDict:
        return {
            "item": {
                **item_fields(product),
                "assigned_photos": assigned_photos(photo_ids),
                "is_unisex": False,
            },
            "feedback_id": None,
            "push_up": False,
            "parcel": None,
            # Vinted groups an upload session by this id; the job id makes a retried create recognisable.
            "upload_session_id": job_id,
        }
