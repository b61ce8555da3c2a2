"""When the extension fails, times out or is absent: retries resume where they stopped after a backoff,
jobs wait for a missing extension, and every final failure says why."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from devstack.plugin import ImageFailure
from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration


def test_a_failed_photo_is_retried_after_a_backoff_without_uploading_the_earlier_photos_again(
    backend: Backend, sql: Any
) -> None:
    connection_id, vinted = backend.open_tab(fail_once={"upload_photo_2"})
    product = backend.create_product(images=3)
    published_at = datetime.now(UTC)
    job_id = backend.publish(product["id"]).body["id"]

    backend.run_queue(wait_timers=30)

    assert [c["step"] for c in vinted.commands] == [
        "upload_photo_1",
        "upload_photo_2",
        "upload_photo_2",
        "upload_photo_3",
        "create_item",
    ]
    item = next(c for c in vinted.successes if c["step"] == "create_item")
    assert [p["id"] for p in item["payload"]["item"]["assigned_photos"]] == [9001, 9002, 9003]
    [retrying] = backend.gateway.of_type(connection_id, "job.retrying")
    assert (retrying["job_id"], retrying["attempt"]) == (job_id, 2)
    assert retrying["error"]["code"] in ("vinted_unavailable", "plugin_error")
    assert datetime.fromisoformat(retrying["next_attempt_at"]) > published_at
    assert backend.gateway.of_type(connection_id, "job.failed") == []  # job.failed is final only
    job = backend.job(job_id)
    assert (job["status"], job["attempts"], job["error"]) == ("completed", 2, None)
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 1


def test_after_the_last_attempt_the_job_fails_with_vinteds_error(backend: Backend, sql: Any) -> None:
    connection_id, vinted = backend.open_tab(fail_always={"upload_photo_2"})
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    backend.run_queue(wait_timers=30)

    job = backend.job(job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] in ("vinted_unavailable", "plugin_error")
    assert job["attempts"] == job["max_attempts"] == 3
    # Photo 1 went up once; photo 2 was tried once per attempt; the item was never created.
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1"] + ["upload_photo_2"] * 3
    assert job["accumulated_data"]["photo_ids"] == [9001]
    assert [m["attempt"] for m in backend.gateway.of_type(connection_id, "job.retrying")] == [2, 3]
    [failed] = backend.gateway.of_type(connection_id, "job.failed")
    assert failed["error"] == job["error"]
    assert backend.gateway.of_type(connection_id, "job.completed") == []
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 0


@pytest.mark.parametrize(
    "broken",
    [
        ImageFailure(status=404),
        ImageFailure(status=410),
        ImageFailure(error="unknown_host"),
        ImageFailure(200, "not_an_image"),
    ],
    ids=["404", "410", "unknown_host", "not_an_image"],
)
def test_a_vinted_photo_that_cannot_be_downloaded_fails_the_job_at_once_naming_it(
    backend: Backend, sql: Any, broken: ImageFailure
) -> None:
    tab, vinted = backend.open_tab()
    product = backend.create_product(images=2)
    photo = product["image_urls"][1]
    vinted.simulator.broken_images[photo] = broken  # the extension cannot download it
    job_id = backend.publish(product["id"]).body["id"]

    backend.run_queue(wait_timers=30)

    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert (job["error"]["code"], job["error"]["detail"]) == ("image_unavailable", {"url": photo})
    assert photo in job["error"]["message"]
    assert backend.gateway.of_type(tab, "job.retrying") == []  # not a Vinted failure to retry
    [failed] = backend.gateway.of_type(tab, "job.failed")
    assert failed["error"] == job["error"]
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "upload_photo_2"]
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 0


def test_a_vinted_photo_whose_image_host_fails_is_retried_and_says_so(backend: Backend) -> None:
    tab, vinted = backend.open_tab()
    product = backend.create_product(images=1)
    [photo] = product["image_urls"]
    vinted.simulator.broken_images[photo] = ImageFailure(status=503)
    job_id = backend.publish(product["id"]).body["id"]

    backend.run_queue(wait_timers=30)

    retrying = backend.gateway.of_type(tab, "job.retrying")
    assert [m["attempt"] for m in retrying] == [2, 3]
    assert {m["error"]["code"] for m in retrying} == {"image_host_unavailable"}
    assert all(photo in m["error"]["message"] and "503" in m["error"]["message"] for m in retrying)
    job = backend.job(job_id)
    assert (job["status"], job["attempts"], job["error"]["code"]) == ("failed", 3, "image_host_unavailable")
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1"] * 3


def test_jobs_of_a_user_without_a_tab_wait_and_all_complete_once_a_tab_connects(
    backend: Backend, aws: dict[str, Any]
) -> None:
    job_ids = [backend.publish(backend.create_product(images=1)["id"]).body["id"] for _ in range(3)]

    backend.run_queue()

    for job_id in job_ids:
        job = backend.job(job_id)
        assert (job["status"], job["wait_reason"], job["attempts"]) == ("waiting_for_plugin", "no_plugin", 0)
    assert aws["dynamodb"].scan(TableName="PendingCommandsTable")["Count"] == 0

    tab, vinted = backend.open_tab()
    backend.run_queue()

    assert [backend.job(job_id)["status"] for job_id in job_ids] == ["completed"] * 3
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "create_item"] * 3
    assert [m["job_id"] for m in backend.gateway.of_type(tab, "job.completed")] == job_ids


def test_a_job_waiting_for_the_extension_past_its_expiry_fails_with_plugin_never_connected(
    backend: Backend, sql: Any
) -> None:
    from devstack.lambdas import LambdaContext, load_handler
    from tests.conftest import REPO

    job_id = backend.publish(backend.create_product()["id"]).body["id"]
    backend.run_queue()
    assert backend.job(job_id)["status"] == "waiting_for_plugin"
    with sql.begin() as connection:  # a day later; the lane's periodic check is due
        connection.execute(text("UPDATE marketplace_jobs SET waiting_since = now() - interval '25 hours'"))
        connection.execute(text("UPDATE job_lanes SET wake_at = now() - interval '1 minute'"))

    sweeper = load_handler(REPO / "functions" / "sweeper")
    assert sweeper({"schedule": "sweep"}, LambdaContext("sweeper"))["overdue_lanes"] == 1
    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["error"]["code"]) == ("failed", "plugin_never_connected")


def test_an_unanswered_step_times_out_without_any_lambda_waiting_and_a_late_result_is_refused(
    backend: Backend, short_plugin_timeout: int, sql: Any
) -> None:
    connection_id, vinted = backend.open_tab(silent={"upload_photo_1"})
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()  # sends the command and ends: nothing waits for the answer
    assert backend.job(job_id)["status"] == "running"
    assert len(vinted.commands) == 1

    backend.run_queue(wait_timers=30)  # each deadline's timer wakes the lane; a retry follows each backoff (ends early)

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


def test_an_infrastructure_error_mid_step_is_retried_within_seconds_without_using_an_attempt(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from crosslist.realtime.commands import PendingCommandStore

    monkeypatch.setenv("CROSSLIST_RETRY_AFTER_ERROR", "1")
    _, vinted = backend.open_tab()
    original_create = PendingCommandStore.create
    failures = iter([False, True])  # writing the second command's record fails, as DynamoDB sometimes does

    def flaky_create(self: PendingCommandStore, *args: Any, **kwargs: Any) -> None:
        if next(failures, False):
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "try again"}}, "PutItem")
        original_create(self, *args, **kwargs)

    monkeypatch.setattr(PendingCommandStore, "create", flaky_create)
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()
    assert backend.job(job_id)["status"] == "running"  # the failed wake-up's message is back in a second
    started = time.monotonic()
    while backend.job(job_id)["status"] != "completed" and time.monotonic() - started < 10:
        backend.run_queue()
        time.sleep(0.2)

    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("completed", 1)
    assert time.monotonic() - started < 10
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "create_item"]
