"""A batch's eBay publishes in bulk calls (crosslist.jobs.bulk, crosslist.marketplaces.ebay.bulk), end to end: real
PostgreSQL, the real handlers, the fake eBay over HTTP. Up to 25 products a call, each job taking its own part of
eBay's answer; never an offer twice, whatever is lost; a cancel, a job of higher priority, a crash in the middle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crosslist.marketplaces.api import MarketplaceApi
from crosslist.workflows.base import HttpCall, Reply
from tests.integration.test_ebay_etsy import Marketplaces, job_row, marketplaces  # noqa: F401 - its fixture
from tests.integration.test_engine import Killed, run_with_kills

pytestmark = pytest.mark.integration

INVENTORY = "/sell/inventory/v1"
BULK = ("bulk_create_or_replace_inventory_item", "bulk_create_offer", "bulk_publish_offer")


@pytest.fixture
def shop(marketplaces: Marketplaces) -> Marketplaces:  # noqa: F811
    """alice, her eBay account connected with the settings a publish needs."""
    marketplaces.ready("ebay")
    return marketplaces


def batch(shop: Marketplaces, products: int, **extra: Any) -> dict[str, Any]:
    """A batch of eBay publishes of `products` fresh products; its jobs in the lane's order (oldest first)."""
    ids = [shop.product(images=1) for _ in range(products)]
    body = {"marketplace": "ebay", "action": "publish", "product_ids": ids, **extra}
    created = shop.backend.http("POST", "/jobs/batch", body=body)
    assert created.status == 202, created.body
    return dict(created.body)


def inventory_calls(shop: Marketplaces, since: int = 0) -> list[tuple[str, str, int]]:
    """The Inventory API calls eBay got: (method, path after /sell/inventory/v1/, how many items a bulk one carried)."""
    return [
        (call.method, call.path.removeprefix(f"{INVENTORY}/"), len((call.body or {}).get("requests", [])))
        for call in shop.ebay.calls[since:]
        if call.path.startswith(INVENTORY)
    ]


def on_the_call(
    monkeypatch: pytest.MonkeyPatch, path_end: str, action: Callable[[], None], *, after: bool = False
) -> None:
    """Do `action` once, inside process_job, while the call to a path ending in `path_end` is made (before it is sent,
    or once it has landed with `after`)."""
    call_api = MarketplaceApi.__call__
    done: list[bool] = []

    def calling(self: MarketplaceApi, user_id: str, marketplace: str, call: HttpCall, *args: Any, **kw: Any) -> Reply:
        due = call.path.endswith(path_end) and not done
        if due and not after:
            done.append(True)
            action()
        reply = call_api(self, user_id, marketplace, call, *args, **kw)
        if due and after:
            done.append(True)
            action()
        return reply

    monkeypatch.setattr(MarketplaceApi, "__call__", calling)


def one_listing_each(shop: Marketplaces, skus: list[str]) -> None:
    """Each SKU has exactly one offer on eBay, published, with one live listing."""
    offers = shop.ebay.offers("alice")
    assert sorted(offer["sku"] for offer in offers) == sorted(skus)
    assert {offer["status"] for offer in offers} == {"PUBLISHED"}
    live = [listing for listing in shop.ebay.listings("alice") if listing["listingStatus"] == "ACTIVE"]
    assert sorted(listing["sku"] for listing in live) == sorted(skus)


