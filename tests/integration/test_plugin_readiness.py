"""Only tabs whose browser extension said it is ready receive commands; a flood from one tab is cut short."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from crosslist.realtime import connections
from crosslist.realtime.connections import MESSAGE_WINDOW_SECONDS, MESSAGES_PER_WINDOW
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration


def test_a_job_whose_user_has_only_tabs_without_the_extension_waits_then_runs_once_one_is_ready(
    backend: Backend, aws: dict[str, Any]
) -> None:
    tab, vinted = backend.open_tab(ready=False)
    job_id = backend.publish(backend.create_product()["id"]).body["id"]

    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["wait_reason"]) == ("waiting_for_plugin", "plugin_not_ready")
    assert vinted.commands == []
    [waiting] = backend.gateway.of_type(tab, "job.waiting")
    assert (waiting["job_id"], waiting["reason"], waiting["until"]) == (job_id, "plugin_not_ready", None)
    assert aws["dynamodb"].scan(TableName="PendingCommandsTable")["Count"] == 0

    backend.plugin_status(tab, ready=True, vinted_user_id=vinted.vinted_user_id)  # wakes the lane
    backend.run_queue()

    assert backend.job(job_id)["status"] == "completed"
    assert len(vinted.commands) == 4


def test_a_newer_tab_without_the_extension_does_not_take_the_commands_of_a_ready_one(backend: Backend) -> None:
    _, working = backend.open_tab()
    _, second_device = backend.open_tab(ready=False)  # opened last: it used to take every command
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    backend.run_queue()

    assert backend.job(job_id)["status"] == "completed"
    assert len(working.commands) == 3
    assert second_device.commands == []


def test_ready_false_withdraws_a_tab_and_the_other_ready_tab_takes_over(backend: Backend) -> None:
    _, older = backend.open_tab()
    newer_tab, newer = backend.open_tab()
    backend.send(newer_tab, {"action": "plugin_status", "ready": False})
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()

    assert backend.job(job_id)["status"] == "completed"
    assert (len(older.commands), len(newer.commands)) == (2, 0)


def test_a_flooding_connection_is_told_once_and_its_excess_is_dropped(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every message lands in one budget window, however slow this machine is.
    frozen = (int(time.time()) // MESSAGE_WINDOW_SECONDS) * MESSAGE_WINDOW_SECONDS + 1
    monkeypatch.setattr(connections, "time", SimpleNamespace(time=lambda: float(frozen)))
    flooder, _ = backend.open_tab()  # its plugin_status was message 1 of the window
    other_tab, _ = backend.open_tab("bob")
    for n in range(MESSAGES_PER_WINDOW + 20):
        backend.send(flooder, {"action": "plugin_result", "request_id": f"r{n}", "success": True, "result": {}})

    codes = [e["code"] for e in backend.gateway.of_type(flooder, "error")]
    assert codes == ["unknown_request"] * (MESSAGES_PER_WINDOW - 1) + ["rate_limited"]
    # Other connections keep their own budget.
    backend.send(other_tab, {"action": "plugin_result", "request_id": "x", "success": True, "result": {}})
    assert [e["code"] for e in backend.gateway.of_type(other_tab, "error")] == ["unknown_request"]


def test_the_web_app_is_told_once_its_tabs_status_is_recorded(backend: Backend) -> None:
    tab, _ = backend.open_tab()
    backend.send(tab, {"action": "plugin_status", "ready": False, "extension_version": "1.0.1"})
    assert [
        (m["ready"], m["extension_version"], m["takes_commands"]) for m in backend.gateway.of_type(tab, "plugin.status")
    ] == [
        (True, "1.0.0", True),
        (False, "1.0.1", False),
    ]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ({"vinted_logged_in": False}, "plugin_logged_out"),
        ({"challenge": True}, "challenge"),
    ],
)
def test_a_tab_logged_out_of_vinted_or_challenged_gets_no_command_and_the_job_waits_saying_why(
    backend: Backend, status: dict[str, bool], reason: str
) -> None:
    tab, vinted = backend.open_tab()
    backend.plugin_status(tab, ready=True, **status)
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["wait_reason"]) == ("waiting_for_plugin", reason)
    assert vinted.commands == []
    assert backend.gateway.of_type(tab, "plugin.status")[-1]["takes_commands"] is False
    assert [m["reason"] for m in backend.gateway.of_type(tab, "job.waiting")] == [reason]

    backend.plugin_status(tab, ready=True, vinted_user_id=vinted.vinted_user_id)  # logged in, check solved
    backend.run_queue()

    assert backend.job(job_id)["status"] == "completed"
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "create_item"]


def test_another_tab_logged_in_to_vinted_takes_the_commands(backend: Backend) -> None:
    _, working = backend.open_tab()
    logged_out_tab, logged_out = backend.open_tab()  # the most recently ready, but logged out
    backend.send(logged_out_tab, {"action": "plugin_status", "ready": True, "vinted_logged_in": False})
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()

    assert backend.job(job_id)["status"] == "completed"
    assert (len(working.commands), len(logged_out.commands)) == (2, 0)
