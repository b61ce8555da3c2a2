"""Keyset pagination cursors: the sort key of a page's last row, opaque to clients (URL-safe base64).

A cursor is taken only in the exact form the server issues it: a UTC time and a UUID, encoded as
`encode` would. Anything else is a 400 before it reaches a query: a time in another zone or at the edge
of the calendar overflows the driver's conversion while it writes the statement.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from crosslist.errors import BadRequest


def encode(at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([at.astimezone(UTC).isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) a cursor stands for; BadRequest (400, `invalid_cursor`) for anything the server
    would not have issued."""
    try:
        at_text, id_text = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(at_text, str) or not isinstance(id_text, str):
            raise ValueError("a cursor holds two strings")
        at, row_id = datetime.fromisoformat(at_text), uuid.UUID(id_text)
        if at.utcoffset() != timedelta(0) or encode(at, row_id) != cursor:
            raise ValueError("not a cursor this server issued")
    except (ValueError, TypeError, binascii.Error):  # JSON, base64, unpacking, time and UUID errors alike
        raise BadRequest("invalid cursor: pass the next_cursor of a previous page", code="invalid_cursor") from None
    return at, row_id


def newest_first_page[Row](
    session: Session,
    query: Select[Row],
    *,
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """One page of `query`'s rows, newest `at` first, after `cursor`; and the cursor of the next page
    (None on the last). Keyset pagination: rows added meanwhile never shift a page."""
    if cursor is not None:
        after_at, after_id = decode(cursor)
        query = query.where(tuple_(at, row_id) < tuple_(after_at, after_id))
    rows = list(session.scalars(query.order_by(at.desc(), row_id.desc()).limit(limit + 1)))
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    return page, encode(getattr(page[-1], at.key), getattr(page[-1], row_id.key))
