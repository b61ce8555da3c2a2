"""Lambda's SQS event source mapping: poll the queue, invoke with batches, delete what succeeded.

Failed messages are left alone: they come back after the queue's visibility timeout, and SQS moves
them to the dead-letter queue after maxReceiveCount receives, exactly as in AWS.

FIFO: SQS never hands out a message of a group that has one in flight. moto mostly does the same,
but its long poll spins a CPU core while only busy groups have messages, and two concurrent long
polls can each get a message of one group. So the pollers take turns receiving (short polls, a
pause when the queue is idle), and a message whose group is still busy is put back untouched.

Latency: Lambda's long poll hands a new message over within milliseconds. Here the devstack's moto
server calls `wake()` on a queue's triggers when a message is sent to it (devstack.moto_server), which
ends their idle pause at once; the pause stays as the fallback for messages that become visible by
themselves (delays, visibility timeouts running out, put-back FIFO messages).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from devstack.instances import FunctionPool, InvocationError

logger = logging.getLogger("devstack")

IDLE_PAUSE_SECONDS = 0.05


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """An SQS trigger batch built from ReceiveMessage results (system attributes requested)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class SqsTrigger:
    def __init__(
        self,
        pool: FunctionPool,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        *,
        batch_size: int,
        report_batch_item_failures: bool,
        pollers: int,
    ) -> None:
        self._pool = pool
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._partial = report_batch_item_failures
        self._pollers = pollers
        self._stop = threading.Event()
        # Set by wake() (and stop()): idle pollers stop pausing. A poller clears it before it receives,
        # never after: a send its receive came too early to see leaves it set, and it polls again.
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._receiving = threading.Lock()
        self._busy_groups: set[str] = set()

    @property
    def queue_name(self) -> str:
        return self._queue_url.rsplit("/", 1)[-1]

    def start(self) -> None:
        for index in range(self._pollers):
            thread = threading.Thread(target=self._poll, name=f"sqs-{self.queue_name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def wake(self) -> None:
        """A message was just sent to the queue: idle pollers poll now rather than after their pause."""
        self._wake.set()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._wake.clear()
                if self.poll_once() == 0 and not self._stop.is_set():
                    self._wake.wait(IDLE_PAUSE_SECONDS)
            except Exception:
                if self._stop.is_set():
                    return
                logger.exception("polling %s failed", self.queue_name)
                self._stop.wait(1)

    def poll_once(self) -> int:
        """Receive one batch and run it; returns how many messages it held."""
        with self._receiving:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages = self._hold_back_busy_groups(messages)
            groups = {group for message in messages if (group := _group(message)) is not None}
            self._busy_groups |= groups
        if not messages:
            return 0
        done: list[dict[str, Any]] = []
        try:
            done = self._run(messages)
        finally:
            # Deleting frees the group in SQS: do it and free it here in one step, or another poller
            # could receive the group's next message while it still looks busy.
            with self._receiving:
                for message in done:
                    self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                self._busy_groups -= groups
        return len(messages)

    def _hold_back_busy_groups(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        for message in messages:
            if _group(message) in self._busy_groups:
                logger.warning("%s: message of busy group %s put back", self.queue_name, _group(message))
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                kept.append(message)
        return kept

    def _run(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Invoke the function with the batch; returns the messages it processed successfully."""
        started = time.perf_counter()
        try:
            result = self._pool.invoke(sqs_event(messages, self._queue_arn)).result
        except InvocationError as failed:
            logger.error(
                "%-13s sqs %s %d message(s)%s → error, retried after the visibility timeout: %s",
                self._pool.spec.name,
                self.queue_name,
                len(messages),
                _jobs(messages),
                failed.summary,
            )
            logger.debug("%s", failed)  # the whole traceback
            return []
        failed_ids = (
            {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])} if self._partial else set()
        )
        logger.info(
            "%-13s sqs %s %d message(s)%s → %d ok, %d failed (%.0f ms)",
            self._pool.spec.name,
            self.queue_name,
            len(messages),
            _jobs(messages),
            len(messages) - len(failed_ids),
            len(failed_ids),
            (time.perf_counter() - started) * 1000,
        )
        return [message for message in messages if message["MessageId"] not in failed_ids]


def _jobs(messages: list[dict[str, Any]]) -> str:
    """' (job <id>, …)' naming the jobs of job messages ({"job_id": …} bodies); '' when there are none."""
    ids = []
    for message in messages:
        try:
            body = json.loads(message.get("Body") or "")
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("job_id"):
            ids.append(str(body["job_id"]))
    return f" (job {', '.join(ids)})" if ids else ""


def _group(message: dict[str, Any]) -> str | None:
    group: str | None = message.get("Attributes", {}).get("MessageGroupId")
    return group
