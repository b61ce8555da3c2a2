"""The devstack's SQS trigger behaves like Lambda's event source mapping: on a FIFO queue, and on a standard queue
whose function puts failed messages back for later itself (ChangeMessageVisibility, the webhooks' backoff)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from devstack.aws import provision
from devstack.functions import FunctionSpec
from devstack.instances import FunctionPool, Invocation, describe_exception
from devstack.sqs_trigger import SqsTrigger
from tests.conftest import REPO


@dataclass
class RecordingFunction:
    """Stands in for a function pool: records each record it runs, and when."""

    fail: set[str] = field(default_factory=set)
    runs: list[tuple[str, int, float, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def spec(self) -> Any:
        return type("Spec", (), {"name": "process_job"})()

    def invoke(self, event: dict[str, Any]) -> Invocation:
        failures = []
        for record in event["Records"]:
            body = json.loads(record["body"])
            started = time.monotonic()
            time.sleep(0.02)
            with self.lock:
                self.runs.append((body["group"], body["n"], started, time.monotonic()))
            if f"{body['group']}{body['n']}" in self.fail:
                failures.append({"itemIdentifier": record["messageId"]})
        return Invocation({"batchItemFailures": failures}, 20, None)


@pytest.fixture
def queue() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        sqs = boto3.client("sqs")
        provisioned = provision(REPO / "template.yaml", boto3.client("dynamodb"), sqs)
        yield sqs, provisioned.queues["JobsQueue"], provisioned.queue_arns["JobsQueue"]


def send(sqs: Any, url: str, group: str, n: int) -> None:
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"group": group, "n": n}),
        MessageGroupId=group,
        MessageDeduplicationId=f"{group}-{n}",
    )


def drain(trigger: SqsTrigger, function: RecordingFunction, expected: int) -> None:
    trigger.start()
    deadline = time.monotonic() + 10
    while len(function.runs) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    trigger.stop()


def test_two_pollers_run_groups_in_parallel_but_each_group_in_order_one_at_a_time(queue: Any) -> None:
    sqs, url, arn = queue
    for n in range(5):
        send(sqs, url, "alice:vinted", n)
        send(sqs, url, "bob:vinted", n)
    function = RecordingFunction()
    trigger = SqsTrigger(
        cast(FunctionPool, function), sqs, url, arn, batch_size=1, report_batch_item_failures=True, pollers=2
    )

    drain(trigger, function, expected=10)

    for group in ("alice:vinted", "bob:vinted"):
        runs = [run for run in function.runs if run[0] == group]
        assert [n for _, n, _, _ in runs] == [0, 1, 2, 3, 4]
        assert all(later[2] >= earlier[3] for earlier, later in itertools.pairwise(runs))
    alice = [r for r in function.runs if r[0] == "alice:vinted"]
    bob = [r for r in function.runs if r[0] == "bob:vinted"]
    assert any(a[2] < b[3] and b[2] < a[3] for a in alice for b in bob), "different groups should overlap"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_a_failed_record_stays_in_the_queue_and_holds_its_group_back(queue: Any) -> None:
    sqs, url, arn = queue
    send(sqs, url, "alice:vinted", 0)
    send(sqs, url, "alice:vinted", 1)
    function = RecordingFunction(fail={"alice:vinted0"})
    trigger = SqsTrigger(
        cast(FunctionPool, function), sqs, url, arn, batch_size=1, report_batch_item_failures=True, pollers=2
    )

    drain(trigger, function, expected=1)
    time.sleep(0.2)

    # The failed message waits for its visibility timeout; FIFO keeps the group's next message behind it.
    assert [(group, n) for group, n, _, _ in function.runs] == [("alice:vinted", 0)]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessagesNotVisible"], attributes["ApproximateNumberOfMessages"]) == (
        "1",
        "1",
    )


class CarelessFifoQueue:
    """A queue that, like moto's long poll sometimes does, hands out a group's next message while the
    previous one is still in flight."""

    def __init__(self, group: str, count: int) -> None:
        self.waiting: list[dict[str, Any]] = [
            {
                "MessageId": f"m{n}",
                "ReceiptHandle": f"r{n}",
                "Body": json.dumps({"group": group, "n": n}),
                "MD5OfBody": "",
                "Attributes": {"MessageGroupId": group},
            }
            for n in range(count)
        ]
        self.in_flight: dict[str, dict[str, Any]] = {}
        self.put_back: list[str] = []
        self.lock = threading.Lock()

    def receive_message(self, **_: Any) -> dict[str, Any]:
        with self.lock:
            if not self.waiting:
                return {}
            message = self.waiting.pop(0)
            self.in_flight[message["ReceiptHandle"]] = message
            return {"Messages": [message]}

    def change_message_visibility(self, ReceiptHandle: str, **_: Any) -> None:  # noqa: N803 - boto3's names
        with self.lock:
            message = self.in_flight.pop(ReceiptHandle)
            self.put_back.append(message["MessageId"])
            self.waiting.insert(0, message)

    def delete_message(self, ReceiptHandle: str, **_: Any) -> None:  # noqa: N803
        with self.lock:
            del self.in_flight[ReceiptHandle]


def test_a_message_of_a_group_already_running_is_put_back_not_run_alongside() -> None:
    sqs = CarelessFifoQueue("alice:vinted", 4)
    function = RecordingFunction()
    trigger = SqsTrigger(
        cast(FunctionPool, function),
        sqs,
        "queue/JobsQueue.fifo",
        "arn",
        batch_size=1,
        report_batch_item_failures=True,
        pollers=3,
    )

    drain(trigger, function, expected=4)

    assert [n for _, n, _, _ in function.runs] == [0, 1, 2, 3]
    assert all(later[2] >= earlier[3] for earlier, later in itertools.pairwise(function.runs))
    assert sqs.put_back, "the careless queue should have offered a busy group's message at least once"
    assert sqs.waiting == []
    assert sqs.in_flight == {}


def test_a_message_failing_max_receive_count_times_ends_in_the_dead_letter_queue(queue: Any) -> None:
    sqs, url, arn = queue
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})  # retry at once, for the test
    send(sqs, url, "alice:vinted", 0)
    function = RecordingFunction(fail={"alice:vinted0"})
    trigger = SqsTrigger(
        cast(FunctionPool, function), sqs, url, arn, batch_size=1, report_batch_item_failures=True, pollers=1
    )

    while trigger.poll_once():
        pass

    assert len(function.runs) == 5  # the template's maxReceiveCount
    dead_letters = sqs.get_queue_url(QueueName="JobsDeadLetterQueue.fifo")["QueueUrl"]
    [parked] = sqs.receive_message(QueueUrl=dead_letters)["Messages"]
    assert json.loads(parked["Body"]) == {"group": "alice:vinted", "n": 0}


@dataclass
class BackingOff:
    """Stands in for deliver_webhooks: each failed record's message is put back for `waits[attempt - 1]` s by the
    function itself (ChangeMessageVisibility), then reported as a batch item failure."""

    sqs: Any
    url: str
    waits: list[int]
    attempts: list[int] = field(default_factory=list)

    @property
    def spec(self) -> Any:
        return type("Spec", (), {"name": "deliver_webhooks"})()

    def invoke(self, event: dict[str, Any]) -> Invocation:
        failures = []
        for record in event["Records"]:
            attempt = int(record["attributes"]["ApproximateReceiveCount"])
            self.attempts.append(attempt)
            wait = self.waits[attempt - 1] if attempt <= len(self.waits) else 0
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=wait
            )
            failures.append({"itemIdentifier": record["messageId"]})
        return Invocation({"batchItemFailures": failures}, 1, None)


def test_a_message_a_function_puts_back_for_later_comes_back_then_and_goes_to_the_dlq_after_the_last_receive() -> None:
    with mock_aws():
        sqs = boto3.client("sqs")
        provisioned = provision(REPO / "template.yaml", boto3.client("dynamodb"), sqs)
        url, arn = provisioned.queues["WebhookDeliveryQueue"], provisioned.queue_arns["WebhookDeliveryQueue"]
        sqs.send_message(QueueUrl=url, MessageBody='{"delivery_id": "d"}')
        function = BackingOff(sqs, url, waits=[1])
        trigger = SqsTrigger(
            cast(FunctionPool, function), sqs, url, arn, batch_size=10, report_batch_item_failures=True, pollers=1
        )

        assert trigger.poll_once() == 1
        assert trigger.poll_once() == 0  # the function's visibility, not the queue's (60 s) nor at once
        time.sleep(1.1)
        while trigger.poll_once():
            pass

        max_receives = json.loads(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
        )["maxReceiveCount"]
        assert function.attempts == list(range(1, max_receives + 1))
        [parked] = sqs.receive_message(QueueUrl=provisioned.queues["WebhookDeliveryDeadLetterQueue"])["Messages"]
        assert parked["Body"] == '{"delivery_id": "d"}'


FAILING_HANDLER = """
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from sqlalchemy.exc import OperationalError


