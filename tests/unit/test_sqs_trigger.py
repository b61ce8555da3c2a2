"""The devstack's SQS trigger behaves like Lambda's event source mapping on a FIFO queue."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from devstack.aws import provision
from devstack.instances import FunctionPool, Invocation
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
