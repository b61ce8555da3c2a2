"""At-least-once delivery from SQS and several open tabs must still run each job, and each command, once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.integration.conftest import Backend
from tests.support.fakes import FakeVinted

pytestmark = pytest.mark.integration


def test_a_duplicate_delivery_of_a_wake_up_sends_no_command_twice(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]
    [message] = backend.receive()

    assert backend.deliver([message]) == {"batchItemFailures": []}
    assert backend.deliver([message]) == {"batchItemFailures": []}  # SQS delivered it again
    assert backend.deliver([message]) == {"batchItemFailures": []}
    backend.sqs.delete_message(QueueUrl=backend.queue_url, ReceiptHandle=message["ReceiptHandle"])
    backend.run_queue()

    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "upload_photo_2", "create_item"]
    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("completed", 1)


def test_two_lambdas_receiving_the_same_job_at_once_run_it_once(backend: Backend) -> None:
    _, vinted = backend.open_tab()

    def slow_extension(message: dict[str, Any]) -> None:
        time.sleep(0.02)  # keep the first run busy while the second one tries to claim
        vinted(message)

    backend.gateway.listeners[next(iter(backend.gateway.listeners))] = slow_extension
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]
    [message] = backend.receive()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def lambda_instance() -> None:
        start.wait()
        try:
            backend.deliver([message])
        except BaseException as error:  # surfaced below: a thread's exception would vanish otherwise
            errors.append(error)

    threads = [threading.Thread(target=lambda_instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    backend.sqs.delete_message(QueueUrl=backend.queue_url, ReceiptHandle=message["ReceiptHandle"])
    backend.run_queue()

    assert errors == []
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "upload_photo_2", "create_item"]
    assert backend.job(job_id)["status"] == "completed"


def test_with_two_tabs_each_command_goes_to_the_newest_tab_only_and_progress_to_both(backend: Backend) -> None:
    older_tab, older_vinted = backend.open_tab()
    newer_tab, newer_vinted = backend.open_tab()
    job_id = backend.publish(backend.create_product(images=3)["id"]).body["id"]

    backend.run_queue()

    assert older_vinted.commands == []
    assert len(newer_vinted.commands) == 4
    request_ids = [c["request_id"] for c in newer_vinted.commands]
    assert len(set(request_ids)) == 4
    for tab in (older_tab, newer_tab):
        # The newer tab sees each step's progress inside the next command, the older one as job.progress.
        assert [p["current_step"] for p in backend.gateway.of_type(tab, "job.progress")] == [1, 2, 3]
        assert [c["job_id"] for c in backend.gateway.of_type(tab, "job.completed")] == [job_id]
    assert [m["type"] for m in backend.gateway.messages[older_tab] if m["type"].startswith("job.")] == [
        "job.progress"
    ] * 3 + ["job.completed"]
    assert "job.progress" not in {m["type"] for m in backend.gateway.messages[newer_tab]}


def test_a_closed_tab_answering_410_is_forgotten_and_the_command_goes_to_the_next(
    backend: Backend, aws: dict[str, Any]
) -> None:
    live_tab, live_vinted = backend.open_tab()
    closed_tab, closed_vinted = backend.open_tab()
    backend.gateway.gone.add(closed_tab)  # the browser closed without a $disconnect
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    backend.run_queue()

    assert closed_vinted.commands == []
    assert [c["step"] for c in live_vinted.commands] == ["upload_photo_1", "create_item"]
    assert backend.job(job_id)["status"] == "completed"
    items = aws["dynamodb"].scan(TableName="ConnectionsTable")["Items"]
    connections = [item for item in items if "user_id" in item]  # not the users' message counts
    assert {item["connection_id"]["S"] for item in connections if "closed_at" not in item} == {live_tab}


def test_a_result_handled_after_its_tabs_disconnect_still_counts(backend: Backend) -> None:
    # API Gateway runs a tab's last message and its $disconnect concurrently: either may land first.
    _, other_vinted = backend.open_tab()
    closing_tab, closing_vinted = backend.open_tab()
    sent: list[dict[str, Any]] = []
    closing_vinted.send = sent.append  # hold the answer back…

    def answer_after_disconnecting(message: dict[str, Any]) -> None:
        closing_vinted(message)
        if message.get("type") == "plugin.command":
            backend.disconnect(closing_tab)
            backend.send(closing_tab, sent.pop())  # …and let it arrive after $disconnect

    backend.gateway.listeners[closing_tab] = answer_after_disconnecting
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    backend.run_queue()

    assert backend.gateway.of_type(closing_tab, "error") == []
    assert [c["step"] for c in closing_vinted.commands] == ["upload_photo_1"]
    assert [c["step"] for c in other_vinted.commands] == ["upload_photo_2", "create_item"]
    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("completed", 1)


def test_the_executing_tab_closing_mid_job_hands_the_next_command_to_the_other_tab(backend: Backend) -> None:
    _other_tab, other_vinted = backend.open_tab()
    executing_tab, executing_vinted = backend.open_tab()

    def close_after_first_photo(message: dict[str, Any]) -> None:
        executing_vinted(message)
        if message.get("step") == "upload_photo_1":
            backend.disconnect(executing_tab)

    backend.gateway.listeners[executing_tab] = close_after_first_photo
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    backend.run_queue()

    assert [c["step"] for c in executing_vinted.commands] == ["upload_photo_1"]
    assert [c["step"] for c in other_vinted.commands] == ["upload_photo_2", "create_item"]
    # The tabs share the user's Vinted account: its photo ids follow one another.
    assert backend.job(job_id)["result"]["photo_ids"] == [9001, 9002]


def test_a_wake_up_naming_another_user_runs_nothing_of_this_user(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    job_id = backend.publish(backend.create_product()["id"]).body["id"]
    [message] = backend.receive()
    message["Body"] = message["Body"].replace('"user_id":"alice"', '"user_id":"mallory"')

    assert backend.deliver([message]) == {"batchItemFailures": []}

    assert vinted.commands == []
    assert backend.job(job_id)["status"] == "pending"


def open_tab_that_closes_on(backend: Backend, step: str) -> FakeVinted:
    """A tab (the newest ready one) that receives the step's command and closes without answering."""
    closing_tab, closing_vinted = backend.open_tab()
    closing_vinted.silent = {step}

    def close_on_step(message: dict[str, Any]) -> None:
        closing_vinted(message)
        if message.get("step") == step:
            backend.disconnect(closing_tab)

    backend.gateway.listeners[closing_tab] = close_on_step
    return closing_vinted


