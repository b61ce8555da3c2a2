"""The dispatcher's webhook hook: each dispatched event whose user's endpoint subscribed to its type becomes a
delivery (a row of the log and one SQS message), once.

One statement per dispatch batch, whatever the batch holds: the events go in as one JSON parameter, joined to the
endpoints on the user and the subscribed type, inserted `ON CONFLICT DO NOTHING` (unique on event and endpoint:
an event the sweeper delivers again makes no second delivery) and the new rows' ids returned. A user without an
endpoint costs that one statement's index look-up and nothing else. The messages are sent before the commit:
a failed send rolls the rows back (the dispatcher logs it; no row is left without a message), and a commit that
fails after the send leaves messages whose rows do not exist, which deliver_webhooks drops.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.events.events import Event
from crosslist.webhooks.queue import DeliveryQueue

# The outbox's `created_at` is the event's time when its row is still there (it is, but for a test's event).
_FAN_OUT = text(
    """
    INSERT INTO webhook_deliveries (id, user_id, endpoint_id, event_id, event_type, event_at, data, state, attempts)
    SELECT gen_random_uuid(), endpoint.user_id, endpoint.id, event.id, event.type,
           coalesce(outbox.created_at, now()), event.data, 'pending', 0
    FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS event(id uuid, user_id text, type text, data jsonb)
    JOIN webhook_endpoints AS endpoint
      ON endpoint.user_id = event.user_id AND endpoint.events @> jsonb_build_array(event.type)
    LEFT JOIN outbox ON outbox.id = event.id
    ON CONFLICT ON CONSTRAINT uq_webhook_deliveries_event_endpoint DO NOTHING
    RETURNING id
    """
).bindparams(bindparam("events", type_=JSONB))


def webhook_data(payload: dict[str, Any]) -> dict[str, Any]:
    """An event's payload as its webhook's `data`: all but `message`, the WebSocket side's own wording."""
    return {key: value for key, value in payload.items() if key != "message"}


class WebhookFanOut:
    """A batch hook of crosslist.events.dispatch.Dispatcher."""

    def __init__(self, sessions: sessionmaker[Session], queue: Callable[[], DeliveryQueue]) -> None:
        self._sessions = sessions
        self._queue = queue

    def __call__(self, events: Sequence[Event]) -> None:
        if not events:
            return
        rows = [
            {"id": str(event.id), "user_id": event.user_id, "type": event.type, "data": webhook_data(event.payload)}
            for event in events
        ]
        with transaction(self._sessions) as session:
            created: list[uuid.UUID] = list(session.scalars(_FAN_OUT, {"events": rows}))
            if created:
                self._queue().send(created)
