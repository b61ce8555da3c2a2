"""Direct calls to eBay's and Etsy's REST APIs with the user's OAuth token.

One httpx client per marketplace, with timeouts. The token is opened only here, in the function making
the call, and never logged. A 401 means the token died early (revoked, rotated elsewhere): it is
refreshed once (unless another caller already did) and the call is made once more. A credential that
needs the user to connect again is NeedsReauth for the caller (the engine parks the lane's jobs).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from crosslist.auth.credentials import CredentialStore, NeedsReauth, NotConnected, TokenEndpoint
from crosslist.auth.oauth_clients import OAuthApp, TokenEndpointUnavailable
from crosslist.marketplaces import DISPLAY_NAMES, NotAvailable, ReadFailed
from crosslist.marketplaces.photos import photo_failed
from crosslist.workflows.base import HttpCall, JsonDict, Reply

if TYPE_CHECKING:
    from crosslist.marketplaces.image_fetch import FetchedImage

MAX_ERROR_TEXT = 2000
MAX_FILE_BYTES = 50 * 1024 * 1024  # a report of a very large shop, zipped
READ_TIMEOUT_SECONDS = 10.0
TIMEOUT = httpx.Timeout(20.0, connect=5.0)  # a call's own timeout (the step's) is given per request
# Etsy's daily budget is spent (x-remaining-today: 0) and the 429 says nothing more: look again in an hour.
DAILY_BUDGET_SPENT_SECONDS = 3600.0
SECOND_BUDGET_SPENT_SECONDS = 1.0


class MarketplaceApi:
    """Performs HttpCalls for the engine (and reads for the seller settings), as the user."""

    def __init__(
        self,
        credentials: Callable[[], CredentialStore],
        apps: Callable[[str], OAuthApp | None],
        endpoints: Callable[[OAuthApp], TokenEndpoint],
        base_urls: Mapping[str, str],
        *,
        fetch_image: Callable[[str], FetchedImage] | None = None,
    ) -> None:
        self._credentials = credentials
        self._apps = apps
        self._endpoints = endpoints
        self._base_urls = base_urls
        self._fetch_image = fetch_image
        # One client (and connection pool) per marketplace: a slow eBay does not hold Etsy's connections.
        self._clients = {marketplace: httpx.Client(timeout=TIMEOUT) for marketplace in base_urls}

    def __call__(
        self, user_id: str, marketplace: str, call: HttpCall, timeout_seconds: float, *, base_url: str | None = None
    ) -> Reply:
        """The call's reply; NeedsReauth when the account must be connected again (or never was); StepFailed
        when a photo it needs cannot be downloaded (nothing was sent to the marketplace). `base_url`: an API of
        the marketplace on another host than its own (eBay's Commerce Identity API)."""
        app = self._apps(marketplace)
        if app is None:
            raise NotAvailable(f"{marketplace} is not available here (no app registered)")
        store, endpoint = self._credentials(), self._endpoints(app)
        try:
            issued = store.issue(user_id, marketplace, endpoint)
            reply = self._send(app, issued.access_token, call, timeout_seconds, base_url)
            if reply.status == 401:
                token = store.refresh(user_id, marketplace, endpoint, seen_version=issued.version)
                reply = self._send(app, token, call, timeout_seconds, base_url)
        except NotConnected as missing:
            raise NeedsReauth(user_id, marketplace) from missing
        except TokenEndpointUnavailable as busy:
            return Reply(False, None, f"{DISPLAY_NAMES[marketplace]} could not renew crosslist's access: {busy}")
        return reply

    def read(self, user_id: str, marketplace: str, path: str, *, base_url: str | None = None) -> JsonDict:
        """A GET outside any job (the seller settings' choices): its JSON object, else ReadFailed."""
        try:
            call = HttpCall("GET", path, "read", repeatable=True)
            reply = self(user_id, marketplace, call, READ_TIMEOUT_SECONDS, base_url=base_url)
        except NeedsReauth:
            name = DISPLAY_NAMES[marketplace]
            raise ReadFailed(f"connect {name} again: crosslist's access to the account has ended") from None
        if not reply.success:
            raise ReadFailed(
                f"{DISPLAY_NAMES[marketplace]} answered {reply.status or 'nothing'}: {(reply.error or '')[:200]}"
            )
        return reply.result or {}

    def _send(
        self, app: OAuthApp, token: str, call: HttpCall, timeout_seconds: float, base_url: str | None = None
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(call.headers or {})}
        if app.marketplace == "etsy":  # Etsy wants the app's keystring and shared secret on every call
            headers["x-api-key"] = f"{app.client_id}:{app.client_secret}"
        url = (base_url or self._base_urls[app.marketplace]).rstrip("/") + call.path
        files: dict[str, Any] | None = None
        data: dict[str, str] | None = None
        for photo in call.photos:
            _photo(photo, _probe_image)
        if call.upload is not None:
            image = _photo(call.upload.image_url, self._image)
            files = {call.upload.part: ("photo", image.content, image.content_type)}
            data = call.upload.form
        try:
            response = self._clients[app.marketplace].request(
                call.method, url, headers=headers, json=call.json, files=files, data=data, timeout=timeout_seconds
            )
        except httpx.HTTPError as error:
            return Reply(False, None, f"{DISPLAY_NAMES[app.marketplace]} did not answer: {type(error).__name__}")
        if call.binary and response.is_success:
            if len(response.content) > MAX_FILE_BYTES:
                too_large = f"the file is larger than {MAX_FILE_BYTES} bytes"
                return Reply(False, None, too_large, status=response.status_code)
            return Reply(True, {"content_base64": base64.b64encode(response.content).decode()}, None, status=200)
        return _reply(response)

    def _image(self, url: str) -> FetchedImage:
        if self._fetch_image is not None:
            return self._fetch_image(url)
        # Imported when a photo is handled (with httpcore's pinned transport), not with every call.
        from crosslist.marketplaces import image_fetch

        return image_fetch.fetch_image(url)


def _probe_image(url: str) -> None:
    from crosslist.marketplaces import image_fetch

    image_fetch.probe_image(url)


def _photo[Photo](url: str, download: Callable[[str], Photo]) -> Photo:
    """What `download` gets of the product photo at `url`; StepFailed naming the URL when it cannot (see
    crosslist.marketplaces.photos: an address crosslist never calls is as final as a 404)."""
    from crosslist.marketplaces.image_fetch import ImageFetchFailed
    from crosslist.products.image_urls import UnsafeImageUrl

    try:
        return download(url)
    except UnsafeImageUrl as unsafe:
        raise photo_failed(url, str(unsafe), retryable=False) from None
    except ImageFetchFailed as failed:
        raise photo_failed(url, str(failed), retryable=failed.retryable) from None


def _reply(response: httpx.Response) -> Reply:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if body is None and response.headers.get("location"):  # a task created (eBay's Feed API): where to follow it
        body = {"location": response.headers["location"]}
    ok = response.is_success
    error = None if ok else (response.text[:MAX_ERROR_TEXT] or f"HTTP {response.status_code}")
    return Reply(
        ok,
        body if isinstance(body, dict) else ({"results": body} if isinstance(body, list) else None),
        error,
        status=response.status_code,
        retry_after=_retry_after(response),
    )


def _retry_after(response: httpx.Response) -> float | None:
    """When the next call may go. A 429's Retry-After; on a success, Etsy's rate-limit headers saying the
    budget is spent (the next call would be a 429): a second when this second's is, an hour when today's is."""
    if response.is_success:
        if response.headers.get("x-remaining-today") == "0":
            return DAILY_BUDGET_SPENT_SECONDS
        return SECOND_BUDGET_SPENT_SECONDS if response.headers.get("x-remaining-this-second") == "0" else None
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    if response.status_code == 429 and response.headers.get("x-remaining-today") == "0":
        return DAILY_BUDGET_SPENT_SECONDS
    return None
