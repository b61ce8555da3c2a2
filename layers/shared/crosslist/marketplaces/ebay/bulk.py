"""eBay's bulk calls, for a batch's jobs (crosslist.workflows.bulk): up to 25 inventory items, offers, publications
or price and quantity changes in one call.

eBay answers each request on its own (`responses`: statusCode, sku or offerId, errors, warnings; HTTP 200, or 207
when some failed): each response is handed to the job's own `apply` as if it had been the answer to its single
call, so a refused item fails its job with eBay's words and an offer that already exists is taken up as it is.
What may be sent again is as for single calls: an inventory item, a publication and a price change set values;
an offer is not (a lost bulkCreateOffer is verified job by job, getOffers by SKU, before anything is created again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crosslist.marketplaces.ebay.common import INVENTORY, failure, headers, inventory_item, offer
from crosslist.marketplaces.photos import IMAGE_HOST_UNAVAILABLE, IMAGE_UNAVAILABLE
from crosslist.marketplaces.rest import MAX_MESSAGE
from crosslist.workflows.base import HttpCall, JobContext, JsonDict, Reply, Step, StepFailed

MAX_BULK = 25  # eBay's limit for each of these calls
INVENTORY_ITEMS = "put_inventory_item"
OFFERS = "create_offer"
PUBLICATIONS = "publish_offer"
PRICES = "update_price_quantity"
PATHS = {
    INVENTORY_ITEMS: f"{INVENTORY}/bulk_create_or_replace_inventory_item",
    OFFERS: f"{INVENTORY}/bulk_create_offer",
    PUBLICATIONS: f"{INVENTORY}/bulk_publish_offer",
    PRICES: f"{INVENTORY}/bulk_update_price_quantity",
}
DOING = {
    INVENTORY_ITEMS: "saving the inventory items",
    OFFERS: "creating the offers",
    PUBLICATIONS: "publishing the offers",
    PRICES: "updating prices and quantities",
}
Apply = Callable[[Step, JobContext, Reply], JsonDict]


def group(step: Step, context: JobContext, kinds: frozenset[str]) -> str | None:
    """Jobs share a call when they are at the same kind of step for the same eBay site (its Content-Language)."""
    if step.kind not in kinds:
        return None
    return f"{step.kind}:{context.input['seller']['marketplace_id']}"


def key(step: Step, context: JobContext) -> str:
    """eBay names a publication by its offer id, every other item by its SKU."""
    return str(context.accumulated["offer_id"] if step.kind == PUBLICATIONS else context.input["sku"])


def plan(
    step: Step, contexts: list[JobContext], price_quantity: Callable[[JobContext], JsonDict] | None = None
) -> HttpCall:
    """The call for `contexts`' step; `price_quantity`: one job's request to bulkUpdatePriceQuantity (an update's)."""
    path, lead = PATHS[step.kind], contexts[0]
    if step.kind == INVENTORY_ITEMS:
        locale = headers(lead)["Content-Language"].replace("-", "_")
        items = [{"sku": c.input["sku"], "locale": locale, **inventory_item(c.input)} for c in contexts]
        # eBay downloads the photos itself: each is checked first (crosslist.marketplaces.api).
        photos = tuple(dict.fromkeys(url for c in contexts for url in c.input["image_urls"]))
        body = {"requests": items}
        return HttpCall("POST", path, "write", headers=headers(lead), json=body, repeatable=True, photos=photos)
    if step.kind == OFFERS:
        return HttpCall("POST", path, "write", headers=headers(lead), json={"requests": [offer(c) for c in contexts]})
    if step.kind == PUBLICATIONS:
        body = {"requests": [{"offerId": c.accumulated["offer_id"]} for c in contexts]}
        return HttpCall("POST", path, "write", json=body, repeatable=True)
    assert price_quantity is not None, step.kind
    body = {"requests": [price_quantity(c) for c in contexts]}
    return HttpCall("POST", path, "write", json=body, repeatable=True)


def apply(
    step: Step, contexts: list[JobContext], outcome: Reply | StepFailed, apply_one: Apply
) -> dict[str, JsonDict | StepFailed]:
    """Each job's part of eBay's answer, through `apply_one` (the workflow's single-call apply)."""
    if isinstance(outcome, StepFailed):  # never sent: a photo fails the jobs showing it, the others go again
        return _photo_blamed(contexts, outcome)
    responses = (outcome.result or {}).get("responses")
    if not isinstance(responses, list):  # the call failed as a whole (a 429, a 5xx, a refused request)
        if not outcome.success:
            raise failure(outcome, DOING[step.kind])
        responses = []
    answers: dict[str, dict[str, Any]] = {}
    for response in responses:
        if isinstance(response, dict):
            named = response.get("offerId" if step.kind == PUBLICATIONS else "sku")
            answers.setdefault(str(named), response)
    parts: dict[str, JsonDict | StepFailed] = {}
    for context in contexts:
        answer = answers.get(key(step, context))
        if answer is None:
            parts[context.job_id] = StepFailed(
                "ebay_reply_unrecognised",
                f"eBay's answer to {DOING[step.kind]} did not mention this item",
                retryable=False,
                detail={"body": str(outcome.result)[:MAX_MESSAGE]},
            )
            continue
        try:
            parts[context.job_id] = apply_one(step, context, _item_reply(answer))
        except StepFailed as refused:
            parts[context.job_id] = refused
    return parts


def _item_reply(answer: dict[str, Any]) -> Reply:
    """One response of a bulk call as the answer to that item's single call."""
    status = answer.get("statusCode")
    status = status if isinstance(status, int) else 500
    errors = answer.get("errors") or []
    ok = status < 300 and not errors
    said = "; ".join(str(e.get("longMessage") or e.get("message")) for e in errors if isinstance(e, dict))
    return Reply(ok, answer, None if ok else (said or f"HTTP {status}"), status=status)


def _photo_blamed(contexts: list[JobContext], failed: StepFailed) -> dict[str, JsonDict | StepFailed]:
    url = (failed.detail or {}).get("url")
    blamed: dict[str, JsonDict | StepFailed] = {
        c.job_id: failed
        for c in contexts
        if failed.code in (IMAGE_UNAVAILABLE, IMAGE_HOST_UNAVAILABLE) and url in c.input.get("image_urls", [])
    }
    if not blamed:
        raise failed
    return blamed
