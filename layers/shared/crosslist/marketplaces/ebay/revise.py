"""Change or end a product's eBay listing. Both start by reading the product's offer (its id is not kept:
eBay's SKU finds it).

Update: the inventory item is replaced whole (title, description, photos, condition, item specifics:
eBay revises the live listing from it), the offer only when its category changed, and price and
quantity go through bulk_update_price_quantity. Each write sets values, so one whose reply was lost is
sent again. Delete: the offer is withdrawn: the listing ends and the offer stays, so publishing the
product again relists it. Withdrawing an offer already withdrawn is no error.

The updates of a batch save their inventory items and change their prices and quantities in bulk
(crosslist.marketplaces.ebay.bulk), up to 25 in a call; each finds its offer on its own (getOffers has no bulk form).
"""

from __future__ import annotations

from pydantic import Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.ebay import bulk
from crosslist.marketplaces.ebay.common import (
    INVENTORY,
    EbayError,
    EbayModel,
    check_in_inventory,
    ebay_sku,
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
from crosslist.marketplaces.rest import ApiWorkflow, listed_on
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

FIND_OFFER = Step("find_offer", "Finding the eBay offer", kind="find_offer")
UPDATE_BULK_STEPS = frozenset({bulk.INVENTORY_ITEMS, bulk.PRICES})


class _PriceQuantityResult(EbayModel):
    status_code: int = 200
    errors: list[EbayError] = Field(default_factory=list)


class _PriceQuantityResults(EbayModel):
    responses: list[_PriceQuantityResult] = Field(default_factory=list)


def _offer_found(context: JobContext, reply: Reply) -> JsonDict:
    found = found_offer(context, reply)
    if found is None:
        raise StepFailed(
            "ebay_offer_missing",
            "eBay has no offer for this product any more (ended or removed on eBay): sync eBay, then publish it again",
            retryable=False,
        )
    return {
        "offer_id": found.offer_id,
        "category_id": found.category_id,
        "listing_id": found.listing.listing_id if found.listing else None,
        "published": found.status == "PUBLISHED",
    }


class EbayUpdate(ApiWorkflow):
    marketplace: Marketplace = "ebay"
    action = "update"
    max_bulk = bulk.MAX_BULK

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        listing = listed_on(product, "ebay", "update")
        assert product is not None
        check_in_inventory(product, "update")
        return {**product_input(product, "update"), "external_id": listing["external_id"]}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [
            FIND_OFFER,
            Step("put_inventory_item", "Updating the item on eBay", kind="put_inventory_item"),
            Step("update_offer", "Updating the eBay offer", kind="update_offer"),
            Step("update_price_quantity", "Updating price and quantity", kind="update_price_quantity"),
        ]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        if step.kind == "find_offer":
            return find_offer(context)
        if step.kind == "put_inventory_item":
            return put_inventory_item(context)
        offer_id = context.accumulated["offer_id"]
        if step.kind == "update_offer":
            if context.accumulated.get("category_id") == context.input["category_id"]:
                return Done(context.accumulated)  # price and quantity follow; nothing else lives on the offer
            path = f"{INVENTORY}/offer/{offer_id}"
            return HttpCall("PUT", path, "write", headers=headers(context), json=offer(context), repeatable=True)
        change = {"requests": [price_quantity(context)]}
        return HttpCall("POST", f"{INVENTORY}/bulk_update_price_quantity", "write", json=change, repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if step.kind == "find_offer":
            return _offer_found(context, reply)
        if not reply.success:
            raise failure(reply, f"the update ({step.description.lower()})")
        if step.kind == "update_price_quantity":
            results = parse(_PriceQuantityResults, reply, "updating price and quantity").responses
            refused = [r for r in results if r.status_code >= 400 or r.errors]
            if refused:
                message = "; ".join(e.long_message or e.message for r in refused for e in r.errors) or "refused"
                raise StepFailed(
                    "ebay_refused",
                    f"eBay refused the new price or quantity: {message}",
                    retryable=False,
                    detail={"responses": [r.model_dump(by_alias=True) for r in refused]},
                )
        return context.accumulated

    def bulk_group(self, step: Step, context: JobContext) -> str | None:
        return bulk.group(step, context, UPDATE_BULK_STEPS)

    def bulk_key(self, step: Step, context: JobContext) -> str:
        return bulk.key(step, context)

    def bulk_plan(self, step: Step, contexts: list[JobContext]) -> HttpCall:
        return bulk.plan(step, contexts, price_quantity)

    def bulk_apply(
        self, step: Step, contexts: list[JobContext], outcome: Reply | StepFailed
    ) -> dict[str, JsonDict | StepFailed]:
        return bulk.apply(step, contexts, outcome, self.apply)

    def complete(self, context: JobContext) -> Completion:
        listing_id = str(context.accumulated.get("listing_id") or context.input["external_id"])
        url = listing_url(context, listing_id)
        return Completion(
            result={"listing_id": listing_id, "url": url},
            listing=Listed(external_id=listing_id, url=url, image_urls=context.input["image_urls"]),
        )


def price_quantity(context: JobContext) -> JsonDict:
    """The product's request to bulkUpdatePriceQuantity: its stock, and its offer's quantity and price."""
    item = context.input
    return {
        "sku": item["sku"],
        "shipToLocationAvailability": {"quantity": item["quantity"]},
        "offers": [
            {
                "offerId": context.accumulated["offer_id"],
                "availableQuantity": item["quantity"],
                "price": {"value": item["price"], "currency": item["currency"]},
            }
        ],
    }


class EbayDelete(ApiWorkflow):
    marketplace: Marketplace = "ebay"
    action = "delete"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        listing = listed_on(product, "ebay", "delete")
        assert product is not None
        check_in_inventory(product, "end")
        sku = ebay_sku(product.id, product.marketplace_attributes.get("ebay") or {})
        return {"product_id": product.id, "sku": sku, "external_id": listing["external_id"]}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [FIND_OFFER, Step("withdraw_offer", "Ending the eBay listing", kind="withdraw_offer")]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        if step.kind == "find_offer":
            return find_offer(context)
        if not context.accumulated.get("published"):
            return Done({**context.accumulated, "already_ended": True})
        path = f"{INVENTORY}/offer/{context.accumulated['offer_id']}/withdraw"
        return HttpCall("POST", path, "delete", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if step.kind == "find_offer":
            found = found_offer(context, reply)
            if found is None:
                return {"offer_id": None, "published": False}
            return {"offer_id": found.offer_id, "published": found.status == "PUBLISHED"}
        if not reply.success:
            if reply.status == 404:  # withdrawn or removed meanwhile: the listing has ended either way
                return {**context.accumulated, "already_ended": True}
            raise failure(reply, "ending the listing")
        return {**context.accumulated, "already_ended": False}

    def complete(self, context: JobContext) -> Completion:
        listing_id = context.input["external_id"]
        return Completion(
            result={"listing_id": listing_id, "already_ended": bool(context.accumulated.get("already_ended"))},
            listing=Listed(external_id=listing_id, url=None, status="closed"),
        )
