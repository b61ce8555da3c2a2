"""The engine's bulk calls (crosslist.jobs.bulk) with lanes in memory and eBay's publish workflow, fast: what a whole
call's failure, one item's retryable failure and a broken photo do to the jobs a call carries. (End to end, with
PostgreSQL and the fake eBay: tests/integration/test_ebay_bulk.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from crosslist.db.models import JobStatus
from crosslist.jobs import engine
from crosslist.jobs.lanes import Job
from crosslist.marketplaces.photos import photo_failed
from crosslist.workflows.base import HttpCall, JsonDict, Reply
from tests.unit.test_engine import CONTINUED, IDLE, START, TIMER, USER, World, dynamodb, world  # noqa: F401 - its fixtures

INVENTORY = "/sell/inventory/v1"
SELLER = {
    "marketplace_id": "EBAY_GB",
    "payment_policy_id": "pay",
    "fulfillment_policy_id": "ship",
    "return_policy_id": "ret",
    "merchant_location_key": "home",
}
Answer = Callable[[HttpCall], Reply | BaseException | None]  # None: eBay's usual answer


@pytest.fixture
def lane(world: World) -> World:  # noqa: F811
    """The engine's world (tests/unit/test_engine.py), for an eBay lane."""
    return world


class BulkEbay:
    """eBay's bulk calls, answering each item as eBay would unless `answers` (tried in order, each once) says
    otherwise for a call; records every call."""

    def __init__(self) -> None:
        self.calls: list[HttpCall] = []
        self.answers: list[Answer] = []
        self._offers = 0

    def __call__(self, user_id: str, marketplace: str, call: HttpCall, timeout_seconds: float) -> Reply:
        self.calls.append(call)
        for answer in list(self.answers):
            given = answer(call)
            if given is not None:
                self.answers.remove(answer)
                if isinstance(given, BaseException):
                    raise given
                return given
        requests = (call.json or {}).get("requests", [])
        if call.path.endswith("bulk_create_or_replace_inventory_item"):
            return ok([{"statusCode": 200, "sku": r["sku"]} for r in requests])
        if call.path.endswith("bulk_create_offer"):
            return ok([{"statusCode": 200, "sku": r["sku"], "offerId": self._offer()} for r in requests])
        if call.path.endswith("bulk_publish_offer"):
            return ok([{"statusCode": 200, "offerId": r["offerId"], "listingId": f"L{r['offerId']}"} for r in requests])
        if call.path.endswith("/publish"):
            return Reply(True, {"listingId": "L" + call.path.split("/")[-2]}, None, status=200)
        raise AssertionError(f"unexpected call {call.method} {call.path}")

    def _offer(self) -> str:
        self._offers += 1
        return f"o-{self._offers}"

    def paths(self) -> list[tuple[str, int]]:
        """Each call's path after the Inventory API's, and how many items it carried."""
        return [(c.path.removeprefix(f"{INVENTORY}/"), len((c.json or {}).get("requests", []))) for c in self.calls]


def ok(responses: list[JsonDict]) -> Reply:
    failed = any(r["statusCode"] >= 300 for r in responses)
    return Reply(True, {"responses": responses}, None, status=207 if failed else 200)


def publishes(lane: World, count: int) -> tuple[BulkEbay, list[Job]]:
    ebay = BulkEbay()
    lane.http = ebay
    batch_id = uuid.uuid4()
    jobs = []
    for number in range(1, count + 1):
        job_input = {
            "product_id": str(uuid.uuid4()),
            "sku": f"CL-{number}",
            "title": f"Levi's 501 #{number}",
            "description": "Straight fit",
            "image_urls": [f"https://images.test/{number}.jpg"],
            "quantity": 1,
            "price": "27.90",
            "currency": "GBP",
            "category_id": "11483",
            "condition": "USED_GOOD",
            "aspects": {},
            "seller": SELLER,
        }
        jobs.append(lane.store.add_job(marketplace="ebay", batch_id=batch_id, input=job_input))
    return ebay, jobs


def statuses(lane: World, jobs: list[Job]) -> list[JobStatus]:
    return [lane.store.job(job.id).status for job in jobs]


def test_a_whole_bulk_call_throttled_pauses_the_lane_and_no_job_uses_an_attempt(lane: World) -> None:
    ebay, jobs = publishes(lane, 3)
    errors = {"errors": [{"errorId": 2001, "message": "Too many requests"}]}
    throttled = Reply(False, errors, "429", status=429, retry_after=60)
    ebay.answers.append(lambda call: throttled if call.path.endswith("bulk_create_offer") else None)

    assert lane.wake("ebay") is TIMER
    stored = lane.store.lane(USER, "ebay")
    assert (stored.pause_reason, stored.in_flight) == ("rate_limited", None)
    assert statuses(lane, jobs) == [JobStatus.WAITING, JobStatus.PENDING, JobStatus.PENDING]
    assert [lane.store.job(job.id).current_step for job in jobs] == [1, 1, 1]
    assert {lane.store.job(job.id).unconfirmed_step for job in jobs} == {None}  # a 429 was not carried out

    lane.clock.advance(61)
    assert lane.wake("ebay") is IDLE
    assert ebay.paths() == [
        ("bulk_create_or_replace_inventory_item", 3),
        ("bulk_create_offer", 3),
        ("bulk_create_offer", 3),
        ("bulk_publish_offer", 3),
    ]
    assert statuses(lane, jobs) == [JobStatus.COMPLETED] * 3
    assert {lane.store.job(job.id).attempts for job in jobs} == {1}


