"""What the fake marketplaces (devstack.fake_ebay, devstack.fake_etsy) share: a threaded HTTP server on
loopback, a route table, the calls they answered, injected faults and latency, and an OAuth token book.

A fake holds its state under one lock and answers each request under it (latency is waited outside it, so
slow requests still overlap); tests, the devstack and the bench drive the same fakes over real HTTP.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

logger = logging.getLogger("devstack")

Clock = Callable[[], datetime]
# Request headers worth seeing in a recorded call: never Authorization or x-api-key.
RECORDED_HEADERS = ("content-type", "content-language", "accept-language", "x-ebay-c-marketplace-id")
# Form fields a recorded call shows masked: they are credentials.
SECRET_FIELDS = frozenset({"code", "code_verifier", "refresh_token", "client_secret", "access_token"})
_ACCOUNT = "fake.account"  # where a handler notes whose token a request carried (request.environ)
# The devstack's control route on each fake (what a buyer does on the marketplace's site), outside every
# path of the marketplace's API: `crosslist dev sell` posts {"listing_id", "quantity"?, "buyer"?} to it.
SELL_PATH = "/__fake/sell"
# The devstack's control route for `crosslist dev seed-shops` (devstack.shops): the seller's whole shop is seeded.
SEED_SHOP_PATH = "/__fake/seed-shop"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Call:
    """One request a fake answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]  # RECORDED_HEADERS only, lower-case names
    body: Any  # the JSON or form fields sent (credentials masked, files as their size); None when empty
    account: str | None  # whose access token it carried, when valid
    started_at: float  # time.monotonic()
    finished_at: float
    injected: bool  # answered by a fault from fail(), not by the fake's logic


@dataclass
class Fault:
    """A failure fail() injected: answers `status` to requests whose path matches, `remaining` times."""

    pattern: re.Pattern[str]
    status: int
    remaining: int | None  # None: until reset()
    method: str | None
    retry_after: float | None
    body: Any
    after_landing: bool = False  # the request is carried out first: a write that landed, its reply lost

    def matches(self, method: str, path: str) -> bool:
        return (self.remaining is None or self.remaining > 0) and (
            (self.method is None or self.method == method) and self.pattern.search(path) is not None
        )


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON; bytes: sent as they are (with their Content-Type header); None: no body
    headers: dict[str, str] = field(default_factory=dict)


class Refusal(Exception):
    """Raised by a handler (or what it calls) to answer an error at once."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.status}: {reply.body}")
        self.reply = reply


Handler = Callable[..., Reply]  # (request, **path parameters)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def route(method: str, path: str, handler: Handler) -> Route:
    """`path` with `{name}` parameters (one path segment each)."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(regex), handler)


def note_account(request: Request, account: str) -> None:
    """Record whose token the request carried (shown in its Call)."""
    request.environ[_ACCOUNT] = account


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def redirect(target: str, **params: str | None) -> Reply:
    """A 302 to `target` with `params` (those not None) added to its query."""
    query = urlencode({name: value for name, value in params.items() if value is not None})
    return Reply(302, None, {"Location": f"{target}{'&' if '?' in target else '?'}{query}"})


def oauth_error(error: str, description: str, status: int = 400) -> Reply:
    """An OAuth 2.0 token endpoint error (RFC 6749 5.2), as eBay's and Etsy's are."""
    return Reply(status, {"error": error, "error_description": description})


def json_body(request: Request) -> Any:
    """The request's JSON body; None when there is none or it is not JSON."""
    return request.get_json(silent=True, force=True) if request.get_data(cache=True) else None


@dataclass(frozen=True)
class SaleRequest:
    """What POST SELL_PATH asks: a buyer buys `quantity` of the listing."""

    listing_id: str
    quantity: int
    buyer: str


