"""When the extension fails, times out or is absent: retries resume where they stopped, then fail clearly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration


def test_a_failed_photo_is_retried_without_uploading_the_earlier_photos_again(backend: Backend, sql: Any) -> None:
    connection_id, vinted = backend.open_tab(fail_once={"upload_photo_2"})
    product = backend.create_product(images=3)
    job_id = backend.publish(product["id"]).body["id"]

    backend.run_queue()

    assert [c["step"] for c in vinted.commands] == [
        "upload_photo_1",
        "upload_photo_2",
        "upload_photo_2",
        "upload_photo_3",
        "create_item",
    ]
    assert [c["path"] for c in vinted.successes].count("/api/v2/photos") == 3
    item = next(c for c in vinted.successes if c["step"] == "create_item")
    assert [p["id"] for p in item["payload"]["item"]["assigned_photos"]] == [9001, 9002, 9003]
    failed = backend.gateway.of_type(connection_id, "job.failed")
    assert failed == [
        {
            "type": "job.failed",
            "job_id": job_id,
            "error": {"code": "plugin_error", "message": "Vinted refused upload_photo_2"},
            "retryable": True,
        }
    ]
    job = backend.job(job_id)
    assert (job["status"], job["attempts"], job["error"]) == ("completed", 2, None)
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 1


def test_after_the_last_attempt_the_job_fails_with_the_extensions_error(backend: Backend, sql: Any) -> None:
    connection_id, vinted = backend.open_tab(fail_always={"upload_photo_2"})
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    backend.run_queue()

    job = backend.job(job_id)
    assert job["status"] == "failed"
    assert job["error"] == {"code": "plugin_error", "message": "Vinted refused upload_photo_2"}
    assert job["attempts"] == job["max_attempts"] == 3
    # Photo 1 went up once; photo 2 was tried once per attempt; the item was never created.
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1"] + ["upload_photo_2"] * 3
    assert job["accumulated_data"] == {"photo_ids": [9001]}
    assert [m["retryable"] for m in backend.gateway.of_type(connection_id, "job.failed")] == [True, True, False]
    assert backend.gateway.of_type(connection_id, "job.completed") == []
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 0
    assert backend.queued() == 0


def test_without_an_open_tab_the_job_fails_with_no_plugin_connection(backend: Backend, aws: dict[str, Any]) -> None:
    job_id = backend.publish(backend.create_product()["id"]).body["id"]

    backend.run_queue()

    job = backend.job(job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "no_plugin_connection"
    assert job["attempts"] == 1
    # The undeliverable command leaves no correlation record behind.
    assert aws["dynamodb"].scan(TableName="PendingCommandsTable")["Count"] == 0


def test_an_unanswered_step_times_out_and_a_late_result_is_refused(
    backend: Backend, short_plugin_timeout: int, sql: Any
) -> None:
    connection_id, vinted = backend.open_tab(silent={"upload_photo_1"})
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()

    job = backend.job(job_id)
    assert job["status"] == "failed"
    assert job["error"] == {
        "code": "plugin_timeout",
        "message": f"the browser extension did not answer within {short_plugin_timeout} ms",
    }
    assert len(vinted.commands) == 3

    late = vinted.commands[0]
    backend.send(
        connection_id,
        {"action": "plugin_result", "request_id": late["request_id"], "success": True, "result": {"id": 1}},
    )
    errors = backend.gateway.of_type(connection_id, "error")
    assert [(e["code"], e["request_id"]) for e in errors] == [("expired", late["request_id"])]
    assert backend.job(job_id)["accumulated_data"] == {}
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 0


def test_an_infrastructure_error_mid_step_is_retried_at_once_not_left_running(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from crosslist.realtime.commands import PendingCommandStore

    tab, vinted = backend.open_tab()
    original_get = PendingCommandStore.get
    failures = iter([True])  # the first read of a command result fails, as DynamoDB sometimes does

    def flaky_get(self: PendingCommandStore, request_id: str) -> Any:
        if next(failures, False):
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "try again"}}, "GetItem")
        return original_get(self, request_id)

    monkeypatch.setattr(PendingCommandStore, "get", flaky_get)
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("completed", 2)
    [retrying] = backend.gateway.of_type(tab, "job.failed")
    assert (retrying["error"]["code"], retrying["retryable"]) == ("infrastructure_error", True)
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "upload_photo_1", "create_item"]
