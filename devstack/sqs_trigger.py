"""Lambda's SQS event source mapping: poll the queue, invoke with batches, delete what succeeded.

Failed messages are left alone: they come back after the queue's visibility timeout, and SQS moves
them to the dead-letter queue after maxReceiveCount receives, exactly as in AWS. FIFO order and
one-group-at-a-time come from the queue itself (a group with a message in flight is held back).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from devstack.instances import FunctionPool, InvocationError

logger = logging.getLogger("devstack")


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
        self._threads: list[threading.Thread] = []

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
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                if self._stop.is_set():
                    return
                logger.exception("polling %s failed", self.queue_name)
                self._stop.wait(1)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch and run it; returns how many messages it held."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        started = time.perf_counter()
        try:
            result = self._pool.invoke(sqs_event(messages, self._queue_arn)).result
        except InvocationError as failed:
            logger.error(
                "%-13s sqs %s %d message(s) → error, retried after the visibility timeout: %s",
                self._pool.spec.name,
                self.queue_name,
                len(messages),
                str(failed).strip().splitlines()[-1],
            )
            return len(messages)
        failed_ids = (
            {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])} if self._partial else set()
        )
        for message in messages:
            if message["MessageId"] not in failed_ids:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        logger.info(
            "%-13s sqs %s %d message(s) → %d ok, %d failed (%.0f ms)",
            self._pool.spec.name,
            self.queue_name,
            len(messages),
            len(messages) - len(failed_ids),
            len(failed_ids),
            (time.perf_counter() - started) * 1000,
        )
        return len(messages)
