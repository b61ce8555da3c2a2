"""The sample events in events/ (for `sam local invoke`) are accepted by their handlers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crosslist import runtime
from crosslist.jobs.queue import LaneWake, TimerMessage
from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO
from tests.integration.conftest import Backend
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((REPO / "events" / f"{name}.json").read_text()))


def with_token(event: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(event).replace("REPLACE_WITH_A_VALID_JWT", token_for("user-42"))
    return dict(json.loads(text))


def test_every_function_has_a_sample_event() -> None:
    # A function with several triggers has one sample per trigger: <function>.<trigger>.json.
    functions = {path.name for path in (REPO / "functions").iterdir() if (path / "app.py").exists()}
    assert {path.name.partition(".")[0] for path in (REPO / "events").glob("*.json")} == functions


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("ws_connect", {"statusCode": 200}),
        ("ws_message", {"statusCode": 200}),
        ("process_job", {"batchItemFailures": []}),
        ("process_job.timer", {"batchItemFailures": []}),
        ("deliver_webhooks", {"batchItemFailures": []}),  # a delivery that is not (any more): dropped
        ("oauth_refresh", {"due_for_refresh": 0}),
        ("sweeper", {"overdue_lanes": 0, "unqueued_jobs": 0}),
        (
            "scheduler",
            {
                "due_rules": 0,
                "queued": 0,
                "skipped_active_job": 0,
                "waiting_for_connection": 0,
                "reauth_required": 0,
                "failed": 0,
            },
        ),
    ],
)
def test_sample_event_is_handled(backend: Backend, function: str, expected: dict[str, Any]) -> None:
    handler = load_handler(REPO / "functions" / function.partition(".")[0])
    assert handler(with_token(sample(function)), LambdaContext(function)) == expected


@pytest.mark.parametrize(
    ("function", "status"), [("create_job", 404), ("products", 200), ("marketplaces", 200), ("notifications", 404)]
)
def test_http_sample_event_is_routed(backend: Backend, function: str, status: int) -> None:
    # create_job's sample publishes a product that does not exist here: 404 proves it was routed and parsed; so does
    # eBay's challenge where eBay notifications are not configured (404 not_configured).
    handler = load_handler(REPO / "functions" / function)
    response = handler(with_token(sample(function)), LambdaContext(function))
    assert response["statusCode"] == status, response.get("body")


def _received(backend: Backend, queue_url: str) -> dict[str, Any]:
    (message,) = backend.sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    return dict(message)


def test_process_job_sample_is_a_lane_wake_up_as_the_code_sends_it(backend: Backend) -> None:
    (record,) = sample("process_job")["Records"]
    wake = LaneWake.model_validate_json(record["body"])
    runtime.job_queue().wake(wake.user_id, wake.marketplace, wake.cause)

    sent = _received(backend, backend.queue_url)
    assert json.loads(sent["Body"]) == json.loads(record["body"])
    for attribute in ("MessageGroupId", "MessageDeduplicationId"):
        assert sent["Attributes"][attribute] == record["attributes"][attribute], attribute


def test_timers_sample_is_a_timer_as_the_code_sends_it(backend: Backend) -> None:
    (record,) = sample("process_job.timer")["Records"]
    timer = TimerMessage.model_validate_json(record["body"])
    runtime.timer_queue().wake_at(timer.user_id, timer.marketplace, timer.due_ms / 1000)

    sent = _received(backend, backend.timers_url)
    assert json.loads(sent["Body"]) == json.loads(record["body"])
    assert "MessageGroupId" not in sent["Attributes"]  # a standard queue: it can delay one message


def test_a_due_timer_wakes_its_lane_in_process_job_without_going_through_the_jobs_queue(backend: Backend) -> None:
    # The sample timer is long past due: process_job wakes the lane at once (it has no job: idle).
    handler = load_handler(REPO / "functions" / "process_job")
    assert handler(sample("process_job.timer"), LambdaContext("process_job")) == {"batchItemFailures": []}
    assert backend.queued() == 0
    assert backend.timers_pending() == 0
