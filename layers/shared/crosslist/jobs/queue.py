"""The queues that wake lanes.

- JobsQueue (SQS FIFO), one message group per lane (one user on one marketplace): a message names the lane and
  what woke it, never a job; process_job decides from PostgreSQL what the lane does next. The group
  keeps one lane's wake-ups one at a time; other lanes never wait behind it.
- TimersQueue (standard SQS): a wake-up due later (pacing, a command's deadline, a backoff, a pause, a
  reply held until the lane's next call is due), since a FIFO queue cannot delay one message. process_job
  consumes it too: such a wake-up may run beside another of its lane, which the lane's lock and
  LaneEngine's "sender still running" rule make safe (forwarding it to the FIFO group cost a third more).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, Field, TypeAdapter

from crosslist.marketplaces import EXTENSION_MARKETPLACES
from crosslist.realtime.messages import PhotoDownloadFailure

SQS_BATCH_SIZE = 10  # SendMessageBatch's limit
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit: a longer timer is delayed again on arrival
_GROUP_ID_ALLOWED = re.compile(r"^[\w!\"#$%&'()*+,\-./:;<=>?@\[\\\]^`{|}~]{1,128}$", re.ASCII)


class CarriedReply(BaseModel):
    """A plugin command's result, as ws_message recorded it: carried by the wake-up it sends, so the
    woken lane need not read the correlation record back."""

    request_id: str
    success: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    status: int | None = None
    retry_after: float | None = None
    photo_failure: PhotoDownloadFailure | None = None


class LaneWake(BaseModel):
    """The body of a JobsQueue message: look at this lane now. `cause` deduplicates (a result's request
    id, a job's creation, a timer's due time…), so the same event never wakes a lane twice."""

    user_id: str
    marketplace: str
    cause: str = Field(max_length=200)
    reply: CarriedReply | None = None


class SessionMessage(BaseModel):
    """The body of a JobsQueue message asking to tell one tab the state of its user's active jobs.

    It comes from the WebSocket side, which never touches PostgreSQL: process_job, which does, answers.
    """

    user_id: str
    connection_id: str


class TimerMessage(BaseModel):
    """The body of a TimersQueue message: wake the lane at `due_ms` (epoch milliseconds). A held reply
    carries its own cause and the reply; a plain timer's cause is `timer:<due_ms>`."""

    user_id: str
    marketplace: str
    due_ms: int
    cause: str | None = Field(default=None, max_length=200)
    reply: CarriedReply | None = None

    @property
    def wake_cause(self) -> str:
        return self.cause or f"timer:{self.due_ms}"


# Marketplaces whose calls the user's browser extension executes: a tab connecting wakes their lanes.
PLUGIN_MARKETPLACES: tuple[str, ...] = EXTENSION_MARKETPLACES

# Session messages have a group of their own: they never wait behind a user's lane.
SESSION_GROUP = "session"

# What a JobsQueue body can be; a body that is neither raises (SQS retries it, then parks it in the DLQ).
queue_message: TypeAdapter[LaneWake | SessionMessage] = TypeAdapter(LaneWake | SessionMessage)


def message_group(user_id: str, marketplace: str) -> str:
    """A lane: the browser extension runs one command at a time, eBay and Etsy limit calls per token."""
    group = f"{user_id}:{marketplace}"
    if _GROUP_ID_ALLOWED.match(group):
        return group
    return hashlib.sha256(group.encode()).hexdigest()


class JobQueue(Protocol):
    def wake(self, user_id: str, marketplace: str, cause: str, reply: CarriedReply | None = None) -> None: ...

    def wake_many(self, wakes: list[LaneWake]) -> set[str]:
        """Send every wake-up (in batches of SQS's 10); returns the causes that could not be sent."""
        ...


class TimerQueue(Protocol):
    def wake_at(
        self,
        user_id: str,
        marketplace: str,
        due: float,
        *,
        cause: str | None = None,
        reply: CarriedReply | None = None,
    ) -> None:
        """Wake the lane at `due` (epoch seconds); at once if it is past."""
        ...


class SqsJobQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def wake(self, user_id: str, marketplace: str, cause: str, reply: CarriedReply | None = None) -> None:
        wake = LaneWake(user_id=user_id, marketplace=marketplace, cause=cause, reply=reply)
        self._client.send_message(QueueUrl=self._queue_url, **_entry(wake))

    def wake_many(self, wakes: list[LaneWake]) -> set[str]:
        failed: set[str] = set()
        for start in range(0, len(wakes), SQS_BATCH_SIZE):
            chunk = {str(index): wake for index, wake in enumerate(wakes[start : start + SQS_BATCH_SIZE])}
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": entry_id, **_entry(wake)} for entry_id, wake in chunk.items()],
                )
            except Exception:
                failed.update(wake.cause for wake in chunk.values())
                continue
            failed.update(chunk[entry["Id"]].cause for entry in response.get("Failed", []))
        return failed

    def connected(self, user_id: str, connection_id: str, marketplaces: tuple[str, ...]) -> None:
        """A tab connected: it is sent its user's active jobs, and the lanes its extension runs are woken
        (jobs waiting for it go on). One request for both."""
        session = SessionMessage(user_id=user_id, connection_id=connection_id)
        entries = [
            {
                "Id": "session",
                "MessageBody": session.model_dump_json(),
                "MessageGroupId": message_group(user_id, SESSION_GROUP),
                "MessageDeduplicationId": str(uuid.uuid4()),
            },
            *(
                {
                    "Id": f"lane{index}",
                    **_entry(LaneWake(user_id=user_id, marketplace=marketplace, cause=f"connect:{connection_id}")),
                }
                for index, marketplace in enumerate(marketplaces)
            ),
        ]
        response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"{len(response['Failed'])} connection message(s) not queued: {response['Failed']}")

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """A received message whose processing failed comes back after `seconds`."""
        self._client.change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def request_session(self, user_id: str, connection_id: str) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=SessionMessage(user_id=user_id, connection_id=connection_id).model_dump_json(),
            MessageGroupId=message_group(user_id, SESSION_GROUP),
            MessageDeduplicationId=str(uuid.uuid4()),  # each request is answered: a reload asks again
        )


def _entry(wake: LaneWake) -> dict[str, str]:
    return {
        "MessageBody": wake.model_dump_json(exclude_none=True),
        "MessageGroupId": message_group(wake.user_id, wake.marketplace),
        # Scoped to the group (the lane): the same event never wakes it twice within SQS's 5 minutes.
        "MessageDeduplicationId": hashlib.sha256(wake.cause.encode()).hexdigest(),
    }


@dataclass(frozen=True)
class SqsTimerQueue:
    client: Any
    queue_url: str

    def wake_at(
        self,
        user_id: str,
        marketplace: str,
        due: float,
        *,
        cause: str | None = None,
        reply: CarriedReply | None = None,
    ) -> None:
        timer = TimerMessage(
            user_id=user_id, marketplace=marketplace, due_ms=math.ceil(due * 1000), cause=cause, reply=reply
        )
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=timer.model_dump_json(exclude_none=True),
            DelaySeconds=delay_seconds(due),
        )

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """A received timer whose processing failed comes back after `seconds`."""
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


def delay_seconds(due: float, now: float | None = None) -> int:
    """SQS delays by whole seconds: round up, so a timer never arrives before it is due."""
    now = time.time() if now is None else now
    return max(0, min(MAX_DELAY_SECONDS, math.ceil(due - now)))


def delay_again(timer: TimerMessage, timers: TimerQueue, now: float | None = None) -> bool:
    """A timer arrived: if it is not due yet (a wait over SQS's 15 minutes), send it on again (True)."""
    now = time.time() if now is None else now
    due = timer.due_ms / 1000
    if due <= now + 0.5:
        return False
    timers.wake_at(timer.user_id, timer.marketplace, due, cause=timer.cause, reply=timer.reply)
    return True
