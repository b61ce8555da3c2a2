"""Delete a product's Vinted listing (or, with `duplicate_id`, a second live item of it: see
crosslist.marketplaces.duplicates). Deleting twice is harmless (the second answers 404, "already
gone", which counts as success), so a delete whose reply was lost is simply sent again."""

from __future__ import annotations

from urllib.parse import quote

from crosslist.errors import InvalidRequest
from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.duplicates import duplicate_to_delete
from crosslist.marketplaces.vinted.replies import check
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
)

DELETE_PATH = "/api/v2/items/{item_id}/delete"
GONE_STATES = ("deleted",)


def listed_item(product: ProductSnapshot | None, action: str) -> str:
    """The Vinted item id of the product's listing; InvalidRequest when it has none to act on."""
    if product is None:
        raise InvalidRequest(f"{action} on Vinted needs a product_id")
    listing = product.listings.get("vinted")
    if listing is None or listing["status"] in GONE_STATES:
        raise InvalidRequest(f"this product has no Vinted listing to {action}", code="not_listed")
    return str(listing["external_id"])


class VintedDelete:
    marketplace: Marketplace = "vinted"
    action = "delete"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        item_id = listed_item(product, "delete")
        duplicate_id = duplicate_to_delete(params, item_id)
        return {"item_id": item_id} if duplicate_id is None else {"item_id": duplicate_id, "duplicate_of": item_id}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("delete_item", "Deleting the Vinted listing", kind="delete_item")]

    def plan(self, step: Step, context: JobContext) -> PluginCall:
        path = DELETE_PATH.format(item_id=quote(context.input["item_id"], safe=""))
        return PluginCall(PluginCommand(method="POST", path=path), kind="delete", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if not reply.success and reply.status == 404:
            return {"already_gone": True}  # sold and removed, deleted on the site, or our lost first try
        check(reply)
        return {"already_gone": False}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return None  # repeatable

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None

    def complete(self, context: JobContext) -> Completion:
        item_id = context.input["item_id"]
        return Completion(
            result={"item_id": item_id, "already_gone": bool(context.accumulated.get("already_gone"))},
            # A duplicate deleted: the product's own listing is left as it is.
            listing=None
            if "duplicate_of" in context.input
            else Listed(external_id=item_id, url=None, status="deleted"),
        )
