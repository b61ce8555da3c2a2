"""Marketplace OAuth credentials (eBay, Etsy): stored sealed (crosslist.auth.vault), handed out fresh.

A refresh holds the credential's row lock for its call to the token endpoint, so refreshes of one
credential never overlap: Etsy rotates its refresh token at every refresh, and two overlapping
refreshes would lose it (the second would present a token the first just retired). A caller that
waited for the lock sees the credential's version moved on and takes the token the other caller got,
without calling the marketplace again. `invalid_grant` means the user must connect the account again:
the credential becomes `needs_reauth`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from crosslist.auth.vault import KeyService, open_sealed, seal
from crosslist.db.engine import transaction
from crosslist.db.models import CredentialStatus, OAuthCredential
from crosslist.due_times import announce
from crosslist.events import outbox
from crosslist.events.events import Event

# The schedule runs every 15 minutes: refresh whatever would expire before the run after next.
REFRESH_WINDOW = timedelta(minutes=30)
# A token about to expire is refreshed before it is handed out: a call made with it must still succeed.
EXPIRY_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class DueCredential:
    id: uuid.UUID
    user_id: str
    marketplace: str
    expires_at: datetime
    version: int


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint answers (a refresh may leave `refresh_token` None: the old one stays)."""

    access_token: str
    expires_at: datetime
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None
    scopes: str = ""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    version: int  # the credential's version it was read at (a refresh moves it on)


class InvalidGrant(Exception):
    """The marketplace refused the refresh token: the user must connect the account again."""


class NeedsReauth(Exception):
    """The credential cannot be used until the user connects the account again."""

    def __init__(self, user_id: str, marketplace: str) -> None:
        super().__init__(f"{marketplace} needs to be connected again for user {user_id}")
        self.user_id = user_id
        self.marketplace = marketplace


class NotConnected(Exception):
    def __init__(self, user_id: str, marketplace: str) -> None:
        super().__init__(f"user {user_id} has not connected {marketplace}")


class TokenEndpoint(Protocol):
    def refresh(self, refresh_token: str) -> TokenSet:
        """A new token set; InvalidGrant when the refresh token is no longer accepted."""


class CredentialStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        keys: KeyService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._clock = clock

    def save(self, user_id: str, marketplace: str, tokens: TokenSet) -> uuid.UUID:
        """Store (or replace) the user's credential for the marketplace, sealed under a new data key."""
        with transaction(self._sessions) as session:
            existing = session.scalar(
                select(OAuthCredential.id).where(
                    OAuthCredential.user_id == user_id, OAuthCredential.marketplace == marketplace
                )
            )
            credential_id = existing or uuid.uuid4()
            key = self._keys.new_key(str(credential_id))
            values = {
                "access_token_encrypted": seal(key.plaintext, str(credential_id), "access", tokens.access_token),
                "refresh_token_encrypted": (
                    seal(key.plaintext, str(credential_id), "refresh", tokens.refresh_token)
                    if tokens.refresh_token
                    else None
                ),
                "data_key_encrypted": key.encrypted,
                "scopes": tokens.scopes,
                "expires_at": tokens.expires_at,
                "refresh_expires_at": tokens.refresh_expires_at,
                "status": CredentialStatus.ACTIVE,
            }
            upsert = insert(OAuthCredential).values(
                id=credential_id, user_id=user_id, marketplace=marketplace, **values
            )
            session.execute(
                upsert.on_conflict_do_update(
                    index_elements=["user_id", "marketplace"],
                    set_={**values, "version": OAuthCredential.version + 1, "updated_at": self._clock()},
                )
            )
            # Its sync rules can run now, and its token is to be refreshed before it expires.
            announce(session, "sync_rules", "tokens")
        return credential_id

    def access_token(self, user_id: str, marketplace: str, endpoint: TokenEndpoint) -> str:
        """A token good for at least EXPIRY_MARGIN: refreshed first when it is not."""
        return self.issue(user_id, marketplace, endpoint).access_token

    def issue(self, user_id: str, marketplace: str, endpoint: TokenEndpoint) -> IssuedToken:
        """Like access_token, with the credential's version: a caller whose token is refused (401) passes it
        back to `refresh` as `seen_version`, so a token another caller already replaced is not refreshed twice."""
        with transaction(self._sessions) as session:
            credential = self._credential(session, user_id, marketplace, lock=False)
            if credential.expires_at > self._clock() + EXPIRY_MARGIN:
                return IssuedToken(self._open(credential, "access"), credential.version)
            seen = credential.version
        token = self.refresh(user_id, marketplace, endpoint, seen_version=seen)
        return IssuedToken(token, seen + 1)

    def refresh(
        self, user_id: str, marketplace: str, endpoint: TokenEndpoint, *, seen_version: int | None = None
    ) -> str:
        """Refresh the credential (one refresh at a time) and return its new access token. `seen_version`:
        the version the caller found stale; if another refresh has happened since, its token is returned
        and the marketplace is not called again (a 401 on a token another caller just replaced, say)."""
        with transaction(self._sessions) as session:
            credential = self._credential(session, user_id, marketplace, lock=True)
            if seen_version is not None and credential.version != seen_version:
                return self._open(credential, "access")
            expired_at = credential.expires_at
            token = self._refreshed(credential, endpoint)
            credential.version += 1
            if token is None:  # committed: the credential waits for the user to connect again
                credential.status = CredentialStatus.NEEDS_REAUTH
                announce(session, "sync_rules")  # its rules record that they wait for the user
                # For the app's webhooks (its connections are told by the jobs that wait for the user); the
                # sweeper's pass delivers it, this one is not on a job's path.
                outbox.record(
                    session,
                    Event("marketplace.reauth_required", user_id, {"marketplace": marketplace, "message": None}),
                )
            elif credential.expires_at < expired_at:  # an unusually short token: refreshed sooner than planned
                announce(session, "tokens")
        if token is None:
            raise NeedsReauth(user_id, marketplace)
        return token

    def _refreshed(self, credential: OAuthCredential, endpoint: TokenEndpoint) -> str | None:
        """Call the token endpoint and seal what it answers; None when it refused (or cannot be asked)."""
        if credential.refresh_token_encrypted is None:
            return None
        credential_id = str(credential.id)
        key = self._keys.key(credential_id, credential.data_key_encrypted or b"")
        try:
            tokens = endpoint.refresh(open_sealed(key, credential_id, "refresh", credential.refresh_token_encrypted))
        except InvalidGrant:
            return None
        credential.access_token_encrypted = seal(key, credential_id, "access", tokens.access_token)
        if tokens.refresh_token is not None:  # rotated (Etsy): the old one is dead from now on
            credential.refresh_token_encrypted = seal(key, credential_id, "refresh", tokens.refresh_token)
            credential.refresh_expires_at = tokens.refresh_expires_at
        credential.expires_at = tokens.expires_at
        return tokens.access_token

    def _credential(self, session: Session, user_id: str, marketplace: str, *, lock: bool) -> OAuthCredential:
        query = select(OAuthCredential).where(
            OAuthCredential.user_id == user_id, OAuthCredential.marketplace == marketplace
        )
        credential = session.scalar(query.with_for_update() if lock else query)
        if credential is None:
            raise NotConnected(user_id, marketplace)
        if credential.status is CredentialStatus.NEEDS_REAUTH:
            raise NeedsReauth(user_id, marketplace)
        return credential

    def _open(self, credential: OAuthCredential, field: str) -> str:
        key = self._keys.key(str(credential.id), credential.data_key_encrypted or b"")
        return open_sealed(key, str(credential.id), field, credential.access_token_encrypted)


def next_refresh_due(sessions: sessionmaker[Session]) -> datetime | None:
    """When the soonest credential enters the refresh window (None: no credential to refresh): the schedule need
    not open PostgreSQL before then (crosslist.due_times, `tokens`)."""
    with transaction(sessions) as session:
        expires_at = session.scalar(
            select(func.min(OAuthCredential.expires_at)).where(
                OAuthCredential.status == CredentialStatus.ACTIVE, OAuthCredential.refresh_token_encrypted.is_not(None)
            )
        )
    return None if expires_at is None else expires_at - REFRESH_WINDOW


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
        return [DueCredential(c.id, c.user_id, c.marketplace, c.expires_at, c.version) for c in rows]
