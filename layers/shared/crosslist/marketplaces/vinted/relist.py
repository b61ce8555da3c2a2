"""Relist ("repost") a Vinted listing, the safe way: read the item, upload its photos again, create the
new listing, see it in the wardrobe, and only then delete the old one. The listing record moves to the
new item. A create whose reply was lost is looked for in the wardrobe before it is ever sent again (as
a publish does), so there are never two new copies; the old one is deleted only once the new one is
seen, so there is never none.
"""

from __future__ import annotations

from urllib.parse import quote

from crosslist.errors import InvalidRequest
from crosslist.marketplaces.vinted.delete import DELETE_PATH, listed_item
from crosslist.marketplaces.vinted.publish import (
    CREATE_ITEM,
    ITEMS_PATH,
    UPLOAD_PHOTO,
    WARDROBE_PATH,
    VintedPublish,
    Wardrobe,
    account_in_path,
    assigned_photos,
    photo_steps,
    product_input,
    upload_photo,
)
from crosslist.marketplaces.vinted.replies import check, parse
from crosslist.marketplaces.vinted.update import ItemRead, as_put, item_path, managed_fields
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
    StepFailed,
)

READ_ITEM = "read_item"
CONFIRM_ITEM = "confirm_item"
DELETE_OLD = "delete_old"


class VintedRelist(VintedPublish):
    action = "relist"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        item_id = listed_item(product, "relist")
        assert product is not None
        if product.listings["vinted"]["status"] not in ("active", "hidden"):
            status = product.listings["vinted"]["status"]
            raise InvalidRequest(f"a {status} Vinted listing cannot be relisted", code="not_relistable")
        return {"item_id": item_id, "product": product_input(product, self.action)}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [
            Step(READ_ITEM, "Reading the Vinted listing", kind=READ_ITEM),
            *photo_steps(len(job_input["product"]["image_urls"])),
            Step("create_item", "Creating the new Vinted listing", kind=CREATE_ITEM),
            Step(CONFIRM_ITEM, "Checking the new listing is live", kind=CONFIRM_ITEM),
            Step(DELETE_OLD, "Deleting the old Vinted listing", kind=DELETE_OLD),
        ]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        if step.kind == READ_ITEM:
            return PluginCall(PluginCommand(method="GET", path=item_path(context)), kind="read", repeatable=True)
        if step.kind == UPLOAD_PHOTO:
            return upload_photo(context.input["product"], step, context)
        if step.kind == CREATE_ITEM:
            command = PluginCommand(method="POST", path=ITEMS_PATH, payload=self._new_item(context))
            return PluginCall(command, kind="write")  # verified in the wardrobe if its reply is lost
        if step.kind == CONFIRM_ITEM:
            return PluginCall(PluginCommand(method="GET", path=_wardrobe(context)), kind="read", repeatable=True)
        path = DELETE_PATH.format(item_id=quote(context.input["item_id"], safe=""))
        return PluginCall(PluginCommand(method="POST", path=path), kind="delete", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if step.kind == READ_ITEM:
            if not reply.success and reply.status == 404:
                raise StepFailed(
                    "item_unavailable",
                    "This Vinted listing cannot be relisted: Vinted says it is sold, reserved or gone.",
                    kind="permanent",
                )
            check(reply)
            item = parse(ItemRead, reply, item_path(context)).item
            return {**context.accumulated, "item": item.model_dump(mode="json")}
        if step.kind == CONFIRM_ITEM:
            check(reply)
            wardrobe = parse(Wardrobe, reply, _wardrobe(context))
            if not any(str(item.id) == str(context.accumulated["item_id"]) for item in wardrobe.items):
                raise StepFailed(
                    "relist_not_visible",
                    "The new Vinted listing is not in your wardrobe yet; the old one is kept until it is.",
                    kind="retryable",
                )
            return context.accumulated
        if step.kind == DELETE_OLD:
            if not reply.success and reply.status == 404:
                return context.accumulated  # already gone
            if not reply.success and reply.status is not None and 400 <= reply.status < 500 and reply.status != 429:
                old, new = context.input["item_id"], context.accumulated["item_id"]
                raise StepFailed(
                    "old_listing_not_deleted",
                    f"The new listing {new} is live, but Vinted refused to delete the old one ({old}): delete it on "
                    f"Vinted so the item is not listed twice. Vinted said: {reply.error or reply.status}",
                    kind="permanent",
                )
            check(reply)
            return context.accumulated
        return super().apply(step, context, reply)  # a photo, the create

    def complete(self, context: JobContext) -> Completion:
        data = context.accumulated
        item_id = str(data["item_id"])
        return Completion(
            result={"item_id": item_id, "url": data.get("url"), "old_item_id": context.input["item_id"]},
            listing=Listed(
                external_id=item_id, url=data.get("url"), image_urls=list(context.input["product"]["image_urls"])
            ),
        )

    @staticmethod
    def _new_item(context: JobContext) -> JsonDict:
        """The old item as Vinted has it, with crosslist's fields and the new photos: a new listing."""
        kept = {key: value for key, value in as_put(context.accumulated["item"]).items() if key != "id"}
        photos = assigned_photos(context.accumulated["photo_ids"])
        return {
            "item": {**kept, **managed_fields(context.input["product"]), "assigned_photos": photos},
            "feedback_id": None,
            "push_up": False,
            "parcel": None,
            "upload_session_id": context.job_id,
        }


def _wardrobe(context: JobContext) -> str:
    account = account_in_path(context, code="cannot_verify", unable="crosslist cannot check the new listing")
    return WARDROBE_PATH.format(account_id=account)