def run_job(record):
    raise OperationalError(
        "SELECT marketplace_jobs.id FROM marketplace_jobs",
        {},
        Exception('connection to server at "127.0.0.1", port 5432 failed: Connection refused'),
    )


def lambda_handler(event, context):
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    return process_partial_response(event=event, record_handler=run_job, processor=processor, context=context)
"""


def test_a_failed_invocation_logs_the_cause_and_the_job_not_sqlalchemys_last_line(
    queue: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sqs, url, arn = queue
    code = tmp_path / "process_job"
    code.mkdir()
    (code / "app.py").write_text(FAILING_HANDLER)
    spec = FunctionSpec("ProcessJobFunction", code, "app.lambda_handler", 30, 128, {})
    pool = FunctionPool(spec, {"PATH": os.environ.get("PATH", "")}, concurrency=1)
    job_id = "0b9c6a52-5f0e-4d47-9a43-3f3f9f1c2a11"
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"job_id": job_id, "user_id": "alice"}),
        MessageGroupId="alice:vinted",
        MessageDeduplicationId="1",
    )
    trigger = SqsTrigger(pool, sqs, url, arn, batch_size=1, report_batch_item_failures=True, pollers=1)

    try:
        with caplog.at_level(logging.INFO, logger="devstack"):
            assert trigger.poll_once() == 1
    finally:
        pool.close()

    [line] = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert f"(job {job_id})" in line
    assert "BatchProcessingError → sqlalchemy.exc.OperationalError" in line
    assert 'connection to server at "127.0.0.1", port 5432 failed: Connection refused' in line
    assert "[SQL: SELECT marketplace_jobs.id FROM marketplace_jobs]" in line
    assert "Background on this error" not in line
    assert "\n" not in line


def test_an_exception_is_described_on_one_line_with_its_type_and_trimmed() -> None:
    assert describe_exception(KeyError("job_id")) == "KeyError: 'job_id'"
    assert describe_exception(TimeoutError()) == "TimeoutError"
    long = describe_exception(ValueError("first line\n  second line\n" + "x" * 1000))
    assert long.startswith("ValueError: first line | second line | xxx")
    assert len(long) == 500
    assert long.endswith("…")