def sale_request(request: Request) -> SaleRequest:
    """The sale a POST to SELL_PATH asks for; a 400 Refusal, saying what is wrong, when it is not one."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise Refusal(Reply(400, {"message": 'send {"listing_id": "...", "quantity": 1, "buyer": "..."} as JSON'}))
    listing_id, quantity, buyer = body.get("listing_id"), body.get("quantity", 1), body.get("buyer", "buyer1")
    digits = isinstance(listing_id, str | int) and not isinstance(listing_id, bool) and str(listing_id).isascii()
    if not (digits and str(listing_id).isdigit()):
        raise Refusal(Reply(400, {"message": f"listing_id must be the listing's id (digits), not {listing_id!r}"}))
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise Refusal(Reply(400, {"message": f"quantity must be a whole number of at least 1, not {quantity!r}"}))
    if not isinstance(buyer, str) or not buyer.strip():
        raise Refusal(Reply(400, {"message": "buyer must be a name"}))
    return SaleRequest(str(listing_id), quantity, buyer.strip())


# Push notifications ---------------------------------------------------------------------------------------


@dataclass
class Push:
    """A notification a fake pushed to an endpoint (as eBay and Etsy do), with what became of it. Its headers and
    body are exactly what was sent: a test replays or alters them."""

    url: str
    topic: str
    headers: dict[str, str]
    body: bytes
    attempts: int = 0
    status: int | None = None  # the last attempt's answer; None: none came
    delivered: bool = False  # a 2xx came
    done: threading.Event = field(default_factory=threading.Event, repr=False)


class PushSender:
    """Delivers a fake's notifications, each in a thread of its own: never under the fake's lock, so an endpoint
    that calls the fake back (crosslist's import reading the order) never waits for it. A failed attempt (no
    answer, or not a 2xx) is logged and tried again after each of `retry_seconds`, as the marketplaces retry."""

    def __init__(self, retry_seconds: tuple[float, ...] = (1.0, 3.0), timeout_seconds: float = 10.0) -> None:
        self.retry_seconds = retry_seconds
        self.timeout_seconds = timeout_seconds
        self.pushes: list[Push] = []
        self._lock = threading.Lock()
        self._client: Any = None  # one httpx client for every push (made on the first)

    def send(self, url: str, topic: str, headers: dict[str, str], body: bytes) -> Push:
        push = Push(url, topic, {"Content-Type": "application/json", **headers}, body)
        with self._lock:
            self.pushes.append(push)
        threading.Thread(target=self._deliver, args=(push,), name="fake-push", daemon=True).start()
        return push

    def wait(self, timeout: float = 15.0) -> list[Push]:
        """Every push so far, once each has been delivered or given up (or `timeout` seconds have passed)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pushes = list(self.pushes)
        for push in pushes:
            push.done.wait(max(0.0, deadline - time.monotonic()))
        return pushes

    def clear(self) -> None:
        with self._lock:
            self.pushes.clear()

    def client(self) -> Any:
        """The httpx client pushes are sent with (also the fakes' other calls out, e.g. eBay's challenge)."""
        import httpx  # only where a fake calls out (the bench's fakes never do)

        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout_seconds)
            return self._client

    def _deliver(self, push: Push) -> None:
        import httpx

        client = self.client()
        try:
            for wait in (0.0, *self.retry_seconds):
                time.sleep(wait)
                push.attempts += 1
                try:
                    answer = client.post(push.url, content=push.body, headers=push.headers)
                except httpx.HTTPError as error:
                    push.status = None
                    logger.warning("push %s to %s: no answer (%s)", push.topic, push.url, type(error).__name__)
                    continue
                push.status = answer.status_code
                if answer.is_success:
                    push.delivered = True
                    return
                logger.warning("push %s to %s answered %d", push.topic, push.url, answer.status_code)
            logger.warning("push %s to %s given up after %d attempts", push.topic, push.url, push.attempts)
        finally:
            push.done.set()


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request: the fakes record their calls instead."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class FakeServer:
    """A marketplace fake served over HTTP. Subclasses give their routes, error shape and state."""

    token_path = ""  # the OAuth token endpoint: its grants are counted, refresh grants delayed
    _tokens: TokenBook  # the fake's OAuth tokens, made by forget_state

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._routes = self.routes()
        self._faults: list[Fault] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._refreshes_in_flight = 0
        self.base_url = ""
        self.calls: list[Call] = []
        self.latency_seconds = 0.0  # waited before answering any request
        self.refresh_delay_seconds = 0.0  # waited before answering a refresh grant (on top of the latency)
        self.token_calls: Counter[str] = Counter()  # token endpoint requests by grant_type, answered or not
        self.push = PushSender()  # the notifications it pushes (eBay's, Etsy's webhooks)
        self.peak_concurrent_refreshes = 0  # the most refresh grants ever in flight at once

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token handed out since the last reset, retired ones too."""
        with self._lock:
            return list(self._tokens.issued)

    # what a fake defines ----------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def error_body(self, path: str, status: int, message: str) -> Any:
        """The marketplace's error shape for `status` at `path` (faults, unknown routes, bugs)."""
        raise NotImplementedError

    def forget_state(self) -> None:
        """Drop accounts, tokens and resources (reset() holds the lock)."""
        raise NotImplementedError

    def admit(self, request: Request) -> Reply | None:
        """A reply that answers the request before any fault or handler (e.g. a rate limit); None: go on."""
        return None

    def finish(self, request: Request, reply: Reply) -> Reply:
        """The reply as sent: a fake may add headers every answer carries."""
        return reply

    def sell(self, listing_id: str, quantity: int = 1, buyer: str = "buyer1") -> str:
        """A buyer buys `quantity` of the listing, as on the site; the order's id. ValueError when it cannot be
        sold (sold out, ended)."""
        raise NotImplementedError

    def listing_status(self, listing_id: str) -> str | None:
        """The listing's state as the marketplace says it; None when the fake has no such listing."""
        raise NotImplementedError

    def _sell_request(self, request: Request) -> Reply:
        """The devstack's `crosslist dev sell` (POST SELL_PATH): a buyer buys on the site, and the order waits
        for an import."""
        sale = sale_request(request)
        if self.listing_status(sale.listing_id) is None:
            return Reply(404, {"message": f"the fake {type(self).__name__} has no listing {sale.listing_id}"})
        try:
            order_id = self.sell(sale.listing_id, sale.quantity, sale.buyer)
        except ValueError as refused:
            return Reply(409, {"message": str(refused)})
        status = self.listing_status(sale.listing_id)
        return Reply(200, {"order_id": order_id, "listing_id": sale.listing_id, "listing_status": status})

    # control ----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all state, recorded calls, counters and injected faults, and put the knobs (delays,
        limits) back; what the constructor was given (the app's id and secret, eBay's RuNames) stays."""
        with self._lock:
            self.forget_state()
            self._faults.clear()
            self.calls.clear()
            self.token_calls.clear()
            self.peak_concurrent_refreshes = 0
            self.latency_seconds = 0.0
            self.refresh_delay_seconds = 0.0
            self.push.clear()

    def fail(
        self,
        path_pattern: str,
        status: int,
        *,
        times: int | None = 1,
        method: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
        after_landing: bool = False,
    ) -> Fault:
        """Answer `status` to the next `times` requests (None: every one until reset) whose path matches
        the regex `path_pattern` (re.search), of `method` if given. Retry-After is sent when given; the body
        defaults to the marketplace's own error shape. `after_landing`: the request is carried out first
        and only its answer is replaced, as when a gateway times out on a write that landed."""
        fault = Fault(
            re.compile(path_pattern),
            status,
            times,
            method.upper() if method else None,
            retry_after,
            body,
            after_landing,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def calls_to(self, path_pattern: str, method: str | None = None) -> list[Call]:
        """The recorded calls whose path matches the regex (re.search), of `method` if given."""
        pattern = re.compile(path_pattern)
        with self._lock:
            return [
                call
                for call in self.calls
                if pattern.search(call.path) and (method is None or call.method == method.upper())
            ]

    # serving ----------------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: any free port) in a daemon thread; returns the base URL."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already serves {self.base_url}")
        self._server = make_server(host, port, self, threaded=True, request_handler=_QuietRequestHandler)
        url_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.base_url = f"http://{url_host}:{self._server.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{type(self).__name__}-server", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        grant = self._grant_type(request)
        with self._lock:
            if grant is not None:
                self.token_calls[grant] += 1
            if grant == "refresh_token":
                self._refreshes_in_flight += 1
                self.peak_concurrent_refreshes = max(self.peak_concurrent_refreshes, self._refreshes_in_flight)
            delay = self.latency_seconds + (self.refresh_delay_seconds if grant == "refresh_token" else 0.0)
        try:
            if delay > 0:
                time.sleep(delay)
            reply, injected = self._answer(request)
        finally:
            if grant == "refresh_token":
                with self._lock:
                    self._refreshes_in_flight -= 1
        with self._lock:
            reply = self.finish(request, reply)
            self.calls.append(
                Call(
                    method=request.method,
                    path=request.path,
                    query=request.args.to_dict(),
                    status=reply.status,
                    headers={name: request.headers[name] for name in RECORDED_HEADERS if name in request.headers},
                    body=_recorded_body(request),
                    account=request.environ.get(_ACCOUNT),
                    started_at=started,
                    finished_at=time.monotonic(),
                    injected=injected,
                )
            )
        return _response(reply)(environ, start_response)

    def _answer(self, request: Request) -> tuple[Reply, bool]:
        with self._lock:
            admitted = self.admit(request)
            if admitted is not None:
                return admitted, False
            fault = next((f for f in self._faults if f.matches(request.method, request.path)), None)
            if fault is None:
                return self._dispatch(request), False
            if fault.remaining is not None:
                fault.remaining -= 1
            if fault.after_landing:
                self._dispatch(request)
            return self._fault_reply(request.path, fault), True

    def _fault_reply(self, path: str, fault: Fault) -> Reply:
        body = fault.body if fault.body is not None else self.error_body(path, fault.status, "injected failure")
        headers = {} if fault.retry_after is None else {"Retry-After": _seconds(fault.retry_after)}
        return Reply(fault.status, body, headers)

    def _dispatch(self, request: Request) -> Reply:
        allowed = []
        for candidate in self._routes:
            match = candidate.pattern.fullmatch(request.path)
            if match is None:
                continue
            if candidate.method != request.method:
                allowed.append(candidate.method)
                continue
            try:
                return candidate.handler(request, **match.groupdict())
            except Refusal as refusal:
                return refusal.reply
            except Exception:  # a bug in the fake: say so loudly, answer like the marketplace's own 500
                logger.exception("%s failed on %s %s", type(self).__name__, request.method, request.path)
                return Reply(500, self.error_body(request.path, 500, "internal error in the fake"))
        if allowed:
            return Reply(405, self.error_body(request.path, 405, "method not allowed"), {"Allow": ", ".join(allowed)})
        return Reply(404, self.error_body(request.path, 404, "resource not found"))

    def _grant_type(self, request: Request) -> str | None:
        if not self.token_path or request.method != "POST" or request.path != self.token_path:
            return None
        return request.form.get("grant_type") or ""


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _response(reply: Reply) -> Response:
    if reply.body is None:
        return Response(status=reply.status, headers=reply.headers)
    if isinstance(reply.body, bytes):
        return Response(reply.body, status=reply.status, headers=reply.headers)
    return Response(json.dumps(reply.body), status=reply.status, headers=reply.headers, mimetype="application/json")


def _recorded_body(request: Request) -> Any:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields: dict[str, Any] = {
            name: "***" if name in SECRET_FIELDS else value for name, value in request.form.items()
        }
        for name, upload in request.files.items():
            fields[name] = f"<file {upload.filename or ''}: {len(upload.read())} bytes>"
            upload.seek(0)
        return fields or None
    return json_body(request)


# OAuth ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    """What a seller agreed to: a code or token stands for one account and its scopes."""

    account: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class PendingCode:
    consent: Consent
    redirect_uri: str | None  # None: not checked at the exchange (a code from issue_code())
    code_challenge: str | None  # PKCE S256 (Etsy); None: not checked
    expires_at: float


class TokenBook:
    """Authorization codes (single use), access tokens (expire) and refresh tokens of one fake."""

    def __init__(self, clock: Clock, access_lifetime_seconds: int, code_lifetime_seconds: int = 300) -> None:
        self._clock = clock
        self.access_lifetime_seconds = access_lifetime_seconds
        self._code_lifetime = code_lifetime_seconds
        self._codes: dict[str, PendingCode] = {}
        self._access: dict[str, tuple[Consent, float]] = {}
        self._refresh: dict[str, Consent] = {}
        self.issued: list[str] = []  # every token handed out, retired ones too (tests grep logs for them)

    def clear(self) -> None:
        self._codes.clear()
        self._access.clear()
        self._refresh.clear()
        self.issued.clear()

    def new_code(self, consent: Consent, redirect_uri: str | None, code_challenge: str | None = None) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = PendingCode(consent, redirect_uri, code_challenge, self._now() + self._code_lifetime)
        return code

    def take_code(self, code: str) -> PendingCode | None:
        """The code's grant, once: a code is gone after its first exchange, good or not."""
        pending = self._codes.pop(code, None)
        return pending if pending is not None and pending.expires_at > self._now() else None

    def new_access_token(self, consent: Consent, prefix: str = "") -> str:
        token = prefix + secrets.token_urlsafe(32)
        self._access[token] = (consent, self._now() + self.access_lifetime_seconds)
        self.issued.append(token)
        return token

    def access(self, token: str | None) -> Consent | None:
        """Whose valid access token this is; None when unknown or expired."""
        found = self._access.get(token or "")
        return found[0] if found is not None and found[1] > self._now() else None

    def new_refresh_token(self, consent: Consent, prefix: str = "") -> str:
        token = prefix + secrets.token_urlsafe(32)
        self._refresh[token] = consent
        self.issued.append(token)
        return token

    def refresh(self, token: str) -> Consent | None:
        return self._refresh.get(token)

    def retire_refresh_token(self, token: str) -> None:
        self._refresh.pop(token, None)

    def expire_access_tokens(self) -> None:
        self._access = {token: (consent, 0.0) for token, (consent, _) in self._access.items()}

    def revoke_refresh_tokens(self) -> None:
        self._refresh.clear()

    def _now(self) -> float:
        return self._clock().timestamp()
