"""A tab that connects, or asks with {"action": "resume"}, is told its user's active jobs and their state."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration


def test_a_new_tab_is_told_its_users_active_jobs_oldest_first(backend: Backend) -> None:
    first = backend.publish(backend.create_product(images=2)["id"]).body["id"]
    second = backend.publish(backend.create_product(images=1)["id"]).body["id"]
    backend.publish(backend.create_product(user="bob")["id"], user="bob")

    tab, _ = backend.open_tab(ready=False)  # a reloaded tab, before its extension reports in

    [active] = backend.gateway.of_type(tab, "jobs.active")
    assert [(j["job_id"], j["status"], j["current_step"], j["total_steps"]) for j in active["jobs"]] == [
        (first, "pending", 0, 3),
        (second, "pending", 0, 2),
    ]
    assert active["truncated"] is False


def test_resume_shows_a_running_job_its_step_its_last_error_and_a_pending_cancel(backend: Backend, sql: Any) -> None:
    tab, _ = backend.open_tab(ready=False)
    job_id = backend.publish(backend.create_product(images=3)["id"]).body["id"]
    with sql.begin() as connection:
        connection.execute(
            text(
                "UPDATE marketplace_jobs SET status = 'running', current_step = 2, attempts = 2, "
                "cancel_requested_at = now(), error = CAST(:error AS jsonb) WHERE id = :id"
            ),
            {"id": job_id, "error": '{"code": "plugin_timeout", "message": "no answer"}'},
        )

    backend.send(tab, {"action": "resume"})
    assert backend.deliver_sessions() == 1

    latest = backend.gateway.of_type(tab, "jobs.active")[-1]
    [job] = latest["jobs"]
    assert (job["job_id"], job["status"], job["current_step"], job["attempts"], job["cancel_requested"]) == (
        job_id,
        "running",
        2,
        2,
        True,
    )
    assert job["error"] == {"code": "plugin_timeout", "message": "no answer"}


def test_finished_jobs_are_not_shown(backend: Backend) -> None:
    backend.open_tab()
    backend.publish(backend.create_product(images=1)["id"])
    backend.run_queue()

    tab, _ = backend.open_tab()
    assert [m["jobs"] for m in backend.gateway.of_type(tab, "jobs.active")] == [[]]
