"""Restarting the devstack on the same state dir and database, as `make dev` does: what is waiting goes on.

A Vinted publish fails once and waits out its backoff; the devstack stops and starts again before the
backoff ends (moto, which holds the queues, starts empty as in a new process). The job must resume when its
backoff ends, woken by its timer as SQS would keep it, not by the sweeper a minute later (its schedules are
off here: without the timer the job would not resume at all). The fake eBay's listings must still be there.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import httpx
import pytest

from devstack.plugin import VintedSimulator
from devstack.stack import DevStack
from tests.e2e.conftest import Frontend, Tab, _forget_moto_state, _started_devstack
from tests.support.databases import empty_database
from tests.unit import test_fake_ebay as ebay_api

pytestmark = pytest.mark.integration

DATABASE = "crosslist_e2e_restart"
USER = "e2e-restarted"
# Long enough for a stop and a start on a loaded 2-core machine, short enough for the suite (±20 % jitter).
BACKOFF_SECONDS = 8
ON_TIME_SECONDS = 2.0  # SQS delays by whole seconds; then the trigger's poll and the turn itself


@dataclass
class Restarted:
    backoff: dict[str, Any]  # the job as GET /jobs/{id} showed it while it waited out its backoff
    restarted_at: float  # time.time() once the devstack was up again
    resumed_at: float  # time.time() when the tab got the step again
    job: dict[str, Any]  # the job once it ended
    ebay_listing: str  # published on the fake eBay before the restart
    ebay_listings_after: list[str]
    ebay_listing_published_after: str


@pytest.fixture(scope="module")
def restarted(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Restarted:
    url = empty_database(database_url, DATABASE).render_as_string(hide_password=False)
    environment = {"CROSSLIST_BACKOFF": f"{BACKOFF_SECONDS},{BACKOFF_SECONDS},{BACKOFF_SECONDS}"}
    vinted = VintedSimulator(latency_ms=0, faults={"upload_photo_1": ["unavailable"]})

    stack = _started_devstack(url, tmp_path_factory, environment)
    try:
        job_id, backoff = asyncio.run(_publish_until_backoff(stack, vinted))
        ebay_listing = _publish_on_the_fake_ebay(stack)
    finally:
        stack.stop()
        _forget_moto_state()  # moto's queues and tables are gone, as when `make dev` is started again

    stack = DevStack(stack.config)  # the same ports (the product's image URLs), state dir and database
    try:
        stack.start()
        restarted_at = time.time()
        resumed_at, job = asyncio.run(_resume(stack, vinted, job_id, backoff))
        after = [listing["listingId"] for listing in stack.ebay.listings("dev")]
        published_after = _publish_on_the_fake_ebay(stack)
    finally:
        stack.stop()
        _forget_moto_state()
    return Restarted(backoff, restarted_at, resumed_at, job, ebay_listing, after, published_after)


async def _publish_until_backoff(stack: DevStack, vinted: VintedSimulator) -> tuple[str, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        tab = Tab(USER, vinted=vinted)
        task = asyncio.create_task(tab.run(stack, session))
        await asyncio.wait_for(tab.connected.wait(), 30)
        frontend = Frontend(stack, session, USER)
        product = await frontend.product(images=1)
        publish = {"marketplace": "vinted", "action": "publish", "product_id": product["id"]}
        status, job = await frontend.call("POST", "/jobs", publish)
        assert status == 202, job
        deadline = time.monotonic() + 30
        while job.get("wait_reason") != "backoff" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            _, job = await frontend.call("GET", f"/jobs/{job['id']}")
        assert (job["status"], job["wait_reason"]) == ("waiting", "backoff"), job
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return str(job["id"]), job


async def _resume(
    stack: DevStack, vinted: VintedSimulator, job_id: str, backoff: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """Reconnect the tab, then wait for the step to come back: when it came, and the job once ended."""
    due = datetime.fromisoformat(backoff["wait_until"]).timestamp()
    async with aiohttp.ClientSession() as session:
        tab = Tab(USER, vinted=vinted)
        task = asyncio.create_task(tab.run(stack, session))
        await asyncio.wait_for(tab.connected.wait(), 30)
        while not tab.commands and time.time() < due + 10:  # the sweeper would have come within 90 s
            await asyncio.sleep(0.05)
        resumed_at = time.time() - (time.monotonic() - tab.received_at[0]) if tab.received_at else float("inf")
        frontend = Frontend(stack, session, USER)
        deadline = time.monotonic() + 30
        _, job = await frontend.call("GET", f"/jobs/{job_id}")
        while job["status"] not in ("completed", "failed") and tab.commands and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            _, job = await frontend.call("GET", f"/jobs/{job_id}")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return resumed_at, job


def _publish_on_the_fake_ebay(stack: DevStack) -> str:
    """A listing published straight on the devstack's fake eBay (as its seller would on the site): its id."""
    token = stack.ebay.issue_tokens("dev")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Language": "en-GB"}
    with httpx.Client(base_url=stack.ebay.base_url, headers=headers) as seller:
        _, listing_id = ebay_api.published(stack.ebay, seller, sku=f"sku-{time.monotonic_ns()}")
    return listing_id


def test_a_job_in_backoff_resumes_when_its_backoff_ends_after_the_devstack_restarted(restarted: Restarted) -> None:
    due = datetime.fromisoformat(restarted.backoff["wait_until"]).timestamp()

    assert restarted.restarted_at < due, "the restart took longer than the backoff: the test shows nothing"
    assert due <= restarted.resumed_at <= due + ON_TIME_SECONDS, (restarted.resumed_at - due, restarted.backoff)
    assert (restarted.job["status"], restarted.job["attempts"]) == ("completed", 2), restarted.job


def test_the_fake_ebays_listings_survive_the_restart_and_its_ids_are_never_handed_out_again(
    restarted: Restarted,
) -> None:
    assert restarted.ebay_listings_after == [restarted.ebay_listing]
    assert restarted.ebay_listing_published_after != restarted.ebay_listing
