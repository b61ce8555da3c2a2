"""Publish a product on eBay: inventory item → offer → publish.

Each id is saved as its step completes. The inventory item is written whole (sending it again is
harmless); an offer is created once per SKU and eBay site: a createOffer whose reply was lost is
verified by reading the SKU's offers, and one refused because the SKU has an offer (an earlier try, an
earlier listing of the product) takes that offer and brings it up to date. Publishing an offer twice
revises its one listing rather than creating a second: it is sent again when its reply was lost.

The jobs of a batch go in bulk (crosslist.marketplaces.ebay.bulk): one call saves, offers or publishes up to 25
products, each job taking its own part of eBay's answer.
"""

from __future__ import annotations

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.ebay import bulk
from crosslist.marketplaces.ebay.common import (
    INVENTORY,
    OFFER_EXISTS,
    EbayModel,
    errors_of,
    failure,
    find_offer,
    found_offer,
    headers,
    listing_url,
    offer,
    parse,
    product_input,
    put_inventory_item,
)
from crosslist.marketplaces.rest import ApiWorkflow
from crosslist.workflows.base import (
    Completion,
    Done,
    HttpCall,
    JobContext,
    JsonDict,
    Listed,
    ProductSnapshot,
    Reply,
    Step,
    StepAction,
    StepFailed,
)


class _Created(EbayModel):
    offer_id: str


class _Published(EbayModel):
    listing_id: str


STEPS = (
    Step("put_inventory_item", "Saving the item on eBay", kind="put_inventory_item"),
    Step("create_offer", "Creating the eBay offer", kind="create_offer"),
    Step("refresh_offer", "Bringing the offer up to date", kind="refresh_offer"),
    Step("publish_offer", "Publishing on eBay", kind="publish_offer"),
)
# Steps a batch's jobs share calls for (refresh_offer is a PUT per offer: eBay has no bulk form of it).
BULK_STEPS = frozenset({bulk.INVENTORY_ITEMS, bulk.OFFERS, bulk.PUBLICATIONS})


class EbayPublish(ApiWorkflow):
    marketplace: Marketplace = "ebay"
    action = "publish"
    max_bulk = bulk.MAX_BULK

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return product_input(product, "publish")

    def steps(self, job_input: JsonDict) -> list[Step]:
        return list(STEPS)

    def plan(self, step: Step, context: JobContext) -> StepAction:
        if step.kind == "put_inventory_item":
            return put_inventory_item(context)
        if step.kind == "create_offer":
            return HttpCall("POST", f"{INVENTORY}/offer", "write", headers=headers(context), json=offer(context))
        offer_id = context.accumulated["offer_id"]
        if step.kind == "refresh_offer":
            if context.accumulated.get("offer_created"):
                return Done(context.accumulated)  # just created from this job's product
            path = f"{INVENTORY}/offer/{offer_id}"
            return HttpCall("PUT", path, "write", headers=headers(context), json=offer(context), repeatable=True)
        return HttpCall("POST", f"{INVENTORY}/offer/{offer_id}/publish", "write", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if step.kind == "put_inventory_item":
            if not reply.success:
                raise failure(reply, "saving the inventory item")
            return {}
        if step.kind == "create_offer":
            if not reply.success:
                existing = _existing_offer(reply)
                if existing is None:
                    raise failure(reply, "creating the offer")
                return {"offer_id": existing, "offer_created": False}
            return {"offer_id": parse(_Created, reply, "creating the offer").offer_id, "offer_created": True}
        if step.kind == "refresh_offer":
            if not reply.success:
                raise failure(reply, "updating the offer")
            return context.accumulated
        if not reply.success:
            raise failure(reply, "publishing the offer")
        listing_id = parse(_Published, reply, "publishing the offer").listing_id
        return {**context.accumulated, "listing_id": listing_id}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return find_offer(context) if step.kind == "create_offer" else None

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        found = found_offer(context, reply)
        # Found: the lost createOffer landed (or an older offer of the product exists): brought up to date.
        return None if found is None else {"offer_id": found.offer_id, "offer_created": False}

    def bulk_group(self, step: Step, context: JobContext) -> str | None:
        return bulk.group(step, context, BULK_STEPS)

    def bulk_key(self, step: Step, context: JobContext) -> str:
        return bulk.key(step, context)

    def bulk_plan(self, step: Step, contexts: list[JobContext]) -> HttpCall:
        return bulk.plan(step, contexts)

    def bulk_apply(
        self, step: Step, contexts: list[JobContext], outcome: Reply | StepFailed
    ) -> dict[str, JsonDict | StepFailed]:
        return bulk.apply(step, contexts, outcome, self.apply)

    def complete(self, context: JobContext) -> Completion:
        listing_id = str(context.accumulated["listing_id"])
        url = listing_url(context, listing_id)
        return Completion(
            result={"listing_id": listing_id, "offer_id": context.accumulated["offer_id"], "url": url},
            listing=Listed(external_id=listing_id, url=url, image_urls=context.input["image_urls"]),
        )


def _existing_offer(reply: Reply) -> str | None:
    """The offer eBay names when refusing a second one for the SKU."""
    for error in errors_of(reply):
        if error.error_id == OFFER_EXISTS:
            for parameter in error.parameters:
                if parameter.name == "offerId" and parameter.value:
                    return parameter.value
    return None
