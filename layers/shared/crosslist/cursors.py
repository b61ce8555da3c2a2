"""Keyset pagination cursors: the sort key of a page's last row, opaque to clients (URL-safe base64)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

from crosslist.errors import InvalidRequest


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
