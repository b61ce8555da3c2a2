"""The outbox: events stored in the same PostgreSQL transaction as the change they tell of.

`record` adds the event to the caller's session: a change rolled back records nothing, a change committed
has its events stored with it, whatever becomes of the Lambda afterwards. The dispatcher
(crosslist.events.dispatch) marks them dispatched once delivered; one left undispatched is the sweeper's
(`undispatched`). Rows dispatched more than KEEP_DISPATCHED ago are deleted as later ones are marked: the
table stays bounded without a pass of its own.

Recording announces `lanes` (crosslist.due_times): an undispatched event is something the sweeper must find,
so an idle sweeper that skips PostgreSQL still looks when one may be there.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from crosslist.db.models import OutboxEvent
from crosslist.due_times import announce
from crosslist.events.events import EVENT_TYPES, Event

# Dispatched rows are kept this long (what was delivered, for an inquiry), then deleted.
KEEP_DISPATCHED = timedelta(days=7)


def record(session: Session, event: Event) -> None:
    """Store `event` in the caller's transaction (it commits or rolls back with the change)."""
    session.add(
        OutboxEvent(id=event.id, user_id=event.user_id, type=event.type, payload=event.payload, dispatched_at=None)
    )
    announce(session, "lanes")


def undispatched(session: Session, created_before: datetime, limit: int) -> list[Event]:
    """Events recorded before `created_before` and not dispatched, oldest first, locked (another sweep skips them)."""
    rows = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.created_at < created_before)
        .order_by(OutboxEvent.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_event(row) for row in rows]


def mark_dispatched(session: Session, ids: list[uuid.UUID]) -> None:
    """The events were delivered: marked so, and rows dispatched long ago deleted."""
    if not ids:
        return
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(ids), OutboxEvent.dispatched_at.is_(None))
        .values(dispatched_at=func.now())
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(OutboxEvent)
        .where(OutboxEvent.dispatched_at < func.now() - KEEP_DISPATCHED)
        .execution_options(synchronize_session=False)
    )


def oldest_undispatched(session: Session) -> datetime | None:
    """When the oldest undispatched event was recorded (None: there is none)."""
    oldest: datetime | None = session.scalar(
        select(func.min(OutboxEvent.created_at)).where(OutboxEvent.dispatched_at.is_(None))
    )
    return oldest


def _event(row: OutboxEvent) -> Event:
    kind = next(kind for kind in EVENT_TYPES if kind == row.type)
    return Event(type=kind, user_id=row.user_id, payload=dict(row.payload), id=row.id)
