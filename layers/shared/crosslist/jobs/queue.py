"""The JobsQueue: SQS FIFO, one message group per user and marketplace."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any, Protocol

from pydantic import BaseModel

_GROUP_ID_ALLOWED = re.compile(r"^[\w!\"#$%&'()*+,\-./:;<=>?@\[\\\]^`{|}~]{1,128}$", re.ASCII)


class JobMessage(BaseModel):
    """The body of a JobsQueue message."""

    job_id: uuid.UUID
    user_id: str


def message_group(user_id: str, marketplace: str) -> str:
    """A user runs one job at a time per marketplace: the browser extension runs one command at a time."""
    group = f"{user_id}:{marketplace}"
    if _GROUP_ID_ALLOWED.match(group):
        return group
    return hashlib.sha256(group.encode()).hexdigest()


class JobQueue(Protocol):
    def enqueue(self, job_id: uuid.UUID, user_id: str, marketplace: str, deduplication_id: str) -> None: ...


class SqsJobQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def enqueue(self, job_id: uuid.UUID, user_id: str, marketplace: str, deduplication_id: str) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=JobMessage(job_id=job_id, user_id=user_id).model_dump_json(),
            MessageGroupId=message_group(user_id, marketplace),
            MessageDeduplicationId=hashlib.sha256(deduplication_id.encode()).hexdigest(),
        )
