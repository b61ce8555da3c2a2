"""What the domain says happened: an Event, recorded in the transaction of the change (crosslist.events.outbox).

An event's payload may carry `message`: what the user's WebSocket connections are told of it
(docs/websocket-protocol.md), exactly as the engine tells it when the change commits. This module imports
nothing of the database: the WebSocket side may use it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

JsonDict = dict[str, Any]

EventType = Literal[
    "job.completed",
    "job.failed",
    "job.cancelled",
    "listing.sold",
    "delist.started",
    "delist.failed",
    "marketplace.reauth_required",
    "listing.drift",
    "listing.duplicate",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)


@dataclass(frozen=True)
class Event:
    type: EventType
    user_id: str
    payload: JsonDict
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def message(self) -> JsonDict | None:
        """What the user's connections are told (None: nothing)."""
        message = self.payload.get("message")
        return message if isinstance(message, dict) else None
