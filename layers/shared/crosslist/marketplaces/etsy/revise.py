"""Change or end a product's Etsy listing.

Update: the listing's fields (updateListing), then price and quantity (the listing's inventory: Etsy
keeps them there). Delete: the listing is deactivated: it leaves the shop window and stays in the shop,
so it can be renewed. Each call sets values, so one whose reply was lost is sent again.
"""

from __future__ import annotations

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.duplicates import duplicate_to_delete
from crosslist.marketplaces.etsy.common import failure, listing_fields, listing_url, price, product_input, shop
from crosslist.marketplaces.rest import ApiWorkflow, listed_on
from crosslist.workflows.base import (
    Completion,
    HttpCall,
    JobContext,
    JsonDict,
    Listed,
    ProductSnapshot,
    Reply,
    Step,
)


class EtsyUpdate(ApiWorkflow):
    marketplace: Marketplace = "etsy"
    action = "update"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        listing = listed_on(product, "etsy", "update")
        return {**product_input(product, "update"), "external_id": listing["external_id"]}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [
            Step("update_listing", "Updating the Etsy listing", kind="update_listing"),
            Step("update_inventory", "Updating price and quantity", kind="update_inventory"),
        ]

    def plan(self, step: Step, context: JobContext) -> HttpCall:
        item = context.input
        if step.kind == "update_listing":
            path = f"{shop(context)}/listings/{item['external_id']}"
            return HttpCall("PATCH", path, "write", json=listing_fields(item), repeatable=True)
        offering = {"price": price(item), "quantity": item["quantity"], "is_enabled": True}
        inventory = {"products": [{"sku": item["sku"], "property_values": [], "offerings": [offering]}]}
        path = f"/application/listings/{item['external_id']}/inventory"
        return HttpCall("PUT", path, "write", json=inventory, repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if not reply.success:
            raise failure(reply, step.description.lower())
        return {**context.accumulated, step.name: True}

    def complete(self, context: JobContext) -> Completion:
        listing_id = str(context.input["external_id"])
        return Completion(
            result={"listing_id": listing_id, "url": listing_url(listing_id)},
            listing=Listed(external_id=listing_id, url=listing_url(listing_id), image_urls=None),
        )


class EtsyDelete(ApiWorkflow):
    marketplace: Marketplace = "etsy"
    action = "delete"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        listing = listed_on(product, "etsy", "delete")
        assert product is not None
        listing_id = str(listing["external_id"])
        duplicate_id = duplicate_to_delete(params, listing_id)
        if duplicate_id is not None:  # a second live listing of the product: the product's own is left as it is
            return {"product_id": product.id, "external_id": duplicate_id, "duplicate_of": listing_id}
        return {"product_id": product.id, "external_id": listing["external_id"]}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("deactivate", "Ending the Etsy listing", kind="deactivate")]

    def plan(self, step: Step, context: JobContext) -> HttpCall:
        path = f"{shop(context)}/listings/{context.input['external_id']}"
        return HttpCall("PATCH", path, "delete", json={"state": "inactive"}, repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if not reply.success:
            if reply.status == 404:  # removed on Etsy meanwhile: it has ended either way
                return {"already_ended": True}
            raise failure(reply, "ending the listing")
        return {"already_ended": False}

    def complete(self, context: JobContext) -> Completion:
        listing_id = str(context.input["external_id"])
        duplicate = "duplicate_of" in context.input  # the product's own listing is left as it is
        return Completion(
            result={"listing_id": listing_id, "already_ended": bool(context.accumulated.get("already_ended"))},
            listing=None if duplicate else Listed(external_id=listing_id, url=None, status="closed"),
        )
