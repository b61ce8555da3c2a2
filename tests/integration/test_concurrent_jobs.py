"""Requests racing each other: the database, not a read-then-insert check, keeps one active job per product."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from crosslist import runtime
from crosslist.errors import Conflict
from crosslist.jobs.schemas import CreateJobRequest
from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration

ROUNDS = 5


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment, each on its own thread and database connection."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        try:
            return call()
        except Conflict as conflict:
            return conflict

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def inserts_meet(backend: Backend) -> Iterator[None]:
    """Widen the race: a job INSERT waits (up to 0.5 s) for the other request's INSERT, as if both had passed
    every check at the same moment. A request blocked earlier, by a lock, simply never meets its twin."""
    engine = runtime.sessions().kw["bind"]
    meeting = threading.Barrier(2)

    def wait_for_twin(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO marketplace_jobs"):
            try:
                meeting.wait(timeout=0.5)
            except threading.BrokenBarrierError:
                meeting.reset()

    event.listen(engine, "before_cursor_execute", wait_for_twin)
    yield
    event.remove(engine, "before_cursor_execute", wait_for_twin)


@pytest.mark.usefixtures("inserts_meet")
def test_two_simultaneous_publishes_of_one_product_create_one_job(backend: Backend, sql: Any) -> None:
    service = runtime.job_service()
    outcomes: list[tuple[int, int]] = []
    for _ in range(ROUNDS):
        product_id = backend.create_product()["id"]
        request = CreateJobRequest(marketplace="vinted", action="publish", product_id=uuid.UUID(product_id))
        create = partial(service.create, "alice", request)
        results = race(create, create)
        created = [r for r in results if isinstance(r, tuple) and r[1]]
        conflicts = [r for r in results if isinstance(r, Conflict)]
        outcomes.append((len(created), len(conflicts)))
        assert all(c.code == "job_in_progress" and c.details["job_id"] == str(created[0][0].id) for c in conflicts)
        assert count(sql, "SELECT count(*) FROM marketplace_jobs WHERE product_id = :p", p=product_id) == 1
    assert outcomes == [(1, 1)] * ROUNDS


def test_simultaneous_publishes_through_the_http_api_answer_202_then_409(backend: Backend, sql: Any) -> None:
    product_id = backend.create_product()["id"]
    replies = race(lambda: backend.publish(product_id), lambda: backend.publish(product_id))
    assert sorted(reply.status for reply in replies) == [202, 409]
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 1
    assert backend.queued() == 1


@pytest.mark.parametrize("second_action", ["publish", "update", "delete", "relist"])
def test_the_database_refuses_a_second_active_job_of_a_product_whatever_its_action(
    backend: Backend, sql: Any, second_action: str
) -> None:
    product_id = backend.create_product()["id"]
    assert backend.publish(product_id).status == 202
    insert = text(
        "INSERT INTO marketplace_jobs (id, user_id, marketplace, action_code, product_id, status, priority, attempts,"
        " max_attempts, step_timeout_ms, current_step, total_steps, accumulated_data, input)"
        " VALUES (:id, 'alice', 'vinted', :action, :product, :status, 5, 0, 3, 60000, 0, 1, '{}', '{}')"
    )
    with pytest.raises(IntegrityError, match="uq_marketplace_jobs_active_product"), sql.begin() as connection:
        connection.execute(
            insert, {"id": uuid.uuid4(), "action": second_action, "product": product_id, "status": "running"}
        )
    # Finished jobs do not count: history keeps every past job of the product.
    with sql.begin() as connection:
        connection.execute(
            insert, {"id": uuid.uuid4(), "action": second_action, "product": product_id, "status": "failed"}
        )
    # Another marketplace is another listing.
    other = insert.text.replace("'vinted'", "'ebay'")
    with sql.begin() as connection:
        connection.execute(
            text(other), {"id": uuid.uuid4(), "action": second_action, "product": product_id, "status": "pending"}
        )
