"""Bring a product's Vinted listing up to date: read the item, apply the product's current fields, and
PUT the whole object back (Vinted's update takes the full item). Fields crosslist does not manage keep
the values Vinted has. Photos are uploaded again only when the product's photos changed since the
listing was written; otherwise the item keeps its own.

A PUT of the same full object is idempotent, so one whose reply was lost is simply sent again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.vinted.delete import listed_item
from crosslist.marketplaces.vinted.publish import (
    ITEMS_PATH,
    UPLOAD_PHOTO,
    VintedId,
    assigned_photos,
    item_fields,
    photo_steps,
    product_input,
    upload_photo,
    uploaded_photo,
)
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

ITEM_PATH = ITEMS_PATH + "/{item_id}"
READ_ITEM = "read_item"
PUT_ITEM = "put_item"
# What Vinted's read shows but its update does not take back (colours come back as color1_id/color2_id).
READ_ONLY = ("photos", "url", "color1_id", "color2_id", "is_closed", "is_reserved", "is_hidden", "item_closing_action")


class _Photo(BaseModel):
    id: VintedId


class _EditableItem(BaseModel):
    """The item as GET item_upload/items/{id} shows it: its id and photos are what we rely on; every
    other field is kept as Vinted sent it."""

    model_config = ConfigDict(extra="allow")

    id: VintedId
    photos: list[_Photo] = Field(default_factory=list)


class ItemRead(BaseModel):
    item: _EditableItem


class _Saved(BaseModel):
    id: VintedId
    url: str | None = None


class _PutReply(BaseModel):
    item: _Saved


class VintedUpdate:
    marketplace: Marketplace = "vinted"
    action = "update"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        item_id = listed_item(product, "update")
        assert product is not None
        shown = product.listings["vinted"].get("image_urls")
        return {
            "item_id": item_id,
            # A listing already on sale is brought up to date whatever the stock: a sold-out product's goes
            # with a delete, which auto-delist queues.
            "product": product_input(product, self.action, code="product_not_updatable", for_sale=False),
            # Unknown (a listing older than crosslist's record of it): uploaded again to be sure.
            "photos_changed": shown != product.image_urls,
        }

    def steps(self, job_input: JsonDict) -> list[Step]:
        photos = photo_steps(len(job_input["product"]["image_urls"])) if job_input["photos_changed"] else []
        return [
            Step(READ_ITEM, "Reading the Vinted listing", kind=READ_ITEM),
            *photos,
            Step(PUT_ITEM, "Saving the Vinted listing", kind=PUT_ITEM),
        ]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        path = item_path(context)
        if step.kind == READ_ITEM:
            return PluginCall(PluginCommand(method="GET", path=path), kind="read", repeatable=True)
        if step.kind == UPLOAD_PHOTO:
            return upload_photo(context.input["product"], step, context)
        payload = {"item": self._updated(context)}
        return PluginCall(PluginCommand(method="PUT", path=path, payload=payload), kind="write", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if step.kind == UPLOAD_PHOTO:
            return uploaded_photo(step, context, reply)
        if not reply.success and reply.status == 404:
            raise StepFailed(
                "item_unavailable",
                "This Vinted listing can no longer be edited: Vinted says it is sold, reserved or gone. "
                "A sync of your Vinted listings shows its status.",
                kind="permanent",
            )
        check(reply)
        if step.kind == READ_ITEM:
            item = parse(ItemRead, reply, item_path(context)).item
            return {**context.accumulated, "item": item.model_dump(mode="json")}
        saved = parse(_PutReply, reply, item_path(context)).item
        return {**context.accumulated, "url": saved.url}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return None  # every call is repeatable

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None

    def complete(self, context: JobContext) -> Completion:
        item_id = context.input["item_id"]
        product = context.input["product"]
        before = as_put(context.accumulated["item"])
        after = self._updated(context)
        # What Vinted had and now has otherwise (a field its read does not show is not reported).
        changed = sorted(key for key, value in after.items() if key in before and before[key] != value)
        if context.input["photos_changed"]:
            changed.append("photos")
        return Completion(
            result={"item_id": item_id, "url": context.accumulated.get("url"), "changed": changed},
            listing=Listed(
                external_id=item_id,
                url=context.accumulated.get("url"),
                image_urls=list(product["image_urls"]),
            ),
        )

    @staticmethod
    def _updated(context: JobContext) -> JsonDict:
        """The full item to PUT: as Vinted has it, with crosslist's fields and photos applied."""
        item: dict[str, Any] = context.accumulated["item"]
        kept = as_put(item)
        photo_ids = (
            context.accumulated["photo_ids"]
            if context.input["photos_changed"]
            else [photo["id"] for photo in item.get("photos", [])]
        )
        return {**kept, **managed_fields(context.input["product"]), "assigned_photos": assigned_photos(photo_ids)}


def managed_fields(product: JsonDict) -> JsonDict:
    """The item fields crosslist sets from the product. A field the product leaves empty (no colour, no
    brand) is not among them: the listing keeps what it has on Vinted."""
    return {key: value for key, value in item_fields(product).items() if value not in (None, [])}


def as_put(item: JsonDict) -> JsonDict:
    """The item as read, in the shape its update takes (colours as color_ids, read-only fields left out)."""
    kept = {key: value for key, value in item.items() if key not in READ_ONLY}
    kept["color_ids"] = [colour for colour in (item.get("color1_id"), item.get("color2_id")) if colour is not None]
    return kept


def item_path(context: JobContext) -> str:
    return ITEM_PATH.format(item_id=quote(str(context.input["item_id"]), safe=""))
