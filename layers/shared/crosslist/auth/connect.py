"""Connecting an eBay or Etsy account: the authorization URL (with a single-use state bound to the user,
and PKCE S256 for Etsy), the callback that exchanges the code and stores the credential, the caller's
connection status per marketplace, and disconnecting.

The state is the only thing tying the callback to a user (the marketplace's redirect carries no crosslist
token), so it is random (256 bits), stored only as its SHA-256, valid for ten minutes, and used once: a
forged, replayed or expired state stores nothing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import urlencode

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from crosslist.auth.credentials import CredentialStore, TokenSet
from crosslist.auth.oauth_clients import OAuthApp
from crosslist.db.engine import transaction
from crosslist.db.models import CredentialStatus, OAuthCredential, OAuthState
from crosslist.errors import BadRequest, InvalidRequest

STATE_LIFETIME = timedelta(minutes=10)
# eBay's refresh token ends after 18 months: the user is asked to connect again this long before.
RECONNECT_NOTICE = timedelta(days=14)
OAUTH_MARKETPLACES: tuple[Literal["ebay", "etsy"], ...] = ("ebay", "etsy")
ConnectionState = Literal["connected", "reauth_required", "not_connected"]


class CodeExchange(Protocol):
    def exchange(self, code: str, code_verifier: str | None) -> TokenSet: ...


@dataclass(frozen=True)
class MarketplaceConnection:
    marketplace: str
    status: ConnectionState
    expires_at: datetime | None = None  # the access token's; it is refreshed before then
    # When the refresh token itself ends (eBay: 18 months): the user must connect again before then.
    refresh_expires_at: datetime | None = None
    reconnect_soon: bool = False  # it ends within RECONNECT_NOTICE


class Connector:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: Callable[[], CredentialStore],  # made only when a credential is stored (it needs the KMS key)
        apps: Callable[[str], OAuthApp | None],
        exchanges: Callable[[OAuthApp], CodeExchange],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_connected: Callable[[str, str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._apps = apps
        self._exchanges = exchanges
        self._clock = clock
        # Told (user, marketplace) once a credential is stored: the jobs that waited for it go on.
        self._on_connected = on_connected

    def authorization_url(self, user_id: str, marketplace: str) -> str:
        app = self._app(marketplace)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64) if marketplace == "etsy" else None  # Etsy requires PKCE
        with transaction(self._sessions) as session:
            session.add(
                OAuthState(
                    state_hash=_hash(state),
                    user_id=user_id,
                    marketplace=marketplace,
                    code_verifier=verifier,
                    expires_at=self._clock() + STATE_LIFETIME,
                )
            )
        query = {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uri,
            "scope": app.scopes,
            "state": state,
        }
        if verifier is not None:
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
        return f"{app.authorize_url}?{urlencode(query)}"

    def complete(self, marketplace: str, code: str, state: str) -> str:
        """The marketplace sent the user back: use the state (once), exchange the code, store the
        credential. Returns the user it was for; InvalidRequest (400, `invalid_state`) otherwise."""
        app = self._app(marketplace)
        with transaction(self._sessions) as session:
            used = session.execute(
                update(OAuthState)
                .where(
                    OAuthState.state_hash == _hash(state),
                    OAuthState.marketplace == marketplace,
                    OAuthState.used_at.is_(None),
                    OAuthState.expires_at > self._clock(),
                )
                .values(used_at=self._clock())
                .returning(OAuthState.user_id, OAuthState.code_verifier)
            ).first()
        if used is None:
            raise BadRequest(
                "this authorization is unknown, already used or expired: connect the account again",
                code="invalid_state",
            )
        user_id, verifier = used
        tokens = self._exchanges(app).exchange(code, verifier)
        self._store().save(user_id, marketplace, tokens)
        if self._on_connected is not None:
            self._on_connected(str(user_id), marketplace)
        return str(user_id)

    def connections(self, user_id: str) -> list[MarketplaceConnection]:
        with transaction(self._sessions) as session:
            credentials = {
                c.marketplace: c
                for c in session.scalars(select(OAuthCredential).where(OAuthCredential.user_id == user_id))
            }
        found = []
        for marketplace in OAUTH_MARKETPLACES:
            credential = credentials.get(marketplace)
            if credential is None:
                found.append(MarketplaceConnection(marketplace, "not_connected"))
            elif credential.status is CredentialStatus.NEEDS_REAUTH:
                found.append(MarketplaceConnection(marketplace, "reauth_required"))
            else:
                refresh_ends = credential.refresh_expires_at
                found.append(
                    MarketplaceConnection(
                        marketplace,
                        "connected",
                        credential.expires_at,
                        refresh_expires_at=refresh_ends,
                        reconnect_soon=refresh_ends is not None and refresh_ends < self._clock() + RECONNECT_NOTICE,
                    )
                )
        return found

    def disconnect(self, user_id: str, marketplace: str) -> bool:
        with transaction(self._sessions) as session:
            deleted = session.execute(
                delete(OAuthCredential)
                .where(OAuthCredential.user_id == user_id, OAuthCredential.marketplace == marketplace)
                .returning(OAuthCredential.id)
            ).first()
        return deleted is not None

    def _app(self, marketplace: str) -> OAuthApp:
        app = self._apps(marketplace) if marketplace in OAUTH_MARKETPLACES else None
        if app is None:
            raise InvalidRequest(f"{marketplace} accounts cannot be connected here", code="marketplace_not_available")
        return app


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()
