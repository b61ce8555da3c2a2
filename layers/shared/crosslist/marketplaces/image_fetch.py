"""Download a product photo for a marketplace upload (eBay, Etsy) from a public https host only.

The URL was checked when the product was saved, but the answer DNS gives can change since. Every
connection resolves the host itself, refuses it if any answer is not a public address, and connects
to an address it has checked, while TLS still verifies the certificate against the host name. Only
the image uploads import this module (and httpx with it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from socket import SOCK_STREAM, getaddrinfo

import httpcore
import httpx

from crosslist.marketplaces.photos import host_may_recover
from crosslist.products.image_urls import (
    IpAddress,
    Origin,
    UnsafeImageUrl,
    check_image_origin,
    check_image_url,
    is_public_address,
)

# Larger than any photo a phone takes, small enough to hold in a Lambda's memory.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Each connect and read, and the whole body: a host that trickles bytes cannot hold a job step longer.
FETCH_TIMEOUT_SECONDS = 30.0
# Image CDNs redirect once or twice (http to https, a signed URL); more is a loop or a detour.
MAX_REDIRECTS = 3

_TRANSPORT_ERRORS = (httpx.HTTPError, httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError)


@dataclass(frozen=True)
class FetchedImage:
    content: bytes
    content_type: str


# Enough of a photo to see what it is: a probe reads this much and stops.
PROBE_BYTES = 64 * 1024


class ImageFetchFailed(Exception):
    """The image could not be downloaded (HTTP error, not a photo, too large, too slow, unreachable).

    `retryable`: the image host may serve it later (a server error, a timeout, a refused connection);
    otherwise the URL will not become a photo by waiting (404, 410, an unknown host, not a photo)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def probe_image(url: str, *, dev_origins: Sequence[str] | None = None) -> None:
    """Check that `url` serves a photo a marketplace can download (its first bytes only), for the
    marketplaces that fetch photos themselves (eBay). Raises as fetch_image does."""
    fetch_image(url, dev_origins=dev_origins, max_bytes=PROBE_BYTES, whole=False)


def fetch_image(
    url: str,
    *,
    dev_origins: Sequence[str] | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
    timeout: float = FETCH_TIMEOUT_SECONDS,
    whole: bool = True,
) -> FetchedImage:
    """The image at `url`, fetched from public addresses only (its first `max_bytes` when not `whole`).

    Raises UnsafeImageUrl when the URL, a redirect or a DNS answer leads off the public internet (other
    than to `dev_origins`, by default the CROSSLIST_DEV_IMAGE_ORIGINS setting), ImageFetchFailed otherwise.
    """
    if dev_origins is None:
        from crosslist import settings

        dev_origins = settings.current().dev_image_origins
    allowed = tuple(dev_origins)
    check_image_url(url, allowed)

    def check_hop(request: httpx.Request) -> None:
        # Every request of the chain, the first one included, as httpx parsed it.
        check_image_origin(Origin.of(request.url.scheme, _host(request.url), request.url.port), allowed)

    deadline = time.monotonic() + timeout
    client = httpx.Client(
        transport=PublicAddressTransport(allowed),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        timeout=timeout,
        trust_env=False,
        event_hooks={"request": [check_hop]},
    )
    headers = {"Accept": "image/*", "Accept-Encoding": "identity"}
    try:
        with client, client.stream("GET", url, headers=headers) as reply:
            return _read_image(reply, max_bytes, deadline, whole)
    except httpx.TooManyRedirects:
        raise ImageFetchFailed(f"{url} redirects more than {MAX_REDIRECTS} times") from None
    except _TRANSPORT_ERRORS as error:
        # An unknown host stays unknown; a refused or slow connection may work later.
        unresolved = "cannot resolve" in str(error) or "has no address" in str(error)
        raise ImageFetchFailed(
            f"could not download {url}: {error or type(error).__name__}", retryable=not unresolved
        ) from error


def _read_image(reply: httpx.Response, max_bytes: int, deadline: float, whole: bool) -> FetchedImage:
    url = reply.request.url
    if reply.status_code != 200:
        raise ImageFetchFailed(
            f"{url} answered HTTP {reply.status_code}", retryable=host_may_recover(reply.status_code)
        )
    content_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type.startswith("image/") or content_type in VECTOR_TYPES:
        raise ImageFetchFailed(f"{url} is not a photo (content type {content_type or 'missing'})")
    # A compressed body could expand past max_bytes in one chunk: only identity bodies are read.
    if reply.headers.get("content-encoding", "identity").lower() != "identity":
        raise ImageFetchFailed(f"{url} sent a compressed body ({reply.headers['content-encoding']})")
    too_large = ImageFetchFailed(f"{url} is larger than {max_bytes} bytes")
    declared = reply.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    for chunk in reply.iter_raw():
        body += chunk
        if len(body) >= SNIFF_BYTES and photo_format(body) is None:
            break
        if len(body) > max_bytes:
            if not whole:
                break
            raise too_large
        if time.monotonic() > deadline:
            raise ImageFetchFailed(f"{url} took longer than the download's time limit", retryable=True)
    if photo_format(body) is None:
        raise ImageFetchFailed(f"{url} is not a photo in a format marketplaces take (JPEG, PNG, GIF, WebP, HEIC…)")
    return FetchedImage(bytes(body[:max_bytes]) if not whole else bytes(body), content_type)


# Drawings (SVG) are text that marketplaces refuse and that can carry scripts: never a product photo.
VECTOR_TYPES = frozenset({"image/svg+xml", "image/svg"})
SNIFF_BYTES = 12
# ISO base media files (HEIC, AVIF): "ftyp" at byte 4, then the brand.
_FTYP_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


def photo_format(head: bytes | bytearray) -> str | None:
    """The raster format the first bytes of a file announce, None for anything else (SVG, HTML, text)."""
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return "heif"
    return None


def _host(url: httpx.URL) -> str:
    return url.raw_host.decode("ascii")


def vetted_addresses(host: str, port: int, *, private_allowed: bool = False) -> list[IpAddress]:
    """The addresses `host` resolves to; UnsafeImageUrl if any is not public (unless `private_allowed`)."""
    try:
        answers = getaddrinfo(host, port, type=SOCK_STREAM)
    except OSError as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
    addresses: list[IpAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ip_address(str(sockaddr[0]).split("%")[0])
        if not private_allowed and not is_public_address(address):
            raise UnsafeImageUrl(f"{host} resolves to {address}, which is not a public internet address")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"{host} has no address")
    return addresses


class PublicAddressBackend(httpcore.NetworkBackend):
    """Opens TCP connections to checked addresses only; httpcore then runs TLS with the URL's host name."""

    def __init__(self, dev_origins: Iterable[str]) -> None:
        self._sockets = httpcore.SyncBackend()
        self._dev_hosts = {(origin.host, origin.port) for origin in map(Origin.parse, dev_origins)}

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        private_allowed = (host.lower().rstrip("."), port) in self._dev_hosts
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in vetted_addresses(host, port, private_allowed=private_allowed):
            try:
                return self._sockets.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise UnsafeImageUrl("only TCP connections are made")

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class PublicAddressTransport(httpx.BaseTransport):
    """httpx's HTTPTransport, on a connection pool whose connections go through PublicAddressBackend (or
    `network_backend`, one that wraps it: the webhooks' bounds each delivery's time)."""

    def __init__(self, dev_origins: Iterable[str], network_backend: httpcore.NetworkBackend | None = None) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=network_backend or PublicAddressBackend(dev_origins),
            retries=0,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.iter_stream()

    def close(self) -> None:
        self._response.close()
