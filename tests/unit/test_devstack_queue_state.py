"""The devstack's queued messages across a restart (devstack.queue_state), on moto in this process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.queue_state import restore_queued_messages, save_queued_messages

DELAY_SECONDS = 1


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def new_queues(sqs: Any) -> dict[str, str]:
    """The devstack's two kinds of queue, empty, as a new devstack process creates them."""
    for url in sqs.list_queues().get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
    return {
        "TimersQueue": sqs.create_queue(QueueName="TimersQueue")["QueueUrl"],
        "JobsQueue": sqs.create_queue(
            QueueName="JobsQueue.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"}
        )["QueueUrl"],
    }


def bodies(sqs: Any, url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
    return sorted(message["Body"] for message in messages)


def test_queued_messages_come_back_after_a_restart_when_they_are_due(sqs: Any, tmp_path: Path) -> None:
    queues = new_queues(sqs)
    sent_at = time.time()
    sqs.send_message(QueueUrl=queues["TimersQueue"], MessageBody="timer", DelaySeconds=DELAY_SECONDS)
    sqs.send_message(QueueUrl=queues["TimersQueue"], MessageBody="due now")
    wake = {"MessageGroupId": "demo:vinted", "MessageDeduplicationId": "created:1"}
    sqs.send_message(QueueUrl=queues["JobsQueue"], MessageBody="wake-up", **wake)
    saved = tmp_path / "queued-messages.json"
    time.sleep(DELAY_SECONDS / 2)  # the devstack stops, and starts again, half-way through the timer's delay

    assert save_queued_messages(saved, queues) == 3
    queues = new_queues(sqs)  # moto starts empty, as in a new devstack process
    assert restore_queued_messages(saved, sqs, queues) == 3

    assert not saved.exists()  # they are in the queues again: a second start must not send them twice
    assert bodies(sqs, queues["TimersQueue"]) == ["due now"]
    [fifo] = sqs.receive_message(QueueUrl=queues["JobsQueue"], AttributeNames=["All"])["Messages"]
    assert (fifo["Body"], fifo["Attributes"]["MessageGroupId"]) == ("wake-up", "demo:vinted")
    # Due when it was due: SQS's whole seconds would have delayed it a whole second from its restoring.
    time.sleep(max(0.0, sent_at + DELAY_SECONDS + 0.2 - time.time()))
    assert bodies(sqs, queues["TimersQueue"]) == ["timer"]
