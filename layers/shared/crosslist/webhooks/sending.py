"""One POST of a webhook: to checked addresses only, never redirected, over within a fixed time.

Every connection resolves the host and refuses any answer that is not a public address (the transport of
crosslist.marketplaces.image_fetch: DNS may answer otherwise than when the URL was saved), then connects to an
address it checked while TLS still verifies the certificate against the host name. A 3xx is a failed attempt: the
Standard Webhooks advice, and a redirect is a second URL nobody checked. Connecting, sending and reading the
answer's head share one deadline (TIMEOUT_SECONDS): an endpoint that accepts and never answers, or answers one
byte at a time, costs that much per attempt and no more. The answer's body is never read.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from aws_lambda_powertools import Logger

from crosslist.marketplaces.image_fetch import PublicAddressBackend, PublicAddressTransport
from crosslist.products.image_urls import UnsafeImageUrl
from crosslist.webhooks.urls import WebhookUrlNotAllowed, webhook_origin

# Connect, send and the answer's status line and headers, together. The spec suggests 15-30 s; an endpoint
# that needs longer should answer first and work after.
TIMEOUT_SECONDS = 5.0
MAX_ERROR_LENGTH = 500

logger = Logger(child=True)


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: the status the endpoint answered (None: no answer), and why it failed."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    dev_origins: Iterable[str] = (),
    timeout: float = TIMEOUT_SECONDS,
) -> Attempt:
    """POST `body` to `url`; never raises for anything the endpoint or the network does."""
    deadline = time.monotonic() + timeout
    allowed = tuple(dev_origins)
    try:
        webhook_origin(url, allowed)  # the URL as saved may have been allowed by a setting since removed
    except WebhookUrlNotAllowed as refused:
        return _failed(None, refused.message)
    backend = _DeadlineBackend(PublicAddressBackend(allowed), deadline)
    client = httpx.Client(
        transport=PublicAddressTransport(allowed, network_backend=backend),
        follow_redirects=False,
        timeout=timeout,
        trust_env=False,
    )
    sent = {"Content-Type": "application/json", "User-Agent": "crosslist-webhooks/1", **headers}
    try:
        with client, client.stream("POST", url, content=body, headers=sent) as reply:
            status = reply.status_code
            location = reply.headers.get("location", "")
    except UnsafeImageUrl as unsafe:
        return _failed(None, f"not sent: webhooks are sent to public addresses only: {unsafe}")
    except (httpx.TimeoutException, httpcore.TimeoutException):
        return _failed(None, f"no answer within {timeout:g} s")
    except (httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError, ssl.SSLError, OSError) as error:
        return _failed(None, f"could not connect: {error or type(error).__name__}")
    except Exception as error:  # a URL httpx will not take, a bug: this attempt fails, not the batch's others
        logger.exception("a webhook POST failed unexpectedly")
        return _failed(None, f"not sent: {type(error).__name__}")
    if 200 <= status < 300:
        return Attempt(status)
    if 300 <= status < 400:
        return _failed(status, f"HTTP {status}: redirects are not followed; save the URL it redirects to {location}")
    return _failed(status, f"HTTP {status}")


def _failed(status: int | None, error: str) -> Attempt:
    return Attempt(status, error.strip()[:MAX_ERROR_LENGTH])


def _left(deadline: float, timeout: float | None, exceeded: type[Exception]) -> float:
    """The time an operation may take: its own timeout, cut to what is left before the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise exceeded("the webhook's time is up")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(
            ssl_context, server_hostname, _left(self._deadline, timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Connections of `backend` whose every operation ends by `deadline`."""

    def __init__(self, backend: httpcore.NetworkBackend, deadline: float) -> None:
        self._backend = backend
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self._deadline, timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise UnsafeImageUrl("only TCP connections are made")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
