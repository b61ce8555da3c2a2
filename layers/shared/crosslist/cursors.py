"""Keyset pagination cursors: the sort key of a page's last row, opaque to clients (URL-safe base64)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from crosslist.errors import InvalidRequest

Row = TypeVar("Row")


def encode(at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (time, id) a cursor stands for; InvalidRequest (400) for anything else."""
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), uuid.UUID(row_id)
    except (ValueError, TypeError):
        raise InvalidRequest("invalid cursor: pass the next_cursor of a previous page", code="invalid_cursor") from None


def newest_first_page(
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
