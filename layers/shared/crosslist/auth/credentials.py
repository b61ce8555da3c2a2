"""Marketplace OAuth credentials (eBay, Etsy) kept fresh by a schedule."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import CredentialStatus, OAuthCredential

# The schedule runs every 10 minutes: refresh whatever would expire before the run after next.
REFRESH_WINDOW = timedelta(minutes=20)


@dataclass(frozen=True)
class DueCredential:
    id: uuid.UUID
    user_id: str
    marketplace: str
    expires_at: datetime


def credentials_due_for_refresh(sessions: sessionmaker[Session], now: datetime | None = None) -> list[DueCredential]:
    horizon = (now or datetime.now(UTC)) + REFRESH_WINDOW
    with transaction(sessions) as session:
        rows = session.scalars(
            select(OAuthCredential)
            .where(
                OAuthCredential.status == CredentialStatus.ACTIVE,
                OAuthCredential.refresh_token_encrypted.is_not(None),
                OAuthCredential.expires_at < horizon,
            )
            .order_by(OAuthCredential.expires_at)
        )
        return [DueCredential(c.id, c.user_id, c.marketplace, c.expires_at) for c in rows]
