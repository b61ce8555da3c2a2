"""Connecting an eBay or Etsy account: the authorization URL (with a single-use state bound to the user,
and PKCE S256 for Etsy), the callback that sends the browser back to the web app, the completion that
exchanges the code and stores the credential, the caller's connection status per marketplace, and
disconnecting.

The marketplace's redirect carries no crosslist token, so the callback completes nothing: whoever
presents a state there may not be the user who started it (an attacker can send a victim their own
authorization URL; the victim approves and would link their seller account to the attacker's crosslist
account). The callback only sends the browser back to the web app page the user started from (checked
against the allowed origins when the state was made: never an open redirect), with the code and the
state; the web app completes the connection with the user's token, and a state completes only for the
user who started it. The state is random (256 bits), stored only as its SHA-256, valid for ten minutes,
and used once: a forged, replayed, expired or someone else's state stores nothing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from crosslist.auth.credentials import CredentialStore, InvalidGrant, TokenSet
from crosslist.auth.oauth_clients import OAuthApp, TokenEndpointUnavailable
from crosslist.db.engine import transaction
from crosslist.db.models import CredentialStatus, MarketplaceAccount, OAuthCredential, OAuthState, SellerSettings
from crosslist.due_times import announce
from crosslist.errors import BadRequest, InvalidRequest, ServiceUnavailable
from crosslist.marketplaces import DISPLAY_NAMES

STATE_LIFETIME = timedelta(minutes=10)
# eBay's refresh token ends after 18 months: the user is asked to connect again this long before.
RECONNECT_NOTICE = timedelta(days=14)
OAUTH_MARKETPLACES: tuple[Literal["ebay", "etsy"], ...] = ("ebay", "etsy")
MAX_RETURN_URL_LENGTH = 2000
_DEFAULT_PORTS = {"http": 80, "https": 443}
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
    # Whether the marketplace pushes the account's orders to crosslist (crosslist.notifications): subscribed, failed
    # (`push_error` says why; polling goes on), off (not configured here); None: not known (not connected, or Etsy).
    push: str | None = None
    push_error: str | None = None


class Connector:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: Callable[[], CredentialStore],  # made only when a credential is stored (it needs the KMS key)
        apps: Callable[[str], OAuthApp | None],
        exchanges: Callable[[OAuthApp], CodeExchange],
        *,
        web_app_origins: Sequence[str] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_connected: Callable[[str, str], None] | None = None,
        before_disconnect: Callable[[str, str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        # Where the callback may send the browser back to (scheme://host[:port]); the first is the default.
        self._origins = tuple(origin.rstrip("/") for origin in web_app_origins)
        self._store = store
        self._apps = apps
        self._exchanges = exchanges
        self._clock = clock
        # Told (user, marketplace) once a credential is stored: the jobs that waited for it go on.
        self._on_connected = on_connected
        # Told (user, marketplace) before a connected account's credential is forgotten: what the marketplace keeps
        # for it (eBay's orders subscription) is removed while its token still works.
        self._before_disconnect = before_disconnect

    def authorization_url(self, user_id: str, marketplace: str, return_to: str | None = None) -> str:
        """Where to send the user to authorize crosslist; the marketplace then sends them to the callback,
        which sends them back to `return_to` (a page of the web app; by default its first origin)."""
        app = self._app(marketplace)
        back_to = self._return_url(return_to)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64) if marketplace == "etsy" else None  # Etsy requires PKCE
        with transaction(self._sessions) as session:
            session.add(
                OAuthState(
                    state_hash=_hash(state),
                    user_id=user_id,
                    marketplace=marketplace,
                    code_verifier=verifier,
                    return_to=back_to,
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

    def returning(self, marketplace: str, state: str, code: str | None, error: str | None) -> str:
        """The marketplace sent the browser to the callback: where to send it on (the web app page the user
        started from, with `marketplace`, `state` and the `code` or the marketplace's `error`). Nothing is
        stored: only the user who started the authorization can complete it (`complete`)."""
        with transaction(self._sessions) as session:
            started = session.scalar(
                select(OAuthState).where(
                    OAuthState.state_hash == _hash(state),
                    OAuthState.marketplace == marketplace,
                    OAuthState.used_at.is_(None),
                    OAuthState.expires_at > self._clock(),
                )
            )
        if started is None or started.return_to is None:
            if not self._origins:
                raise _invalid_state()
            # Sent to the web app all the same, to say so: it was started elsewhere, or long ago.
            return _with_query(self._origins[0] + "/", {"marketplace": marketplace, "error": "invalid_state"})
        outcome = {"code": code} if code is not None and error is None else {"error": error or "no_code"}
        return _with_query(started.return_to, {"marketplace": marketplace, "state": state, **outcome})

    def complete(self, user_id: str, marketplace: str, code: str, state: str) -> None:
        """The user, back in the web app, completes the authorization they started: use the state (once,
        only theirs), exchange the code, store the credential. BadRequest (400) when the state is not the
        caller's, unknown, used or expired (`invalid_state`) or the marketplace refuses the code
        (`authorization_failed`); ServiceUnavailable when the marketplace cannot be reached."""
        app = self._app(marketplace)
        with transaction(self._sessions) as session:
            used = session.execute(
                update(OAuthState)
                .where(
                    OAuthState.state_hash == _hash(state),
                    OAuthState.marketplace == marketplace,
                    OAuthState.user_id == user_id,
                    OAuthState.used_at.is_(None),
                    OAuthState.expires_at > self._clock(),
                )
                .values(used_at=self._clock())
                .returning(OAuthState.code_verifier)
            ).first()
        if used is None:
            raise _invalid_state()
        name = DISPLAY_NAMES[marketplace]
        try:
            tokens = self._exchanges(app).exchange(code, used.code_verifier)
        except InvalidGrant as refused:
            raise BadRequest(
                f"{name} refused the authorization code ({str(refused)[:200]}): connect the account again",
                code="authorization_failed",
            ) from None
        except TokenEndpointUnavailable as unavailable:
            raise ServiceUnavailable(
                f"{name} could not be reached to finish connecting ({unavailable}): connect the account again",
                code="marketplace_unavailable",
            ) from None
        self._store().save(user_id, marketplace, tokens)
        if self._on_connected is not None:
            self._on_connected(user_id, marketplace)

    def connections(self, user_id: str) -> list[MarketplaceConnection]:
        with transaction(self._sessions) as session:
            credentials = {
                c.marketplace: c
                for c in session.scalars(select(OAuthCredential).where(OAuthCredential.user_id == user_id))
            }
            accounts = {
                a.marketplace: a
                for a in session.scalars(select(MarketplaceAccount).where(MarketplaceAccount.user_id == user_id))
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
                        push=accounts[marketplace].push_status if marketplace in accounts else None,
                        push_error=accounts[marketplace].push_error if marketplace in accounts else None,
                    )
                )
        return found

    def disconnect(self, user_id: str, marketplace: str) -> bool:
        """Forget the account: its credential and its seller settings (a shop or policies of an account
        crosslist no longer reaches must not be used by a later connection of another one), and who it was."""
        if self._before_disconnect is not None:
            self._before_disconnect(user_id, marketplace)
        with transaction(self._sessions) as session:
            deleted = session.execute(
                delete(OAuthCredential)
                .where(OAuthCredential.user_id == user_id, OAuthCredential.marketplace == marketplace)
                .returning(OAuthCredential.id)
            ).first()
            session.execute(
                delete(SellerSettings).where(
                    SellerSettings.user_id == user_id, SellerSettings.marketplace == marketplace
                )
            )
            session.execute(
                delete(MarketplaceAccount).where(
                    MarketplaceAccount.user_id == user_id, MarketplaceAccount.marketplace == marketplace
                )
            )
            if deleted is not None:  # its sync rules record that they wait for a connection
                announce(session, "sync_rules")
        return deleted is not None

    def _return_url(self, return_to: str | None) -> str:
        """`return_to` when it is a page of an allowed web app origin, else InvalidRequest."""
        if not self._origins:
            raise ServiceUnavailable(
                "crosslist is not configured with the web app's origin (the WebAppOrigins parameter)",
                code="not_configured",
            )
        if return_to is None:
            return self._origins[0] + "/"
        refusal = InvalidRequest(
            f"return_to must be a page of {', '.join(self._origins)} (no user name, no fragment)",
            code="return_to_not_allowed",
        )
        # Browsers read a backslash as a slash and drop tabs and newlines: such a URL may not go where it reads.
        if len(return_to) > MAX_RETURN_URL_LENGTH or any(
            c == "\\" or c.isspace() or not c.isprintable() for c in return_to
        ):
            raise refusal
        try:
            parts = urlsplit(return_to)
            origin = _origin(parts.scheme, parts.hostname, parts.port)
        except ValueError:
            raise refusal from None
        allowed = {_origin(*_origin_parts(o)) for o in self._origins}
        if origin is None or origin not in allowed or parts.username is not None or parts.fragment:
            raise refusal
        return return_to

    def _app(self, marketplace: str) -> OAuthApp:
        app = self._apps(marketplace) if marketplace in OAUTH_MARKETPLACES else None
        if app is None:
            raise InvalidRequest(f"{marketplace} accounts cannot be connected here", code="marketplace_not_available")
        return app


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _invalid_state() -> BadRequest:
    return BadRequest(
        "this authorization is unknown, already used, expired or was started by another crosslist account:"
        " connect the account again",
        code="invalid_state",
    )


def _origin(scheme: str, host: str | None, port: int | None) -> str | None:
    """scheme://host:port with the default port spelled out, lower case; None when it is not http(s)."""
    if scheme.lower() not in _DEFAULT_PORTS or not host:
        return None
    return f"{scheme.lower()}://{host.lower()}:{port or _DEFAULT_PORTS[scheme.lower()]}"


def _origin_parts(origin: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(origin)
    return parts.scheme, parts.hostname, parts.port


def _with_query(url: str, values: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in values]
    return urlunsplit(parts._replace(query=urlencode([*query, *values.items()])))
