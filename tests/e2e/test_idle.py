"""An idle deployment leaves PostgreSQL alone, and still rescues a job whose wake-up was lost: the devstack's own
processes, with the schedules of template.yaml fired by hand as EventBridge Scheduler fires them, and the
DueTimes table in its moto (crosslist.due_times).

PostgreSQL transactions are counted as bench.idle counts them: xact_commit + xact_rollback of the devstack's
database in pg_stat_database, read from the `postgres` database, after the seconds a backend may keep its counts.
Those include autovacuum's: its worker visits each database about once a minute and commits a few transactions
there, with or without work. So the same view's client-only counters (sessions opened, time spent running
statements) must not move at all, and an idle spell whose transactions were all autovacuum's is measured again.

The functions keep the default settle window (120 s): nothing is announced while the system is idle, and the
rescue below is swept while the creation's announcement is that recent, so a shorter one would change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from unittest import mock

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.idle import STATS_SETTLE_SECONDS
from crosslist.jobs.sweeper import UNQUEUED_AFTER
from devstack import moto_server
from devstack.stack import DevStack
from tests.e2e.conftest import _forget_moto_state, _started_devstack, token
from tests.support.databases import empty_database

pytestmark = pytest.mark.integration

DATABASE = "crosslist_e2e_idle"
USER = "e2e-idle"
IDLE_MINUTES = 10
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SqsOutage:
    """In front of moto's server (as bench.idle counts DynamoDB requests there): while `on`, SQS refuses every
    message sent, as when the function cannot reach it. Nothing else is touched."""

    def __init__(self) -> None:
        self.on = False
        self.refused = 0
        self._make_server = moto_server.make_server  # type: ignore[attr-defined]  # werkzeug's, as imported there

    def serve(self, host: str, port: int, app: WsgiApp, **kw: Any) -> Any:
        return self._make_server(host, port, self._wrap(app), **kw)

    def _wrap(self, app: WsgiApp) -> WsgiApp:
        def refusing(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            if self.on and target in ("AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch"):
                self.refused += 1
                start_response("403 Forbidden", [("Content-Type", "application/x-amz-json-1.0")])
                return [b'{"__type": "com.amazon.coral.service#AccessDeniedException", "message": "unreachable"}']
            return app(environ, start_response)

        return refusing


@pytest.fixture(scope="module")
def sqs_outage() -> SqsOutage:
    return SqsOutage()


@pytest.fixture(scope="module")
def devstack(database_url: str, tmp_path_factory: pytest.TempPathFactory, sqs_outage: SqsOutage) -> Iterator[DevStack]:
    url = empty_database(database_url, DATABASE).render_as_string(hide_password=False)
    with mock.patch("devstack.moto_server.make_server", sqs_outage.serve):
        stack = _started_devstack(url, tmp_path_factory, {})
    yield stack
    stack.stop()
    _forget_moto_state()


@dataclass(frozen=True)
class Activity:
    """pg_stat_database's counters of the devstack's database."""

    transactions: int  # xact_commit + xact_rollback: every backend's, autovacuum's included
    sessions: int  # client connections opened
    active_ms: float  # client backends' time running statements

    def __sub__(self, other: Activity) -> Activity:
        return Activity(
            self.transactions - other.transactions, self.sessions - other.sessions, self.active_ms - other.active_ms
        )


def activity(stack: DevStack) -> Activity:
    """The devstack database's counters, once the backends have reported theirs (read from `postgres`)."""
    time.sleep(STATS_SETTLE_SECONDS)
    url = make_url(stack.database_url)
    admin = create_engine(url.set(database="postgres"))
    try:
        with admin.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT xact_commit + xact_rollback, sessions, active_time FROM pg_stat_database"
                    " WHERE datname = :database"
                ),
                {"database": url.database},
            ).one()
    finally:
        admin.dispose()
    return Activity(int(row[0]), int(row[1]), float(row[2]))


def due_time_item(stack: DevStack, watched: str) -> dict[str, Any]:
    item = stack.dynamodb.get_item(TableName="DueTimesTable", Key={"watched": {"S": watched}}, ConsistentRead=True)
    return {name: float(value["N"]) for name, value in item.get("Item", {}).items() if "N" in value}


def test_an_idle_devstack_opens_no_postgresql_transaction_and_still_rescues_a_lost_wake_up(
    devstack: DevStack, sqs_outage: SqsOutage
) -> None:
    every_minute = [name for name, schedule in devstack.schedules.items() if schedule.expression == "rate(1 minute)"]
    assert sorted(every_minute) == ["SchedulerFunction.SyncSchedule", "SweeperFunction.SweepSchedule"]
    for name in devstack.schedules:  # as a deployed stack has already done: each due time written once
        devstack.fire(name)

    before = activity(devstack)
    for _ in range(3):  # an idle spell autovacuum visited is measured again (a visit a minute at most)
        results = {name: [devstack.fire(name) for _ in range(IDLE_MINUTES)] for name in every_minute}
        refreshed = devstack.fire("OAuthRefreshFunction.RefreshSchedule")  # every 15 minutes
        after = activity(devstack)
        spell, before = after - before, after
        assert (spell.sessions, spell.active_ms) == (0, 0), f"the functions used PostgreSQL: {spell}"
        if spell.transactions == 0:
            break
    assert spell.transactions == 0, f"{spell.transactions} PostgreSQL transactions in {IDLE_MINUTES} idle minutes"
    assert results["SweeperFunction.SweepSchedule"] == [{"overdue_lanes": 0, "unqueued_jobs": 0}] * IDLE_MINUTES
    assert [result["due_rules"] for result in results["SchedulerFunction.SyncSchedule"]] == [0] * IDLE_MINUTES
    assert refreshed == {"due_for_refresh": 0}

    # A job is created while SQS refuses its wake-up: stored, not queued (the client is told to retry).
    headers = {"Authorization": f"Bearer {token(devstack, USER)}"}
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as api:
        sqs_outage.on = True
        try:
            stranded = api.post("/jobs", json={"marketplace": "vinted", "action": "sync"})
        finally:
            sqs_outage.on = False
        assert stranded.status_code == 503, stranded.text
        assert sqs_outage.refused > 0
        job_id = stranded.json()["job_id"]
        created_at = datetime.fromisoformat(api.get(f"/jobs/{job_id}").json()["created_at"]).timestamp()

        # The creation was announced before it committed: the next sweep looks, and records when the job is due.
        assert devstack.fire("SweeperFunction.SweepSchedule") == {"overdue_lanes": 0, "unqueued_jobs": 0}
        assert due_time_item(devstack, "lanes").get("due_at") == pytest.approx(
            created_at + UNQUEUED_AFTER.total_seconds(), abs=0.001
        )

        # The minute its own request has to retry it, which this test does not wait out (that the sweeps wait for
        # the due time and then find the job: tests/integration/test_due_times.py, on a clock it moves). A sweep
        # this soon after the creation looks at PostgreSQL anyway: the announcement has not settled.
        database = create_engine(devstack.database_url)
        with database.begin() as connection:
            connection.execute(
                text("UPDATE marketplace_jobs SET created_at = created_at - interval '2 minutes' WHERE id = :id"),
                {"id": job_id},
            )
        database.dispose()
        assert devstack.fire("SweeperFunction.SweepSchedule") == {"overdue_lanes": 0, "unqueued_jobs": 1}

        deadline = time.monotonic() + 20
        while (status := api.get(f"/jobs/{job_id}").json()["status"]) == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
    assert status == "waiting_for_plugin"  # woken and run by process_job: it waits for the user's extension