def test_an_item_ebay_could_not_publish_for_now_backs_off_alone_and_the_others_complete(lane: World) -> None:
    ebay, jobs = publishes(lane, 3)

    def one_fails(call: HttpCall) -> Reply | None:
        if not call.path.endswith("bulk_publish_offer"):
            return None
        offer_ids = [r["offerId"] for r in (call.json or {})["requests"]]
        error = {"errorId": 25001, "message": "A system error has occurred"}
        return ok(
            [{"statusCode": 500, "offerId": offer_ids[1], "errors": [error]}]
            + [{"statusCode": 200, "offerId": o, "listingId": f"L{o}"} for o in (offer_ids[0], offer_ids[2])]
        )

    ebay.answers.append(one_fails)

    assert lane.wake("ebay") is TIMER  # the others completed; the lane comes to the one in backoff and waits
    assert statuses(lane, jobs) == [JobStatus.COMPLETED, JobStatus.WAITING, JobStatus.COMPLETED]
    backed_off = lane.store.job(jobs[1].id)
    assert (backed_off.attempts, backed_off.wait_reason) == (2, "backoff")
    assert (backed_off.error or {}).get("code") == "ebay_unavailable"
    assert backed_off.next_attempt_at is not None
    assert backed_off.next_attempt_at.timestamp() <= START + 36

    lane.clock.advance(40)
    assert lane.wake("ebay") is IDLE
    assert statuses(lane, jobs) == [JobStatus.COMPLETED] * 3
    assert ebay.paths()[-2:] == [("bulk_publish_offer", 3), ("offer/o-2/publish", 0)]  # alone now: a single call


def test_a_broken_photo_fails_its_job_alone_and_the_bulk_call_goes_again_without_it(lane: World) -> None:
    ebay, jobs = publishes(lane, 3)
    broken = "https://images.test/2.jpg"

    def photo_checked(call: HttpCall) -> BaseException | None:  # as crosslist.marketplaces.api checks them
        return photo_failed(broken, "HTTP 404", retryable=False) if broken in call.photos else None

    ebay.answers.append(photo_checked)

    assert lane.wake("ebay") is IDLE
    assert statuses(lane, jobs) == [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED]
    failed: Any = lane.store.job(jobs[1].id).error
    assert (failed["code"], failed["detail"]) == ("image_unavailable", {"url": broken})
    assert ebay.paths() == [
        ("bulk_create_or_replace_inventory_item", 3),  # never sent: the photo was checked first
        ("bulk_create_or_replace_inventory_item", 2),
        ("bulk_create_offer", 2),
        ("bulk_publish_offer", 2),
    ]


def test_a_batch_larger_than_a_call_goes_in_groups_of_25_each_finishing_before_the_next_starts(lane: World) -> None:
    ebay, jobs = publishes(lane, 30)

    outcomes = [lane.wake("ebay")]
    while outcomes[-1] is not IDLE:
        outcomes.append(lane.wake("ebay"))

    assert statuses(lane, jobs) == [JobStatus.COMPLETED] * 30
    assert ebay.paths() == [
        ("bulk_create_or_replace_inventory_item", 25),
        ("bulk_create_offer", 25),
        ("bulk_publish_offer", 25),
        ("bulk_create_or_replace_inventory_item", 5),
        ("bulk_create_offer", 5),
        ("bulk_publish_offer", 5),
    ]
    assert [r["sku"] for r in (ebay.calls[0].json or {})["requests"]] == [f"CL-{n}" for n in range(1, 26)]


def test_a_wake_up_that_has_run_its_time_hands_over_to_a_new_invocation(
    lane: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk turn is long (a call for 25 jobs, then 25 jobs applied): a wake-up takes no turn it could not finish
    within process_job's timeout."""
    ebay, jobs = publishes(lane, 3)
    monkeypatch.setattr(engine, "WAKE_BUDGET_SECONDS", 0.0)

    assert lane.wake("ebay") is CONTINUED
    assert ebay.paths() == [("bulk_create_or_replace_inventory_item", 3)]
    [(_, _, cause)] = lane.wakes.calls
    assert cause.startswith("continue:")
    while lane.wake("ebay") is not IDLE:
        pass
    assert statuses(lane, jobs) == [JobStatus.COMPLETED] * 3
