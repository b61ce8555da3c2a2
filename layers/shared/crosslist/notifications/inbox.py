"""Each push notification is acted on once: its id (eBay's notificationId, Etsy's webhook-id) is stored in the
transaction of what it does, so a retry of one already acted on, or a captured one replayed, finds its row and
does nothing; one whose action failed left no row and is acted on when it comes again.

Rows are kept KEEP_FOR, longer than the oldest message accepted (eBay: a publishDate within
crosslist.notifications.service.EBAY_MAX_AGE; Etsy: a timestamp within 5 minutes): any message still accepted
finds its row. Older rows are deleted as new ones come (an indexed DELETE in the same transaction).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from crosslist.db.models import ReceivedNotification

KEEP_FOR = timedelta(days=7)


def first_time(session: Session, source: str, message_id: str, topic: str, *, now: datetime | None = None) -> bool:
    """Record the notification in the caller's transaction: True the first time, False when it was acted on
    already (or is being, by a concurrent delivery that then commits)."""
    recorded = session.execute(
        insert(ReceivedNotification)
        .values(source=source, message_id=message_id, topic=topic[:64])
        .on_conflict_do_nothing(index_elements=["source", "message_id"])
        .returning(ReceivedNotification.message_id)
    ).first()
    cutoff = (now - KEEP_FOR) if now is not None else func.now() - KEEP_FOR
    session.execute(delete(ReceivedNotification).where(ReceivedNotification.received_at < cutoff))
    return recorded is not None
