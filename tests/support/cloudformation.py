"""CloudFormation as a custom resource's function sees it: the request it sends, and a local HTTP server standing in
for the pre-signed S3 URL the answer is PUT to."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.queues import Queue
from typing import Any

from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO

MIGRATION_FUNCTION = REPO / "functions" / "migrate"
MIGRATION_TIMEOUT_S = 300  # template.yaml's MigrationFunction Timeout


@dataclass(frozen=True)
class Answer:
    """One PUT the function made to the response URL."""

    path: str
    content_type: str | None
    body: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.body["Status"])

    @property
    def reason(self) -> str:
        return str(self.body.get("Reason", ""))

    @property
    def data(self) -> dict[str, str]:
        return dict(self.body.get("Data") or {})


class ResponseUrl:
    """Records the answers PUT to it, as S3 would store them for CloudFormation to read."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.answers: list[Answer] = []
        self._lock = threading.Lock()

    def url(self, name: str = "answer") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{name}?X-Amz-Signature=test"

    def record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def only_answer(self) -> Answer:
        assert len(self.answers) == 1, self.answers
        return self.answers[0]


@contextmanager
def response_url() -> Iterator[ResponseUrl]:
    recorder: ResponseUrl

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            recorder.record(Answer(self.path.partition("?")[0], self.headers.get("Content-Type"), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder = ResponseUrl(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


def sample_request() -> dict[str, Any]:
    return dict(json.loads((REPO / "events" / "migrate.json").read_text()))


def request(request_type: str, response: str, physical_resource_id: str | None = None) -> dict[str, Any]:
    """What CloudFormation sends for the DatabaseSchema resource: the sample event, answered at `response`."""
    event = sample_request()
    event.update(RequestType=request_type, ResponseURL=response, RequestId=str(uuid.uuid4()))
    event.pop("PhysicalResourceId", None)
    if request_type == "Create":
        event.pop("OldResourceProperties", None)
    else:
        event["PhysicalResourceId"] = physical_resource_id or "crosslist-database-schema"
    return event


def deploy_in_another_process(database_url: str, response: str, started: Queue[int]) -> None:
    """One Lambda instance running the migration for a deploy (a process of its own: alembic's context is global
    to a process). Says when it is about to run, so that a test can start two at once."""
    os.environ["DATABASE_URL"] = database_url
    handler = load_handler(MIGRATION_FUNCTION)
    started.put(os.getpid())
    handler(request("Update", response), LambdaContext("migrate", timeout_seconds=MIGRATION_TIMEOUT_S))
