"""Publish a product on Vinted: upload each photo, then create the item with the collected photo ids."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from crosslist.errors import InvalidRequest
from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.vinted import MAX_PHOTOS
from crosslist.realtime.messages import PluginCommand
from crosslist.realtime.relay import NoPluginConnection, PluginTimeout
from crosslist.workflows.base import (
    Completion,
    JobContext,
    JsonDict,
    Listed,
    ProductSnapshot,
    Step,
    StepFailed,
    StepTools,
)

PHOTOS_PATH = "/api/v2/photos"
ITEMS_PATH = "/api/v2/item_upload/items"


class VintedAttributes(BaseModel):
    """Vinted's catalogue ids for a product, stored under marketplace_attributes["vinted"]."""

    catalog_id: int
    status_id: int
    package_size_id: int
    brand_id: int | None = None
    size_id: int | None = None
    color_ids: list[int] = Field(default_factory=list, max_length=2)


class _PhotoReply(BaseModel):
    id: int | str


class _Item(BaseModel):
    id: int | str
    url: str | None = None


class _ItemReply(BaseModel):
    item: _Item


def _parse_item(result: dict[str, Any] | None) -> _Item:
    # Vinted answers {"item": {...}}; an extension that already unwrapped it sends the item itself.
    if result is not None and "item" in result:
        return _ItemReply.model_validate(result).item
    return _Item.model_validate(result)


class VintedPublish:
    marketplace: Marketplace = "vinted"
    action = "publish"
    needs_product = True

    def prepare(self, product: ProductSnapshot | None) -> JsonDict:
        if product is None:
            raise InvalidRequest("publishing on Vinted needs a product_id")
        problems: list[str] = []
        if not product.image_urls:
            problems.append("a Vinted listing needs at least one photo (image_urls is empty)")
        if len(product.image_urls) > MAX_PHOTOS:
            problems.append(f"Vinted accepts at most {MAX_PHOTOS} photos, the product has {len(product.image_urls)}")
        try:
            attributes = VintedAttributes.model_validate(product.marketplace_attributes.get("vinted") or {})
        except ValidationError as invalid:
            fields = sorted({".".join(str(p) for p in error["loc"]) for error in invalid.errors()})
            problems.append(f"marketplace_attributes.vinted is missing or invalid: {', '.join(fields)}")
            attributes = None
        if problems:
            raise InvalidRequest("; ".join(problems), code="product_not_publishable")
        assert attributes is not None
        return {
            "product": {
                "id": product.id,
                "title": product.title,
                "description": product.description,
                "price": product.price,
                "currency": product.currency,
                "brand": product.brand,
                "image_urls": product.image_urls,
                "vinted": attributes.model_dump(),
            }
        }

    def steps(self, job_input: JsonDict) -> list[Step]:
        count = len(job_input["product"]["image_urls"])
        uploads = [Step(f"upload_photo_{n}", f"Uploading photo {n} of {count}") for n in range(1, count + 1)]
        return [*uploads, Step("create_item", "Creating the Vinted listing")]

    def run_step(self, step: Step, context: JobContext, tools: StepTools) -> JsonDict:
        product = context.input["product"]
        if step.name == "create_item":
            photo_ids = context.accumulated["photo_ids"]
            reply = self._call(
                step,
                context,
                tools,
                PluginCommand(
                    method="POST", path=ITEMS_PATH, payload=self._item_payload(context.job_id, product, photo_ids)
                ),
            )
            try:
                item = _parse_item(reply)
            except ValidationError:
                raise StepFailed("invalid_plugin_result", "the item reply has no item id") from None
            return {**context.accumulated, "item_id": item.id, "url": item.url}

        index = int(step.name.removeprefix("upload_photo_")) - 1
        reply = self._call(
            step,
            context,
            tools,
            PluginCommand(
                method="POST",
                path=PHOTOS_PATH,
                # The extension downloads the image itself: WebSocket messages are limited to 128 KB.
                payload={
                    "image_url": product["image_urls"][index],
                    "photo": {"type": "item", "temp_uuid": context.job_id},
                },
            ),
        )
        try:
            photo_id = _PhotoReply.model_validate(reply).id
        except ValidationError:
            raise StepFailed("invalid_plugin_result", "the photo reply has no photo id") from None
        # Indexed, not appended: a repeated step can never add a photo twice.
        photo_ids = list(context.accumulated.get("photo_ids", []))[:index]
        photo_ids.append(photo_id)
        return {**context.accumulated, "photo_ids": photo_ids}

    def complete(self, context: JobContext) -> Completion:
        data = context.accumulated
        item_id = str(data["item_id"])
        return Completion(
            result={"item_id": item_id, "url": data.get("url"), "photo_ids": data["photo_ids"]},
            listing=Listed(external_id=item_id, url=data.get("url")),
        )

    @staticmethod
    def _call(step: Step, context: JobContext, tools: StepTools, command: PluginCommand) -> dict[str, Any] | None:
        try:
            reply = tools.plugin.call(
                user_id=context.user_id,
                job_id=context.job_id,
                step=step.name,
                command=command,
                timeout_ms=context.step_timeout_ms,
            )
        except NoPluginConnection as unavailable:
            raise StepFailed(unavailable.code, unavailable.message, retryable=False) from None
        except PluginTimeout:
            raise StepFailed(
                "plugin_timeout", f"the browser extension did not answer within {context.step_timeout_ms} ms"
            ) from None
        if not reply.success:
            raise StepFailed("plugin_error", reply.error or "the browser extension reported a failure")
        return reply.result

    @staticmethod
    def _item_payload(job_id: str, product: JsonDict, photo_ids: list[int | str]) -> JsonDict:
        vinted = product["vinted"]
        return {
            "item": {
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
                "assigned_photos": [{"id": photo_id, "orientation": 0} for photo_id in photo_ids],
                "is_unisex": False,
            },
            "feedback_id": None,
            "push_up": False,
            "parcel": None,
            # Vinted groups an upload session by this id; the job id makes a retried create recognisable.
            "upload_session_id": job_id,
        }
