"""WebhookDeliveryQueue (standard SQS): one message per delivery, `{"delivery_id": …}`. deliver_webhooks consumes
it; a failed attempt puts its message back for the next wait of the retry schedule (ChangeMessageVisibility),
and the queue's redrive policy moves it to WebhookDeliveryDeadLetterQueue after the last attempt."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel

SQS_BATCH_SIZE = 10  # SendMessageBatch's limit
MAX_VISIBILITY_SECONDS = 12 * 3600  # ChangeMessageVisibility's limit, counted from the message's receipt


class DeliveryMessage(BaseModel):
    delivery_id: uuid.UUID


class DeliveryQueue(Protocol):
    def send(self, delivery_ids: Sequence[uuid.UUID]) -> None:
        """Queue one message per delivery; raises if any was not queued."""

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """The received message comes back in `seconds` (0: at once)."""


class SqsDeliveryQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, delivery_ids: Sequence[uuid.UUID]) -> None:
        for start in range(0, len(delivery_ids), SQS_BATCH_SIZE):
            chunk = delivery_ids[start : start + SQS_BATCH_SIZE]
            answer = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": DeliveryMessage(delivery_id=delivery_id).model_dump_json()}
                    for index, delivery_id in enumerate(chunk)
                ],
            )
            if answer.get("Failed"):
                raise RuntimeError(f"webhook deliveries not queued: {answer['Failed']}")

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(int(seconds), MAX_VISIBILITY_SECONDS)),
        )
