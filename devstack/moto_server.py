"""moto's server app in a thread, as moto's ThreadedMotoServer runs it, with an ear for SQS sends.

Lambda's event source mapping long-polls its queue and so picks up a new message within milliseconds.
The devstack's SqsTrigger short-polls (see devstack.sqs_trigger) and pauses while its queue is idle:
so that a message does not wait out that pause, the server tells a listener which queue a message was
just sent to (SendMessage and SendMessageBatch, in SQS's JSON protocol or its query protocol), once
moto has stored it, and the listener wakes that queue's triggers.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import BaseWSGIServer, make_server

logger = logging.getLogger("devstack")

SqsSendListener = Callable[[str], None]  # called with the queue's name
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_SEND_TARGETS = ("AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch")
_SEND_ACTIONS = ("SendMessage", "SendMessageBatch")
_FORM = "application/x-www-form-urlencoded"


class SqsSendWatcher:
    """WSGI middleware: passes every request on to `app` and, after a successful SQS send, calls
    `on_send` with the queue's name (the last segment of its URL), from the server's request thread."""

    def __init__(self, app: WsgiApp, on_send: SqsSendListener) -> None:
        self._app = app
        self._on_send = on_send

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        queue = self._sent_to(environ)
        if queue is None:
            return self._app(environ, start_response)
        statuses: list[str] = []

        def recording_start_response(status: str, *args: Any) -> Any:
            statuses.append(status)
            return start_response(status, *args)

        # moto has stored the message once its app returns; the listener is told after the answer is
        # written, so that the woken pollers do not hold up the sender (they share this process's GIL).
        response = self._app(environ, recording_start_response)
        return _ThenAfterBody(response, lambda: self._notify(queue, statuses))

    def _notify(self, queue: str, statuses: list[str]) -> None:
        if statuses and statuses[-1].startswith("2"):
            try:
                self._on_send(queue)
            except Exception:  # a listener's failure must never fail the send
                logger.exception("waking the triggers of %s failed", queue)

    def _sent_to(self, environ: dict[str, Any]) -> str | None:
        """The queue an SQS send request is for; None for any other request (its body left unread)."""
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            if target not in _SEND_TARGETS:
                return None
            try:
                queue_url = json.loads(_body(environ) or b"{}").get("QueueUrl")
            except (ValueError, AttributeError):
                return None
        elif str(environ.get("CONTENT_TYPE", "")).startswith(_FORM):
            form = parse_qs(_body(environ).decode("utf-8", "replace"))
            if form.get("Action", [""])[0] not in _SEND_ACTIONS:
                return None
            # The query protocol may also name the queue by posting to its URL.
            queue_url = form.get("QueueUrl", [""])[0] or environ.get("PATH_INFO", "")
        else:
            return None
        name = str(queue_url or "").rstrip("/").rsplit("/", 1)[-1]
        return name or None


class _ThenAfterBody:
    """A WSGI response that runs `then` once its body has been written (or the server gave up on it)."""

    def __init__(self, response: Iterable[bytes], then: Callable[[], None]) -> None:
        self._response = response
        self._then: Callable[[], None] | None = then

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._response
        finally:
            self._run_then()

    def close(self) -> None:
        try:
            close = getattr(self._response, "close", None)
            if close is not None:
                close()
        finally:
            self._run_then()

    def _run_then(self) -> None:
        then, self._then = self._then, None
        if then is not None:
            then()


def _body(environ: dict[str, Any]) -> bytes:
    """Reads the request body and puts it back, unread, for the app behind."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        body: bytes = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked: the server has ended the stream for us
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    if length or body:
        environ["CONTENT_LENGTH"] = str(len(body))
    return body


class MotoServer:
    """ThreadedMotoServer (moto.moto_server.threaded_moto_server) with SqsSendWatcher in front; quiet."""

    def __init__(self, host: str, port: int, on_sqs_send: SqsSendListener) -> None:
        self._host = host
        self._port = port
        self._on_sqs_send = on_sqs_send
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        app = SqsSendWatcher(DomainDispatcherApplication(create_backend_app), self._on_sqs_send)
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
