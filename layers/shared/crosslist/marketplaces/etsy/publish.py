"""Publish a product on Etsy: a draft listing → its photos, one step each → activation.

Each id is saved as its step completes. Activation charges the listing fee, so none of these writes is
blindly sent again: a draft whose reply was lost is looked for among the shop's drafts (same title), a
photo among the listing's photos (same rank), an activation in the listing's state.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.etsy.common import (
    Listing,
    Listings,
    failure,
    listing_fields,
    listing_url,
    parse,
    price,
    product_input,
    shop,
)
from crosslist.marketplaces.rest import ApiWorkflow
from crosslist.workflows.base import (
    Completion,
    HttpCall,
    ImageUpload,
    JobContext,
    JsonDict,
    Listed,
    ProductSnapshot,
    Reply,
    Step,
    StepAction,
    StepFailed,
)

DRAFTS_PAGE = 100


class _Image(BaseModel):
    listing_image_id: int
    rank: int = 0


class _Images(BaseModel):
    results: list[_Image] = Field(default_factory=list)


class EtsyPublish(ApiWorkflow):
    marketplace: Marketplace = "etsy"
    action = "publish"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return product_input(product, "publish")

    def steps(self, job_input: JsonDict) -> list[Step]:
        photos = len(job_input["image_urls"])
        return [
            Step("create_draft", "Creating the Etsy draft", kind="create_draft"),
            *(
                Step(f"upload_image_{n}", f"Uploading photo {n} of {photos}", kind="upload_image", index=n)
                for n in range(1, photos + 1)
            ),
            Step("activate", "Publishing on Etsy", kind="activate"),
        ]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        if step.kind == "create_draft":
            item, seller = context.input, context.input["seller"]
            draft = {
                **listing_fields(item),
                "quantity": item["quantity"],
                "price": price(item),
                "shipping_profile_id": seller["shipping_profile_id"],
                "readiness_state_id": seller["readiness_state_id"],
                "type": "physical",
            }
            return HttpCall("POST", f"{shop(context)}/listings", "write", json=draft)
        listing = f"{shop(context)}/listings/{context.accumulated['listing_id']}"
        if step.kind == "upload_image":
            url = context.input["image_urls"][step.index - 1]
            upload = ImageUpload(url, form={"rank": str(step.index)})
            return HttpCall("POST", f"{listing}/images", "write", upload=upload)
        return HttpCall("PATCH", listing, "write", json={"state": "active"})

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if not reply.success:
            raise failure(reply, step.description.lower())
        if step.kind == "create_draft":
            created = parse(Listing, reply, "creating the draft")
            return {"listing_id": created.listing_id, "url": created.url or listing_url(str(created.listing_id))}
        if step.kind == "upload_image":
            image = parse(_Image, reply, "uploading a photo")
            return {**context.accumulated, f"image_{step.index}": image.listing_image_id}
        return {**context.accumulated, "activated": True}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        if step.kind == "create_draft":
            path = f"{shop(context)}/listings?state=draft&limit={DRAFTS_PAGE}&offset=0"
            return HttpCall("GET", path, "read", repeatable=True)
        listing_id = context.accumulated["listing_id"]
        if step.kind == "upload_image":
            return HttpCall("GET", f"/application/listings/{listing_id}/images", "read", repeatable=True)
        return HttpCall("GET", f"/application/listings/{listing_id}", "read", repeatable=True)

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        if not reply.success:
            raise failure(reply, "checking whether an earlier try landed")
        if step.kind == "create_draft":
            drafts = parse(Listings, reply, "reading the drafts").results
            mine = [d for d in drafts if d.title == context.input["title"]]
            if not mine:
                return None
            draft = max(mine, key=lambda d: d.listing_id)  # the newest: ids grow
            return {"listing_id": draft.listing_id, "url": draft.url or listing_url(str(draft.listing_id))}
        if step.kind == "upload_image":
            images = parse(_Images, reply, "reading the photos").results
            landed = next((image for image in images if image.rank == step.index), None)
            return None if landed is None else {**context.accumulated, f"image_{step.index}": landed.listing_image_id}
        state = parse(Listing, reply, "reading the listing").state
        if state == "active":
            return {**context.accumulated, "activated": True}
        if state in ("draft", "inactive"):
            return None
        raise StepFailed("etsy_listing_state", f"the Etsy listing is {state}: it cannot be published", retryable=False)

    def complete(self, context: JobContext) -> Completion:
        listing_id = str(context.accumulated["listing_id"])
        url = str(context.accumulated.get("url") or listing_url(listing_id))
        return Completion(
            result={"listing_id": listing_id, "url": url},
            listing=Listed(external_id=listing_id, url=url, image_urls=context.input["image_urls"]),
        )
