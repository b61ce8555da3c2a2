"""The devstack's SQS messages across a restart, kept as SQS keeps them.

moto holds its queues in memory: a timer waiting in the TimersQueue (a backoff, a pause, a command's
deadline) was lost when the devstack stopped, and its lane waited for the sweeper, up to a minute and a half
late. So on stop the messages still in the devstack's queues (delayed, visible and in flight) are written
to its state dir with when each is due, and on start sent again with what is left of their delay (none
when it has passed). An in-flight message is due when its visibility timeout ends, as SQS would show it
again.

The messages are read from moto's backend in this process (the devstack runs moto's server in-process,
devstack.moto_server): SQS's API cannot show a delayed message, nor one in flight. Keeping an outbox of our
own would mean following every send, receive and delete; moto already holds exactly that. They are sent
again through the API (so the triggers hear of them), then their delay is set in moto to the very moment
they were due: SQS's whole seconds, rounded up a second time, would make a timer up to 2 s late.

What is kept: each message's body, and its group and deduplication ids on a FIFO queue (the devstack's
messages carry no attributes). FIFO queues take no per-message delay: their messages are sent at once (an
early wake-up of a lane is harmless: the lane re-reads its state). Receive counts start again at 0.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("devstack")

QUEUED_MESSAGES_FILE = "queued-messages.json"  # in the state dir, from a stop to the next start
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit


@dataclass(frozen=True)
class SavedMessage:
    body: str
    due_at: float  # epoch seconds: when a receive can get it
    group_id: str | None = None
    deduplication_id: str | None = None


def queued_messages(queue_urls: dict[str, str], region: str = "us-east-1") -> dict[str, list[SavedMessage]]:
    """The messages in each queue (logical id -> its URL) of this process's moto, oldest first."""
    from moto.core.utils import unix_time_millis

    found: dict[str, list[SavedMessage]] = {}
    for logical_id, url in queue_urls.items():
        queue = _moto_queue(url, region)
        with queue._messages_lock:  # moto's own lock over the list: a consistent copy
            messages = list(queue._messages)
        now_ms, now = unix_time_millis(), time.time()  # moto's clock for its timestamps, ours for due_at
        found[logical_id] = [
            SavedMessage(
                body=message.body,
                due_at=now + max(0.0, max(message.delayed_until, message.visible_at) - now_ms) / 1000,
                group_id=message.group_id,
                deduplication_id=message.deduplication_id,
            )
            for message in messages
        ]
    return found


def save_queued_messages(path: Path, queue_urls: dict[str, str]) -> int:
    """Write the messages of the queues to `path`; how many there were."""
    messages = queued_messages(queue_urls)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(
        json.dumps({queue: [asdict(message) for message in kept] for queue, kept in messages.items()}, indent=1)
    )
    partial.replace(path)
    return sum(len(kept) for kept in messages.values())


def restore_queued_messages(path: Path, sqs: Any, queue_urls: dict[str, str]) -> int:
    """Send again the messages `path` kept, each delayed by what is left of its delay, and remove the file
    (they are in the queues again); how many were sent. Messages of a queue that no longer exists are dropped,
    said in the log."""
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as unreadable:
        logger.warning("could not read the queued messages of the previous run from %s: %s", path, unreadable)
        return 0
    sent = 0
    for logical_id, messages in saved.items():
        url = queue_urls.get(logical_id)
        if url is None:
            logger.warning("%d message(s) of queue %s dropped: the template has it no more", len(messages), logical_id)
            continue
        for fields in messages:
            message = SavedMessage(**fields)
            fifo = url.endswith(".fifo")
            message_id = sqs.send_message(QueueUrl=url, **_send_arguments(message, fifo=fifo))["MessageId"]
            if not fifo:
                _delay_exactly(url, message_id, message.due_at)
            sent += 1
    path.unlink()
    return sent


def _delay_exactly(queue_url: str, message_id: str, due_at: float, region: str = "us-east-1") -> None:
    """SQS delays by whole seconds, and the message was due at a whole second of its first send: rounded up
    twice it would come up to 2 s late. moto's delay is set to the very moment it was due instead."""
    from moto.core.utils import unix_time_millis

    queue = _moto_queue(queue_url, region)
    due_ms = unix_time_millis() + (due_at - time.time()) * 1000  # in moto's clock
    with queue._messages_lock:
        for stored in queue._messages:
            if stored.id == message_id:
                stored.delayed_until = min(stored.delayed_until, due_ms)


def _moto_queue(queue_url: str, region: str) -> Any:
    """The queue in the moto backend of this process (moto.sqs.models.Queue)."""
    from moto.sqs.models import sqs_backends

    account_id, name = queue_url.rstrip("/").split("/")[-2:]
    return sqs_backends[account_id][region].get_queue(name)


def _send_arguments(message: SavedMessage, *, fifo: bool) -> dict[str, Any]:
    if fifo:
        return {
            "MessageBody": message.body,
            "MessageGroupId": message.group_id,
            "MessageDeduplicationId": message.deduplication_id,
        }
    delay = min(MAX_DELAY_SECONDS, max(0, math.ceil(message.due_at - time.time())))
    return {"MessageBody": message.body, "DelaySeconds": delay}
