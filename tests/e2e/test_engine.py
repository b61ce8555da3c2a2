"""The engine through the devstack with Vinted pacing on (short ranges): parked jobs go on by themselves
when a tab connects, and consecutive Vinted calls keep the configured minimum gap."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import pytest

from devstack.stack import DevStack
from tests.e2e.conftest import Frontend, Tab

pytestmark = pytest.mark.integration

MIN_GAP_SECONDS = 1.0
DEVSTACK_ENVIRONMENT = {
    "CROSSLIST_PACING": "on",
    "CROSSLIST_PACING_READ": "1-1.5",
    "CROSSLIST_PACING_WRITE": "1-1.5",
    "CROSSLIST_PACING_DELETE": "1-1.5",
    "CROSSLIST_PACING_MIN_GAP": str(MIN_GAP_SECONDS),
    "CROSSLIST_BACKOFF": "1,1,1",
}


async def wait_for(frontend: Frontend, job_ids: list[str], statuses: set[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [(await frontend.call("GET", f"/jobs/{job_id}"))[1] for job_id in job_ids]
        if all(job["status"] in statuses for job in jobs) or time.monotonic() > deadline:
            return jobs
        await asyncio.sleep(0.2)


def test_parked_jobs_all_complete_once_a_tab_connects_with_paced_calls(devstack: DevStack) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Tab]:
        async with aiohttp.ClientSession() as session:
            frontend = Frontend(devstack, session, "e2e-parked")
            job_ids = []
            for _ in range(3):
                product = await frontend.product(images=1)
                status, job = await frontend.call(
                    "POST", "/jobs", {"marketplace": "vinted", "action": "publish", "product_id": product["id"]}
                )
                assert status == 202, job
                job_ids.append(job["id"])
            parked = await wait_for(frontend, job_ids, {"waiting_for_plugin"}, timeout=10)

            tab = Tab("e2e-parked")
            task = asyncio.create_task(tab.run(devstack, session))
            done = await wait_for(frontend, job_ids, {"completed", "failed"}, timeout=40)
            await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return parked, done, tab

    parked, done, tab = asyncio.run(scenario())
    assert [(job["status"], job["wait_reason"]) for job in parked] == [("waiting_for_plugin", "no_plugin")] * 3
    assert [job["status"] for job in done] == ["completed"] * 3, done
    assert [c["step"] for c in tab.commands] == ["upload_photo_1", "create_item"] * 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(tab.received_at)]
    assert min(gaps) >= MIN_GAP_SECONDS - 0.05  # (the tab's clock sees delivery, not the send)
    # A tab connects before its extension says it is ready: the jobs may wait for that a moment.
    reasons = {m["reason"] for m in tab.of_type("job.waiting")}
    assert "pacing" in reasons
    assert reasons <= {"pacing", "plugin_not_ready"}