def test_25_publishes_go_in_three_bulk_calls_and_the_items_ebay_refuses_fail_alone_with_its_reason(
    shop: Marketplaces,
) -> None:
    backend, ebay = shop.backend, shop.ebay
    tab = backend.connect()[1]
    created = batch(shop, 25)
    jobs = [job["id"] for job in created["jobs"]]
    sku = {job["id"]: f"CL-{job['product_id']}" for job in created["jobs"]}
    refused = {jobs[3]: "inventory_item", jobs[10]: "offer", jobs[24]: "publish"}
    for job_id, at in refused.items():
        ebay.refuse_sku(sku[job_id], f"The category does not accept this item ({at})", at=at)
    first = len(ebay.calls)

    backend.run_queue(wait_timers=30)

    assert inventory_calls(shop, first) == [
        ("POST", "bulk_create_or_replace_inventory_item", 25),
        ("POST", "bulk_create_offer", 24),
        ("POST", "bulk_publish_offer", 23),
    ]
    views = {job_id: backend.job(job_id) for job_id in jobs}
    assert {job_id for job_id, view in views.items() if view["status"] == "failed"} == set(refused)
    for job_id, at in refused.items():
        error = views[job_id]["error"]
        assert error["code"] == "ebay_refused", error
        assert f"The category does not accept this item ({at})" in error["message"]
        assert error["detail"]["errors"][0]["errorId"] == 25005
        assert views[job_id]["attempts"] == 1
    published = [job_id for job_id in jobs if job_id not in refused]
    assert all(views[job_id]["status"] == "completed" for job_id in published)
    offers = {offer["sku"]: offer["status"] for offer in ebay.offers("alice")}
    assert offers == {**{sku[job_id]: "PUBLISHED" for job_id in published}, sku[jobs[24]]: "UNPUBLISHED"}
    listings = {listing["sku"]: listing["listingId"] for listing in ebay.listings("alice")}
    assert all(views[job_id]["result"]["listing_id"] == listings[sku[job_id]] for job_id in published)
    # The user follows each job step by step, and the batch's counts as each ends.
    assert len([m for m in backend.gateway.of_type(tab, "job.completed") if m["job_id"] in published]) == 22
    counts = [m["counts"] for m in backend.gateway.of_type(tab, "batch.progress")][-1]
    assert (counts["completed"], counts["failed"], counts["pending"]) == (22, 3, 0)
    steps = {m["step"] for m in backend.gateway.of_type(tab, "job.progress") if m["job_id"] == published[5]}
    assert steps == {"put_inventory_item", "create_offer", "refresh_offer"}


def test_a_publish_alone_or_outside_a_batch_still_makes_single_calls(shop: Marketplaces) -> None:
    first = len(shop.ebay.calls)
    single = shop.run(shop.job("ebay", "publish", shop.product()))
    alone = batch(shop, 1)["jobs"][0]["id"]
    shop.backend.run_queue(wait_timers=30)

    assert single["status"] == "completed", single
    assert shop.backend.job(alone)["status"] == "completed"
    calls = [(method, path.split("/")[0]) for method, path, _ in inventory_calls(shop, first)]
    assert calls == [("PUT", "inventory_item"), ("POST", "offer"), ("POST", "offer")] * 2


def test_a_lost_bulk_create_offer_reply_creates_no_second_offer(shop: Marketplaces, sql: Any) -> None:
    """bulkCreateOffer lands but a gateway answers 504: each job looks for its offer by SKU before anything is created
    again, and the batch's jobs still share the publishing call."""
    created = batch(shop, 6)
    shop.ebay.fail(r"/bulk_create_offer$", 504, after_landing=True)
    first = len(shop.ebay.calls)

    shop.backend.run_queue(wait_timers=30)

    assert [shop.backend.job(job["id"])["status"] for job in created["jobs"]] == ["completed"] * 6
    one_listing_each(shop, [f"CL-{job['product_id']}" for job in created["jobs"]])
    calls = inventory_calls(shop, first)
    assert calls.count(("POST", "bulk_create_offer", 6)) == 1  # never sent again
    assert not [call for call in calls if call[:2] == ("POST", "offer")]  # nor one by one
    assert len([call for call in calls if call[0] == "GET"]) == 6  # each job looked for its offer once
    assert calls[-1] == ("POST", "bulk_publish_offer", 6)
    lead = created["jobs"][0]["id"]
    assert job_row(sql, lead)["attempts"] == 2  # the whole call's failure: the lane's job's, after one backoff


@pytest.mark.parametrize("path_end", BULK)
def test_process_job_dying_between_a_bulk_call_and_its_reply_resumes_without_a_second_offer(
    shop: Marketplaces, monkeypatch: pytest.MonkeyPatch, path_end: str
) -> None:
    created = batch(shop, 5)

    def die() -> None:
        raise Killed(f"process_job died once {path_end} had landed")

    on_the_call(monkeypatch, path_end, die, after=True)
    first = len(shop.ebay.calls)

    kills = run_with_kills(shop.backend)

    assert kills == 1
    assert [shop.backend.job(job["id"])["status"] for job in created["jobs"]] == ["completed"] * 5
    one_listing_each(shop, [f"CL-{job['product_id']}" for job in created["jobs"]])
    calls = inventory_calls(shop, first)
    sent = [path for method, path, _ in calls if method == "POST" and path.startswith("bulk_")]
    if path_end == "bulk_create_offer":  # not repeatable: each job verifies its own, none is sent twice
        assert sent == list(BULK)
        assert len([call for call in calls if call[0] == "GET"]) == 5
    else:  # repeatable: the same bulk call again, and on
        assert sent == [*BULK[: BULK.index(path_end) + 1], *BULK[BULK.index(path_end) :]]


