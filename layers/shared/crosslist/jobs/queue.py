"""The JobsQueue: SQS FIFO, one message group per user and marketplace."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, TypeAdapter

SQS_BATCH_SIZE = 10  # SendMessageBatch's limit
_GROUP_ID_ALLOWED = re.compile(r"^[\w!\"#$%&'()*+,\-./:;<=>?@\[\\\]^`{|}~]{1,128}$", re.ASCII)


class JobMessage(BaseModel):
    """The body of a JobsQueue message that runs a job."""

    job_id: uuid.UUID
    user_id: str


class SessionMessage(BaseModel):
    """The body of a JobsQueue message asking to tell one tab the state of its user's active jobs.

    It comes from the WebSocket side, which never touches PostgreSQL: process_job, which does, answers.
    """

    user_id: str
    connection_id: str


# Session messages have a group of their own: they never wait behind a user's running job.
SESSION_GROUP = "session"

# What a JobsQueue body can be; a body that is neither raises (SQS retries it, then parks it in the DLQ).
queue_message: TypeAdapter[JobMessage | SessionMessage] = TypeAdapter(JobMessage | SessionMessage)


def message_group(user_id: str, marketplace: str) -> str:
    """A user runs one job at a time per marketplace: the browser extension runs one command at a time."""
    group = f"{user_id}:{marketplace}"
    if _GROUP_ID_ALLOWED.match(group):
        return group
    return hashlib.sha256(group.encode()).hexdigest()


@dataclass(frozen=True)
class QueuedJob:
    job_id: uuid.UUID
    user_id: str
    marketplace: str
    deduplication_id: str


class JobQueue(Protocol):
    def enqueue(self, job_id: uuid.UUID, user_id: str, marketplace: str, deduplication_id: str) -> None: ...

    def enqueue_many(self, jobs: list[QueuedJob]) -> set[uuid.UUID]:
        """Queue every job (in batches of SQS's 10); returns the ids that could not be queued."""
        ...


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

    def enqueue_many(self, jobs: list[QueuedJob]) -> set[uuid.UUID]:
        failed: set[uuid.UUID] = set()
        for start in range(0, len(jobs), SQS_BATCH_SIZE):
            chunk = {str(index): job for index, job in enumerate(jobs[start : start + SQS_BATCH_SIZE])}
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {
                            "Id": entry_id,
                            "MessageBody": JobMessage(job_id=job.job_id, user_id=job.user_id).model_dump_json(),
                            "MessageGroupId": message_group(job.user_id, job.marketplace),
                            "MessageDeduplicationId": hashlib.sha256(job.deduplication_id.encode()).hexdigest(),
                        }
                        for entry_id, job in chunk.items()
                    ],
                )
            except Exception:
                failed.update(job.job_id for job in chunk.values())
                continue
            failed.update(chunk[entry["Id"]].job_id for entry in response.get("Failed", []))
        return failed

    def request_session(self, user_id: str, connection_id: str) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=SessionMessage(user_id=user_id, connection_id=connection_id).model_dump_json(),
            MessageGroupId=message_group(user_id, SESSION_GROUP),
            MessageDeduplicationId=str(uuid.uuid4()),  # each request is answered: a reload asks again
        )
