"""eBay's Notification API as the app itself (a client credentials token, never a user's): the public keys its
messages are signed with, and crosslist's destination (the endpoint eBay pushes to, with its verification token),
created once and found again afterwards.

    GET  /commerce/notification/v1/public_key/{public_key_id}  -> {"algorithm": "ECDSA", "digest": "SHA1", "key": PEM}
    GET  /commerce/notification/v1/destination                 -> {"destinations": [{destinationId, deliveryConfig}]}
    POST /commerce/notification/v1/destination                 -> 201, Location: …/destination/{destinationId}
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from crosslist.auth.oauth_clients import HttpTokenEndpoint, TokenEndpointUnavailable
from crosslist.notifications.public_keys import KeysUnavailable

NOTIFICATION = "/commerce/notification/v1"
APP_SCOPE = "https://api.ebay.com/oauth/api_scope"
TIMEOUT = httpx.Timeout(5.0, connect=3.0)  # a notification or a connection waits on these calls
TOKEN_MARGIN_SECONDS = 60.0
DESTINATION_NAME = "crosslist"


class DestinationUnavailable(Exception):
    """crosslist's destination could not be found or created at eBay; the message says why."""


class EbayAppApi:
    def __init__(
        self,
        tokens: HttpTokenEndpoint,
        api_base: str,
        client: httpx.Client,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens = tokens
        self._base = api_base.rstrip("/")
        self._client = client
        self._clock = clock
        self._token: tuple[str, float] | None = None  # the app's token, and until when it is used
        self._lock = threading.Lock()

    def public_key(self, kid: str) -> str | None:
        """The PEM of eBay's key `kid`; None when eBay does not know it; KeysUnavailable when eBay cannot say."""
        try:
            response = self._get(f"{NOTIFICATION}/public_key/{quote(kid, safe='')}")
        except (httpx.HTTPError, TokenEndpointUnavailable) as error:
            raise KeysUnavailable(f"eBay's public key could not be read: {type(error).__name__}") from None
        if response.status_code in (400, 404):
            return None
        if not response.is_success:
            raise KeysUnavailable(f"eBay answered {response.status_code} for a public key")
        body = _json(response)
        key = body.get("key")
        if not isinstance(key, str) or str(body.get("algorithm", "ECDSA")).upper() != "ECDSA":
            return None
        return key

    def destination_id(self, endpoint: str, verification_token: str) -> str:
        """crosslist's destination at eBay for `endpoint`: found among the app's, else created (eBay then checks the
        endpoint with a challenge). DestinationUnavailable when neither can be done."""
        try:
            found = self._find_destination(endpoint)
            if found is not None:
                return found
            response = self._send(
                "POST",
                f"{NOTIFICATION}/destination",
                {
                    "name": DESTINATION_NAME,
                    "status": "ENABLED",
                    "deliveryConfig": {"endpoint": endpoint, "verificationToken": verification_token},
                },
            )
            if not response.is_success:
                raise DestinationUnavailable(
                    f"eBay refused the destination ({response.status_code}): {_errors(response)}"
                )
            location = response.headers.get("location", "")
            created = location.rstrip("/").rpartition("/")[2] if location else None
            return created or self._find_destination(endpoint) or _missing()
        except (httpx.HTTPError, TokenEndpointUnavailable) as error:
            raise DestinationUnavailable(f"eBay could not be reached: {type(error).__name__}") from None

    def _find_destination(self, endpoint: str) -> str | None:
        response = self._get(f"{NOTIFICATION}/destination?limit=100")
        if not response.is_success:
            raise DestinationUnavailable(f"eBay answered {response.status_code} listing the destinations")
        for destination in _json(response).get("destinations") or []:
            if isinstance(destination, dict) and (destination.get("deliveryConfig") or {}).get("endpoint") == endpoint:
                return str(destination.get("destinationId"))
        return None

    def _get(self, path: str) -> httpx.Response:
        return self._send("GET", path, None)

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        """The call with the app's token; a 401 gets a new token and one more try."""
        response = self._call(method, path, body, self._app_token())
        if response.status_code == 401:
            response = self._call(method, path, body, self._app_token(renew=True))
        return response

    def _call(self, method: str, path: str, body: dict[str, Any] | None, token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return self._client.request(method, self._base + path, json=body, headers=headers, timeout=TIMEOUT)

    def _app_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if not renew and self._token is not None and self._token[1] > self._clock():
                return self._token[0]
            issued = self._tokens.application_token(APP_SCOPE)
            lifetime = max(0.0, (issued.expires_at.timestamp() - time.time()) - TOKEN_MARGIN_SECONDS)
            self._token = (issued.access_token, self._clock() + lifetime)
            return issued.access_token


def _missing() -> str:
    raise DestinationUnavailable("eBay created the destination but does not list it")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _errors(response: httpx.Response) -> str:
    errors = _json(response).get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("longMessage") or errors[0].get("message") or "")[:200]
    return response.text[:200]