def test_a_job_cancelled_during_a_bulk_call_stops_at_the_step_boundary_and_leaves_the_group(
    shop: Marketplaces, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = shop.backend
    created = batch(shop, 4)
    leaving = created["jobs"][2]
    answers: list[Any] = []

    def cancel() -> None:
        answers.append(backend.http("POST", f"/jobs/{leaving['id']}/cancel"))

    on_the_call(monkeypatch, "bulk_create_or_replace_inventory_item", cancel)
    first = len(shop.ebay.calls)

    backend.run_queue(wait_timers=30)

    [answer] = answers
    assert (answer.status, answer.body["status"], answer.body["cancel_requested"]) == (200, "running", True)
    assert backend.job(leaving["id"])["status"] == "cancelled"
    others = [job for job in created["jobs"] if job["id"] != leaving["id"]]
    assert [backend.job(job["id"])["status"] for job in others] == ["completed"] * 3
    assert inventory_calls(shop, first) == [
        ("POST", "bulk_create_or_replace_inventory_item", 4),  # its step was in flight: carried out
        ("POST", "bulk_create_offer", 3),
        ("POST", "bulk_publish_offer", 3),
    ]
    one_listing_each(shop, [f"CL-{job['product_id']}" for job in others])


def test_a_job_of_higher_priority_waits_for_one_bulk_call_not_for_the_whole_group(
    shop: Marketplaces, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = batch(shop, 5)
    urgent_product = shop.product()
    urgent: list[str] = []

    def queue_urgent() -> None:
        urgent.append(shop.job("ebay", "publish", urgent_product, priority=1))

    on_the_call(monkeypatch, "bulk_create_or_replace_inventory_item", queue_urgent)
    first = len(shop.ebay.calls)

    shop.backend.run_queue(wait_timers=30)

    assert shop.backend.job(urgent[0])["status"] == "completed"
    assert [shop.backend.job(job["id"])["status"] for job in created["jobs"]] == ["completed"] * 5
    assert [(method, path.split("/")[0], n) for method, path, n in inventory_calls(shop, first)] == [
        ("POST", "bulk_create_or_replace_inventory_item", 5),
        ("PUT", "inventory_item", 0),  # the urgent job, as soon as the bulk call was applied
        ("POST", "offer", 0),
        ("POST", "offer", 0),
        ("POST", "bulk_create_offer", 5),
        ("POST", "bulk_publish_offer", 5),
    ]


def test_a_batch_of_updates_saves_items_and_changes_prices_in_bulk_after_finding_each_offer(shop: Marketplaces) -> None:
    backend = shop.backend
    published = batch(shop, 4)
    backend.run_queue(wait_timers=30)
    products = [job["product_id"] for job in published["jobs"]]
    for number, product_id in enumerate(products):
        changed = backend.http("PATCH", f"/products/{product_id}", body={"price": f"3{number}.00", "quantity": 2})
        assert changed.status == 200, changed.body
    first = len(shop.ebay.calls)

    body = {"marketplace": "ebay", "action": "update", "product_ids": products}
    updates = backend.http("POST", "/jobs/batch", body=body).body
    backend.run_queue(wait_timers=30)

    assert [backend.job(job["id"])["status"] for job in updates["jobs"]] == ["completed"] * 4
    assert [(method, path.split("?")[0], n) for method, path, n in inventory_calls(shop, first)] == [
        *[("GET", "offer", 0)] * 4,  # getOffers has no bulk form: each job finds its offer, then they go together
        ("POST", "bulk_create_or_replace_inventory_item", 4),
        ("POST", "bulk_update_price_quantity", 4),
    ]
    prices = {offer["sku"]: offer["pricingSummary"]["price"]["value"] for offer in shop.ebay.offers("alice")}
    assert prices == {f"CL-{product_id}": f"3{number}.00" for number, product_id in enumerate(products)}
    assert {listing["availableQuantity"] for listing in shop.ebay.listings("alice")} == {2}