def test_a_tab_closing_before_it_answers_a_photo_upload_hands_it_to_the_next_tab_at_once(
    backend: Backend, aws: dict[str, Any]
) -> None:
    _, other_vinted = backend.open_tab()
    closing_vinted = open_tab_that_closes_on(backend, "upload_photo_2")
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]

    started = time.monotonic()
    backend.run_queue(wait_timers=5)

    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("completed", 1)  # no attempt used up
    assert time.monotonic() - started < 4  # not the step's 60 s timeout: its 1 s grace and a timer
    assert [c["step"] for c in closing_vinted.commands] == ["upload_photo_1", "upload_photo_2"]
    assert [c["step"] for c in other_vinted.commands] == ["upload_photo_2", "create_item"]
    lost = aws["dynamodb"].scan(
        TableName="PendingCommandsTable",
        FilterExpression="#s = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":t": {"S": "timed_out"}},
    )["Items"]
    assert [item["step"]["S"] for item in lost] == ["upload_photo_2"]


def test_a_tab_closing_before_it_answers_a_create_checks_the_wardrobe_before_creating_again(backend: Backend) -> None:
    other_tab, other_vinted = backend.open_tab()
    closing_vinted = open_tab_that_closes_on(backend, "create_item")
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]

    started = time.monotonic()
    backend.run_queue(wait_timers=5)

    # The create may have landed: the next tab first reads the wardrobe, finds no such item, then creates.
    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("completed", 1)
    assert time.monotonic() - started < 4
    assert backend.gateway.of_type(other_tab, "job.failed") == []
    assert [c["step"] for c in closing_vinted.commands] == ["upload_photo_1", "create_item"]
    assert [(c["step"], c["method"]) for c in other_vinted.commands] == [
        ("create_item", "GET"),
        ("create_item", "POST"),
    ]
    assert "/wardrobe/" in other_vinted.commands[0]["path"]
