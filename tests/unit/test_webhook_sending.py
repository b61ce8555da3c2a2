"""One webhook POST ends by its deadline whatever the endpoint does, and goes to no address it should not."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from crosslist.webhooks.sending import post


@pytest.fixture
def trickling() -> Iterator[str]:
    """An endpoint that reads the request, then answers one byte of its head every 0.2 s, forever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                    if stop.wait(0.2):
                        break
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    listener.close()


def test_an_endpoint_answering_a_byte_at_a_time_is_cut_at_the_deadline_not_per_read(trickling: str) -> None:
    started = time.monotonic()
    attempt = post(f"{trickling}/hook", b"{}", {}, dev_origins=[trickling], timeout=1.0)
    took = time.monotonic() - started
    assert (attempt.status, attempt.error) == (None, "no answer within 1 s")
    assert took < 1.5, took  # each read would have waited its own second: the whole attempt did not


def test_addresses_off_the_public_internet_are_not_posted_to() -> None:
    for url in ("https://127.0.0.1:9/hook", "https://[::1]/hook", "https://169.254.169.254/latest", "http://x.test/"):
        attempt = post(url, b"{}", {})
        assert attempt.status is None
        assert attempt.error is not None
        assert "public" in attempt.error or "https" in attempt.error, (url, attempt)
