"""Sync rules through the devstack: its EventBridge Scheduler (devstack.schedules, the template's
SchedulerFunction schedule) fires the scheduler function, which queues a due rule's job on time, once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import Engine, create_engine, text

from devstack.schedules import Scheduler
from devstack.stack import DevStack
from tests.e2e.conftest import Frontend, Tab

pytestmark = pytest.mark.integration

USER = "e2e-sync-rules"
SCHEDULE = "SchedulerFunction.SyncSchedule"
# The schedule is rate(1 minute); the test's scheduler lives 60 times faster: a tick every second.
SPEED = 60
TICK_SECONDS = 60 / SPEED


class FastScheduler:
    """The devstack's scheduler over the devstack's schedule and function, on a clock that runs SPEED times
    faster than the wall clock (the functions keep the real one)."""

    def __init__(self, stack: DevStack) -> None:
        started_at, started = datetime.now(UTC), time.monotonic()
        self._stopping = threading.Event()
        self.results: list[dict[str, Any]] = []

        def invoke(schedule: Any, event: dict[str, Any]) -> None:
            self.results.append(stack.pools[schedule.function].invoke(event).result)

        self._scheduler = Scheduler(
            [stack.schedules[SCHEDULE]],
            invoke,
            clock=lambda: started_at + timedelta(seconds=(time.monotonic() - started) * SPEED),
            wait=lambda seconds: self._stopping.wait(seconds / SPEED),
        )

    def __enter__(self) -> FastScheduler:
        self._scheduler.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._scheduler.stop(timeout=10)


@pytest.fixture
def database(devstack: DevStack) -> Iterator[Engine]:
    engine = create_engine(devstack.database_url)
    yield engine
    engine.dispose()


def orders_jobs(database: Engine) -> list[tuple[str, datetime, str]]:
    with database.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, created_at, status FROM marketplace_jobs"
                " WHERE user_id = :user AND action_code = 'orders' ORDER BY created_at"
            ),
            {"user": USER},
        ).all()
    return [(str(row.id), row.created_at, str(row.status)) for row in rows]


def make_due_in(database: Engine, seconds: float) -> datetime:
    """Set the orders rule's last run so that it is due `seconds` from now; returns when."""
    due = datetime.now(UTC) + timedelta(seconds=seconds)
    with database.begin() as connection:
        connection.execute(
            text(
                "UPDATE sync_rules SET last_run_at = :ran"
                " WHERE user_id = :user AND marketplace = 'vinted' AND kind = 'orders'"
            ),
            {"ran": due - timedelta(minutes=5), "user": USER},
        )
    return due


def test_the_devstack_fires_a_due_rule_on_time_and_never_queues_a_second_while_its_job_waits(
    devstack: DevStack, database: Engine
) -> None:
    assert SCHEDULE in devstack.schedules  # read from template.yaml like every other schedule

    async def scenario() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            # A tab whose extension is not ready: the user is connected, the job waits for the extension.
            tab = Tab(USER, ready=False)
            task = asyncio.create_task(tab.run(devstack, session))
            await asyncio.wait_for(tab.connected.wait(), 10)
            frontend = Frontend(devstack, session, USER)
            status, _ = await frontend.call(
                "PUT",
                "/sync-rules",
                {
                    "rules": [
                        {"marketplace": "vinted", "kind": "orders", "interval_minutes": 5},
                        {"marketplace": "vinted", "kind": "listings", "enabled": False},
                    ]
                },
            )
            assert status == 200
            due = make_due_in(database, 3 * TICK_SECONDS)
            with FastScheduler(devstack) as scheduler:
                while not orders_jobs(database) and datetime.now(UTC) < due + timedelta(seconds=15):
                    await asyncio.sleep(0.1)
                await asyncio.sleep(3 * TICK_SECONDS)  # more ticks: the rule is not due again
                queued = orders_jobs(database)
                _, queued_rules = await frontend.call("GET", "/sync-rules")

                make_due_in(database, 0)  # due again while its job still waits for the extension
                ticks = len(scheduler.results)
                while len(scheduler.results) < ticks + 2:
                    await asyncio.sleep(0.1)
                _, skipped_rules = await frontend.call("GET", "/sync-rules")
                results = list(scheduler.results)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return {
                "due": due,
                "queued": queued,
                "queued_rules": queued_rules,
                "skipped_rules": skipped_rules,
                "after": orders_jobs(database),
                "results": results,
            }

    seen = asyncio.run(scenario())

    [(job_id, created_at, _)] = seen["queued"]
    # On time: not before it was due, and at the first tick from then (ticks come every TICK_SECONDS).
    assert seen["due"] <= created_at <= seen["due"] + timedelta(seconds=TICK_SECONDS + 1.5), (seen["due"], created_at)
    assert sum(result["queued"] for result in seen["results"]) == 1
    orders = {rule["kind"]: rule for rule in seen["queued_rules"]["rules"] if rule["marketplace"] == "vinted"}
    assert (orders["orders"]["last_outcome"]["code"], orders["orders"]["last_outcome"]["job_id"]) == ("queued", job_id)
    assert orders["listings"]["last_outcome"] is None  # disabled: never run
    # Due again while the job waits for the extension: none queued, and the rule says why.
    skipped = next(rule for rule in seen["skipped_rules"]["rules"] if rule["kind"] == "orders")
    assert (skipped["last_outcome"]["code"], skipped["last_outcome"]["job_id"]) == ("skipped_active_job", job_id)
    assert [(job, status) for job, _, status in seen["after"]] == [(job_id, "waiting_for_plugin")]
