"""Image downloads reach public addresses only, whatever DNS answers and wherever redirects lead.

Real HTTP(S) servers on 127.0.0.1; names that must resolve elsewhere get a fake DNS answer, and a
tripwire fails the test before any connection to an address other than loopback is attempted.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from crosslist.marketplaces import image_fetch
from crosslist.marketplaces.image_fetch import ImageFetchFailed, fetch_image, photo_format, probe_image
from crosslist.products.image_urls import UnsafeImageUrl
from tests.support.authority import CertificateAuthority

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@dataclass
class ImageServer:
    origin: str
    port: int
    paths: list[str] = field(default_factory=list)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that stops reading a large image breaks the pipe: expected


def serve(tls: ssl.SSLContext | None = None) -> tuple[ImageServer, Callable[[], None]]:
    class Images(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.paths.append(self.path)
            route, _, argument = self.path.partition("?to=")
            if route == "/photo.png":
                self._reply(200, "image/png", PNG)
            elif route == "/page.html":
                self._reply(200, "text/html", b"<html></html>")
            elif route == "/huge.png":  # no Content-Length: only reading tells the size
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(PNG)
                for _ in range(64):
                    self.wfile.write(b"\0" * 65536)
            elif route == "/drawing.svg":
                self._reply(200, "image/svg+xml", SVG)
            elif route == "/disguised.png":  # an SVG that says it is a PNG
                self._reply(200, "image/png", SVG)
            elif route == "/busy.png":
                self._reply(503, "text/plain", b"try later")
            elif route == "/gone.png":
                self._reply(410, "text/plain", b"gone")
            elif route == "/redirect":
                self.send_response(302)
                self.send_header("Location", argument)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif route.startswith("/loop/"):
                self.send_response(302)
                self.send_header("Location", f"/loop/{int(route.rsplit('/', 1)[1]) + 1}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._reply(404, "text/plain", b"not found")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = QuietServer(("127.0.0.1", 0), Images)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    served = ImageServer(f"{'https' if tls else 'http'}://127.0.0.1:{port}", port)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return served, stop


@pytest.fixture
def images() -> Iterator[ImageServer]:
    served, stop = serve()
    yield served
    stop()


@pytest.fixture
def elsewhere() -> Iterator[ImageServer]:
    """A second loopback server that no allowed origin names."""
    served, stop = serve()
    yield served
    stop()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = httpcore.SyncBackend.connect_tcp

    def connect_tcp(self: httpcore.SyncBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if not ipaddress.ip_address(host).is_loopback:
            pytest.fail(f"the test tried to connect to {host}")
        return real_connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)


def resolve_as(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        addresses = names.get(host) or [str(ipaddress.ip_address(host))]  # IP literals resolve to themselves
        return [(None, None, 0, "", (address, port)) for address in addresses]

    monkeypatch.setattr(image_fetch, "getaddrinfo", getaddrinfo)


def test_an_allowed_development_origin_is_fetched(images: ImageServer) -> None:
    fetched = fetch_image(f"{images.origin}/photo.png", dev_origins=[images.origin])
    assert (fetched.content, fetched.content_type) == (PNG, "image/png")


def test_loopback_is_refused_unless_it_is_a_development_origin(images: ImageServer) -> None:
    with pytest.raises(UnsafeImageUrl):
        fetch_image(f"{images.origin}/photo.png", dev_origins=[])
    assert images.paths == []


def test_a_public_name_resolving_to_loopback_is_refused_before_connecting(
    images: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"images.example.com": ["127.0.0.1"]})
    with pytest.raises(UnsafeImageUrl, match=r"resolves to 127\.0\.0\.1"):
        fetch_image(f"https://images.example.com:{images.port}/photo.png", dev_origins=[])
    assert images.paths == []


@pytest.mark.parametrize(
    "answers", [["10.0.0.5"], ["169.254.169.254"], ["fd00::5"], ["93.184.215.14", "10.0.0.5"], ["::ffff:10.0.0.5"]]
)
def test_a_name_resolving_to_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, answers: list[str]
) -> None:
    resolve_as(monkeypatch, {"images.example.com": answers})
    with pytest.raises(UnsafeImageUrl, match="not a public"):
        fetch_image("https://images.example.com/photo.jpg", dev_origins=[])


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "https"),
        ("https://169.254.169.254/latest/meta-data/", "not a public"),
        ("https://2852039166/latest/meta-data/", "not a public"),
        ("https://[::ffff:a9fe:a9fe]/latest/meta-data/", "not a public"),
        ("https://metadata.google.internal/computeMetadata/v1/", "not a public"),
        ("http://images.example.com/photo.png", "https"),
    ],
)
def test_a_redirect_off_https_or_to_the_metadata_service_is_refused(
    images: ImageServer, monkeypatch: pytest.MonkeyPatch, target: str, reason: str
) -> None:
    resolve_as(monkeypatch, {"images.example.com": ["93.184.215.14"]})
    with pytest.raises(UnsafeImageUrl, match=reason):
        fetch_image(f"{images.origin}/redirect?to={target}", dev_origins=[images.origin])
    assert images.paths == [f"/redirect?to={target}"]


def test_a_redirect_from_a_development_origin_to_another_loopback_port_is_refused(
    images: ImageServer, elsewhere: ImageServer
) -> None:
    with pytest.raises(UnsafeImageUrl):
        fetch_image(f"{images.origin}/redirect?to={elsewhere.origin}/photo.png", dev_origins=[images.origin])
    assert elsewhere.paths == []


def test_redirects_within_allowed_origins_are_followed_up_to_three(images: ImageServer) -> None:
    fetched = fetch_image(f"{images.origin}/redirect?to=/photo.png", dev_origins=[images.origin])
    assert fetched.content == PNG
    with pytest.raises(ImageFetchFailed, match="redirects more than 3 times"):
        fetch_image(f"{images.origin}/loop/0", dev_origins=[images.origin])
    assert images.paths[-1] == "/loop/3"


def test_what_is_not_an_image_or_too_large_is_not_downloaded(images: ImageServer) -> None:
    allowed = [images.origin]
    with pytest.raises(ImageFetchFailed, match="not a photo"):
        fetch_image(f"{images.origin}/page.html", dev_origins=allowed)
    with pytest.raises(ImageFetchFailed, match="HTTP 404"):
        fetch_image(f"{images.origin}/missing.png", dev_origins=allowed)
    with pytest.raises(ImageFetchFailed, match="larger than 1000000 bytes"):
        fetch_image(f"{images.origin}/huge.png", dev_origins=allowed, max_bytes=1_000_000)
    with pytest.raises(ImageFetchFailed, match=f"larger than {len(PNG) - 1} bytes"):
        fetch_image(f"{images.origin}/photo.png", dev_origins=allowed, max_bytes=len(PNG) - 1)


# TLS: the connection goes to the address we checked, the certificate is still checked against the name.


def server_context(authority: CertificateAuthority, hostname: str, directory: Path) -> ssl.SSLContext:
    issued = authority.issue(hostname)
    (directory / "server.pem").write_bytes(issued.certificate_pem)
    (directory / "server.key").write_bytes(issued.private_key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return context


def client_context(authority: CertificateAuthority) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=authority.pem)
    return context


@pytest.mark.parametrize(("certified_name", "verified"), [("images.test", True), ("elsewhere.test", False)])
def test_tls_is_verified_for_the_host_name_on_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, certified_name: str, verified: bool
) -> None:
    authority = CertificateAuthority.create()
    served, stop = serve(tls=server_context(authority, certified_name, tmp_path))
    try:
        monkeypatch.setattr(httpx, "create_ssl_context", lambda **_: client_context(authority))
        resolve_as(monkeypatch, {"images.test": ["127.0.0.1"]})
        origin = f"https://images.test:{served.port}"
        if verified:
            assert fetch_image(f"{origin}/photo.png", dev_origins=[origin]).content == PNG
        else:
            with pytest.raises(ImageFetchFailed, match="CERTIFICATE_VERIFY_FAILED"):
                fetch_image(f"{origin}/photo.png", dev_origins=[origin])
            assert served.paths == []
    finally:
        stop()


def test_a_drawing_is_not_a_photo_whatever_its_content_type_says(images: ImageServer) -> None:
    allowed = [images.origin]
    for path in ("/drawing.svg", "/disguised.png"):
        with pytest.raises(ImageFetchFailed, match="not a photo") as refused:
            fetch_image(f"{images.origin}{path}", dev_origins=allowed)
        assert not refused.value.retryable
        with pytest.raises(ImageFetchFailed, match="not a photo"):
            probe_image(f"{images.origin}{path}", dev_origins=allowed)


def test_what_waiting_may_fix_is_retryable_and_what_it_cannot_is_not(
    images: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = [images.origin]
    outcomes = {}
    for path in ("/busy.png", "/gone.png", "/missing.png", "/page.html"):
        with pytest.raises(ImageFetchFailed) as failed:
            fetch_image(f"{images.origin}{path}", dev_origins=allowed)
        outcomes[path] = failed.value.retryable
    assert outcomes == {"/busy.png": True, "/gone.png": False, "/missing.png": False, "/page.html": False}

    def unknown_host(host: str, *_: Any, **__: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(image_fetch, "getaddrinfo", unknown_host)
    with pytest.raises(ImageFetchFailed, match="cannot resolve") as unknown:
        fetch_image("https://no-such-host.example/photo.png", dev_origins=[])
    assert not unknown.value.retryable


def test_a_probe_reads_the_start_of_a_photo_only(images: ImageServer) -> None:
    probe_image(f"{images.origin}/huge.png", dev_origins=[images.origin])  # 4 MB: not too large to check


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (PNG, "png"),
        (b"GIF89a\x01\x00", "gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "heif"),
        (SVG, None),
        (b"<!DOCTYPE html>", None),
        (b"", None),
    ],
)
def test_the_format_is_read_from_the_first_bytes(head: bytes, expected: str | None) -> None:
    assert photo_format(head) == expected
