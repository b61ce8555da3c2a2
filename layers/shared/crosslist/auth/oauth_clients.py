"""The marketplaces' OAuth token endpoints (refresh grant), over httpx: eBay authenticates the app
with HTTP Basic, Etsy with its client id in the form. A refused refresh token is InvalidGrant (the
user must connect again); a busy or failing endpoint is TokenEndpointUnavailable (try again later)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from crosslist.auth.credentials import InvalidGrant, TokenSet

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class TokenEndpointUnavailable(Exception):
    """The token endpoint did not answer usefully (429, 5xx, a network error): nothing changed."""


@dataclass(frozen=True)
class OAuthApp:
    """The app's registration with a marketplace (from Secrets Manager, never from code)."""

    marketplace: Literal["ebay", "etsy"]
    client_id: str
    client_secret: str
    token_url: str
    scopes: str = ""
    # Where the user authorizes the app, and where the marketplace sends them back (eBay: the RuName).
    authorize_url: str = ""
    redirect_uri: str = ""


class HttpTokenEndpoint:
    def __init__(
        self, app: OAuthApp, client: httpx.Client, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._app = app
        self._client = client
        self._clock = clock

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def exchange(self, code: str, code_verifier: str | None) -> TokenSet:
        """The authorization code grant, at the end of connecting an account."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self._app.redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        return self._token(form)

    def application_token(self, scope: str) -> TokenSet:
        """The client credentials grant: a token of the app itself, no user's (eBay's Notification API: its public
        keys and destinations). TokenEndpointUnavailable when it is not given."""
        try:
            return self._token({"grant_type": "client_credentials", "scope": scope})
        except InvalidGrant as refused:  # the app's own credentials refused: nothing a retry changes soon
            raise TokenEndpointUnavailable(f"{self._app.marketplace} refused the app's credentials") from refused

    def _token(self, form: dict[str, str]) -> TokenSet:
        headers: dict[str, str] = {}
        if self._app.marketplace == "ebay":
            pair = f"{self._app.client_id}:{self._app.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            if self._app.scopes and form["grant_type"] == "refresh_token":
                form["scope"] = self._app.scopes
        else:
            form["client_id"] = self._app.client_id
        try:
            response = self._client.post(self._app.token_url, data=form, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise TokenEndpointUnavailable(f"{self._app.marketplace} token endpoint: {type(error).__name__}") from error
        body = _json(response)
        if response.status_code in (400, 401) and body.get("error") == "invalid_grant":
            raise InvalidGrant(str(body.get("error_description") or "invalid_grant"))
        if not response.is_success or "access_token" not in body:
            raise TokenEndpointUnavailable(f"{self._app.marketplace} token endpoint answered {response.status_code}")
        now = self._clock()
        refresh_expires = body.get("refresh_token_expires_in")
        return TokenSet(
            access_token=str(body["access_token"]),
            expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
            refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
            refresh_expires_at=now + timedelta(seconds=int(refresh_expires)) if refresh_expires else None,
            scopes=str(body.get("scope", self._app.scopes)),
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
