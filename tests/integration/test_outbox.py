"""One event mechanism (issue 19): a job's end is recorded in the outbox in its own transaction, delivered once it
commits, by the sweeper when the Lambda died in between, and never for a change rolled back; auto-delist acts
once per sale however often its reaction runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from crosslist import runtime
from crosslist.db.models import JobStatus
from crosslist.events.events import Event
from crosslist.jobs.lanes import Earliest
from crosslist.jobs.reactions import AfterCommit
from crosslist.jobs.sweeper import UNDISPATCHED_AFTER, next_sweep_finds
from crosslist.orders.delist import AUTO_DELIST
from tests.integration.conftest import Backend
from tests.integration.test_auto_delist import jobs_of, list_on, sale_of


class Killed(Exception):
    """The Lambda ends here."""


def outbox(sql: Any) -> list[dict[str, Any]]:
    with sql.connect() as connection:
        rows = connection.execute(
            text("SELECT id, user_id, type, payload, dispatched_at FROM outbox ORDER BY created_at")
        ).all()
    return [dict(row._mapping) for row in rows]


def a_job(backend: Backend) -> uuid.UUID:
    reply = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "sync"})
    assert reply.status == 202, reply.body
    return uuid.UUID(reply.body["id"])


def fail_in_its_lane(job_id: uuid.UUID, *, then: Exception | None = None) -> None:
    """End the job as the engine does (a final status saved in its lane's transaction), without dispatching."""
    with runtime.lane_store().locked("alice", "vinted") as tx:
        job = tx.job(job_id)
        assert job is not None
        job.status = JobStatus.FAILED
        job.completed_at = datetime.now(UTC)
        job.error = {"code": "test", "message": "failed for the test"}
        tx.save(job)
        assert [event.type for event in tx.after_commit().events] == ["job.failed"]
        if then is not None:
            raise then


def sweep_later() -> Any:
    later = datetime.now(UTC) + UNDISPATCHED_AFTER + timedelta(seconds=5)
    return runtime.sweeper(clock=lambda: later).sweep()


def test_a_rolled_back_job_end_records_nothing(backend: Backend, sql: Any) -> None:
    job_id = a_job(backend)
    with pytest.raises(Killed):
        fail_in_its_lane(job_id, then=Killed())
    assert outbox(sql) == []
    assert backend.job(str(job_id))["status"] == "pending"
    assert sweep_later().undispatched_events == 0


def test_an_event_committed_but_never_dispatched_is_delivered_once_by_the_sweeper(backend: Backend, sql: Any) -> None:
    _, connection_id = backend.connect()
    job_id = a_job(backend)
    fail_in_its_lane(job_id)  # committed; the Lambda died before dispatching

    [recorded] = outbox(sql)
    assert (recorded["user_id"], recorded["type"], recorded["dispatched_at"]) == ("alice", "job.failed", None)
    assert recorded["payload"]["message"] == {
        "type": "job.failed",
        "job_id": str(job_id),
        "error": {"code": "test", "message": "failed for the test"},
    }
    assert backend.gateway.of_type(connection_id, "job.failed") == []
    # Not yet: its dispatch may still be on its way.
    assert runtime.sweeper().sweep().undispatched_events == 0

    assert sweep_later().undispatched_events == 1
    assert backend.gateway.of_type(connection_id, "job.failed") == [recorded["payload"]["message"]]
    assert outbox(sql)[0]["dispatched_at"] is not None

    assert sweep_later().undispatched_events == 0  # a second pass delivers nothing more
    assert len(backend.gateway.of_type(connection_id, "job.failed")) == 1


def test_a_job_run_by_the_engine_is_told_once_and_its_event_dispatched_at_once(backend: Backend, sql: Any) -> None:
    tab, _ = backend.open_tab()
    job_id = a_job(backend)
    assert backend.run_job(str(job_id))["status"] == "completed"

    [recorded] = outbox(sql)
    assert (recorded["type"], recorded["payload"]["job_id"], recorded["payload"]["marketplace"]) == (
        "job.completed",
        str(job_id),
        "vinted",
    )
    assert recorded["dispatched_at"] is not None  # right after its commit: the sweeper has nothing to do
    assert len(backend.gateway.of_type(tab, "job.completed")) == 1
    assert sweep_later().undispatched_events == 0
    assert len(backend.gateway.of_type(tab, "job.completed")) == 1


def test_a_cancel_over_http_is_recorded_and_dispatched_without_a_message(backend: Backend, sql: Any) -> None:
    _, connection_id = backend.connect()
    job_id = a_job(backend)
    assert backend.http("POST", f"/jobs/{job_id}/cancel").body["status"] == "cancelled"

    [recorded] = outbox(sql)
    assert (recorded["type"], recorded["payload"]["message"]) == ("job.cancelled", None)
    assert recorded["dispatched_at"] is not None
    assert backend.gateway.of_type(connection_id, "job.cancelled") == []  # the response tells, as before


def test_hooks_get_every_event_once_per_pass(backend: Backend, sql: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from crosslist.events.dispatch import Dispatcher

    heard: list[Event] = []

    def failing(event: Event) -> None:
        raise RuntimeError("a consumer that fails serves nobody less")

    dispatcher = Dispatcher(runtime.sessions(), hooks=[failing, heard.append])
    monkeypatch.setattr(runtime, "events", lambda: dispatcher)
    job_id = a_job(backend)
    fail_in_its_lane(job_id)
    assert sweep_later().undispatched_events == 1
    assert [(event.type, event.payload["job_id"]) for event in heard] == [("job.failed", str(job_id))]
    assert sweep_later().undispatched_events == 0
    assert len(heard) == 1


def test_an_event_a_hook_failed_to_take_is_left_for_the_sweeper_which_delivers_it_once_more(
    backend: Backend, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. the webhooks' queue did not answer: the event is not lost, it comes back a minute later."""
    from crosslist.events.dispatch import Dispatcher

    taken: list[str] = []
    outages = [RuntimeError("the queue did not answer")]

    def keeping(events: Any) -> None:
        if outages:
            raise outages.pop()
        taken.extend(event.type for event in events)

    dispatcher = Dispatcher(runtime.sessions(), tell=runtime.notifier().to_user, batch_hooks=[keeping])
    monkeypatch.setattr(runtime, "events", lambda: dispatcher)
    backend.open_tab()
    job_id = a_job(backend)
    assert backend.run_job(str(job_id))["status"] == "completed"
    [recorded] = outbox(sql)
    assert recorded["dispatched_at"] is None  # the hook failed: not marked
    assert taken == []
    assert sweep_later().undispatched_events == 1
    assert taken == ["job.completed"]
    assert outbox(sql)[0]["dispatched_at"] is not None
    assert sweep_later().undispatched_events == 0
    assert taken == ["job.completed"]


def test_auto_delist_run_twice_for_one_sale_queues_one_delete(backend: Backend, sql: Any) -> None:
    product = backend.create_product()
    list_on(sql, product["id"], "vinted", "4242")
    order = sale_of(product["id"], "etsy-receipt-7")
    with runtime.lane_store().locked("alice", "etsy") as tx:
        assert tx.add_orders([order]) == [order]
    with sql.connect() as connection:
        order_id = connection.execute(text("SELECT id FROM orders WHERE external_order_id = 'etsy-receipt-7'")).scalar()
    assert isinstance(order_id, uuid.UUID)

    after = AfterCommit()
    with runtime.sessions().begin() as session:  # the reaction delivered again for the same stored order
        AUTO_DELIST.orders_added(session, "alice", "etsy", [(order_id, order)], after)
    assert after.lanes == []

    [delete] = jobs_of(sql, product["id"])
    assert (delete["marketplace"], delete["action"], delete["status"]) == ("vinted", "delete", "pending")
    with sql.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM sales")).scalar() == 1


def test_an_undispatched_event_is_what_the_idle_sweeper_must_look_for() -> None:
    at = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    assert next_sweep_finds(Earliest(None, None)) is None
    assert next_sweep_finds(Earliest(None, None, undispatched_created_at=at)) == at + UNDISPATCHED_AFTER
