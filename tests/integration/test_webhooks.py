"""Signed webhooks out (issue 19): a user's endpoint over HTTP, the events it subscribed to delivered signed to a
local HTTP server by the real deliver_webhooks handler fed from moto's queue, retried with the same webhook-id,
given up to the DLQ, never sent to a private address, and never twice for one event."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from sqlalchemy import text

from crosslist import runtime
from crosslist.db.engine import transaction
from crosslist.events import outbox
from crosslist.marketplaces import image_fetch
from crosslist.webhooks.delivery import MAX_ATTEMPTS, RETRY_SECONDS, WebhookDeliverer
from devstack.lambdas import LambdaContext, load_handler
from devstack.sqs_trigger import sqs_event
from tests.conftest import REPO
from tests.integration.conftest import Backend
from tests.integration.test_outbox import a_job, fail_in_its_lane, sweep_later

pytestmark = pytest.mark.integration

SHORT_TIMEOUT = 1.0  # an attempt's deadline in these tests (5 s in AWS)


# A local backend of the reseller app's ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server that records every request; what it answers depends on the path: /ok 200, /flaky 500 for
    the first `failures` requests then 204, /down 500 always, /redirect 302 to /ok."""

    received: list[Received] = field(default_factory=list)
    failures: int = 3
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def of(self, path: str) -> list[Received]:
        with self.lock:
            return [request for request in self.received if request.path == path]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    seen = sum(1 for request in receiver.received if request.path == self.path)
                status = {"/ok": 200, "/down": 500, "/redirect": 302}.get(self.path, 404)
                if self.path == "/flaky":
                    status = 500 if seen <= receiver.failures else 204
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "/ok")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@dataclass
class Silent:
    """Accepts connections and never answers (nor reads)."""

    listener: socket.socket = field(default_factory=socket.socket)
    held: list[socket.socket] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def start(self) -> None:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)

        def accept() -> None:
            while True:
                try:
                    connection, _ = self.listener.accept()
                except OSError:
                    return
                self.held.append(connection)

        threading.Thread(target=accept, daemon=True).start()

    def stop(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


# The stack's side ------------------------------------------------------------------------------------------------


class Webhooks:
    """The /webhooks routes as a user reaches them, and the SQS event source mapping of deliver_webhooks."""

    def __init__(self, backend: Backend, sqs: Any, provisioned: Any, receiver: Receiver) -> None:
        self.backend = backend
        self.sqs = sqs
        self.receiver = receiver
        self.queue_url = provisioned.queues["WebhookDeliveryQueue"]
        self.queue_arn = provisioned.queue_arns["WebhookDeliveryQueue"]
        self.dlq_url = provisioned.queues["WebhookDeliveryDeadLetterQueue"]
        self._handler = load_handler(REPO / "functions" / "deliver_webhooks")

    def put(self, url: str, events: list[str] | None = None, user: str = "alice", **extra: Any) -> Any:
        return self.backend.http("PUT", "/webhooks", user=user, body={"url": url, "events": events or EVENTS, **extra})

    def create(self, path: str = "/ok", user: str = "alice", events: list[str] | None = None) -> str:
        reply = self.put(f"{self.receiver.origin}{path}", events, user=user)
        assert reply.status == 201, reply.body
        return str(reply.body["secret"])

    def deliveries(self, user: str = "alice", **query: str) -> list[dict[str, Any]]:
        reply = self.backend.http("GET", "/webhooks/deliveries", user=user, query=query or None)
        assert reply.status == 200, reply.body
        return list(reply.body["items"])

    def run(self, max_batches: int = 40) -> list[dict[str, Any]]:
        """Deliver the queue's messages as Lambda's event source mapping does until none is visible; the
        handler's answers."""
        answers = []
        for _ in range(max_batches):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                break
            answer = self._handler(sqs_event(messages, self.queue_arn), LambdaContext("deliver_webhooks"))
            answers.append(answer)
            failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return answers

    def queued(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


EVENTS = ["job.completed", "job.failed", "job.cancelled"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    assert server.server is not None
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def webhooks(
    backend: Backend,
    aws: dict[str, Any],
    receiver: Receiver,
    settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> Webhooks:
    monkeypatch.setenv("CREDENTIALS_KEY_ID", boto3.client("kms").create_key()["KeyMetadata"]["KeyId"])
    # The local server is a development origin (http, loopback); waits of 0 s between attempts.
    settings(dev_webhook_origins=receiver.origin, webhook_retries=",".join("0" for _ in RETRY_SECONDS))
    return Webhooks(backend, aws["sqs"], aws["provisioned"], receiver)


def signature_of(secret: str, request: Received) -> str:
    """The signature computed here, independently of crosslist.webhooks.signing."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def stored(sql: Any, query: str, **params: Any) -> list[dict[str, Any]]:
    with sql.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(text(query), params)]


# The endpoint over HTTP ------------------------------------------------------------------------------------------


def test_the_secret_is_shown_once_kept_on_replace_and_new_only_when_rotated(webhooks: Webhooks, sql: Any) -> None:
    created = webhooks.put(f"{webhooks.receiver.origin}/ok", ["job.completed"])
    assert created.status == 201, created.body
    secret = created.body["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) >= 24
    assert created.body["events"] == ["job.completed"]

    shown = webhooks.backend.http("GET", "/webhooks")
    assert shown.status == 200
    assert "secret" not in shown.body
    assert shown.body["id"] == created.body["id"]

    replaced = webhooks.put(f"{webhooks.receiver.origin}/flaky", ["job.failed", "job.failed", "job.completed"])
    assert (replaced.status, replaced.body["secret"], replaced.body["id"]) == (200, None, created.body["id"])
    assert replaced.body["events"] == ["job.failed", "job.completed"]
    assert replaced.body["url"].endswith("/flaky")

    rotated = webhooks.put(f"{webhooks.receiver.origin}/ok", ["job.completed"], rotate_secret=True)
    assert rotated.status == 200
    assert rotated.body["secret"].startswith("whsec_")
    assert rotated.body["secret"] != secret
    # Stored sealed: neither secret is in the row.
    [row] = stored(sql, "SELECT secret_encrypted, data_key_encrypted FROM webhook_endpoints")
    assert secret.encode() not in bytes(row["secret_encrypted"])
    assert rotated.body["secret"].encode() not in bytes(row["secret_encrypted"])

    # Another user sees none of it.
    assert webhooks.backend.http("GET", "/webhooks", user="bob").status == 404


def test_delete_answers_204_then_404_and_the_test_event_needs_an_endpoint(webhooks: Webhooks) -> None:
    assert webhooks.backend.http("DELETE", "/webhooks").status == 404
    assert webhooks.backend.http("POST", "/webhooks/test").status == 404
    webhooks.create()
    webhooks.backend.http("POST", "/webhooks/test")
    deleted = webhooks.backend.http("DELETE", "/webhooks")
    assert (deleted.status, deleted.body) == (204, None)
    assert webhooks.backend.http("GET", "/webhooks").status == 404
    assert webhooks.backend.http("DELETE", "/webhooks").status == 404
    assert webhooks.deliveries() == []  # its log went with it
    # The test event still queued finds no delivery: dropped, not sent, not retried.
    assert webhooks.run() == [{"batchItemFailures": []}]
    assert webhooks.receiver.received == []


def test_unknown_or_no_event_types_are_refused(webhooks: Webhooks) -> None:
    for events in ([], ["job.exploded"], ["webhook.test"], "job.completed"):
        body = {"url": f"{webhooks.receiver.origin}/ok", "events": events}
        reply = webhooks.backend.http("PUT", "/webhooks", body=body)
        assert (reply.status, reply.body["code"]) == (422, "invalid_request"), (events, reply.body)


REFUSED_URLS = {
    "https://127.0.0.1/hook": "127.0.0.1 is not a public internet address",
    "https://10.1.2.3/hook": "10.1.2.3 is not a public internet address",
    "https://169.254.169.254/latest/meta-data/": "169.254.169.254 is not a public internet address",
    "https://localhost/hook": "localhost is not a public internet host name",
    "https://[::1]/hook": "is not a public internet address",
    "https://[::ffff:127.0.0.1]/hook": "is not a public internet address",
    "https://2130706433/hook": "is not a public internet address",
    "https://metadata.google.internal/hook": "not a public internet host name",
    "https://internal.example.test/hook": "resolves to 10.0.0.7, which is not a public internet address",
    "https://v6.example.test/hook": "resolves to fd00::7, which is not a public internet address",
    "http://hooks.example.test/hook": "must use https, not http",
    "https://user:pass@hooks.example.test/hook": "user name or password",
    "ftp://hooks.example.test/hook": "must use https",
    # A development origin's host on another port is not that origin.
    "http://127.0.0.1:1/hook": "must use https, not http",
    "not a url": "not a valid URL",
}


def test_a_url_off_the_public_internet_is_refused(webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"internal.example.test": "10.0.0.7", "v6.example.test": "fd00::7", "hooks.example.test": "93.184.216.34"}
    monkeypatch.setattr(image_fetch, "getaddrinfo", _resolver(answers))
    for url, why in REFUSED_URLS.items():
        reply = webhooks.put(url)
        assert (reply.status, reply.body["code"]) == (422, "webhook_url_not_allowed"), (url, reply.body)
        assert why in reply.body["message"], (url, reply.body)
    assert webhooks.backend.http("GET", "/webhooks").status == 404


def test_a_public_https_url_is_taken_and_an_unresolvable_one_refused(
    webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_fetch, "getaddrinfo", _resolver({"hooks.example.test": "93.184.216.34"}))
    assert webhooks.put("https://hooks.example.test/crosslist?key=1").status == 201
    refused = webhooks.put("https://nowhere.example.test/crosslist")
    assert (refused.status, refused.body["code"]) == (422, "webhook_url_unresolvable")


def _resolver(answers: dict[str, str]) -> Callable[..., list[Any]]:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    return getaddrinfo


# Events delivered, signed ----------------------------------------------------------------------------------------


def test_a_jobs_end_is_delivered_signed_with_the_standard_webhooks_headers(webhooks: Webhooks, sql: Any) -> None:
    secret = webhooks.create("/ok", events=["job.completed"])
    webhooks.create("/ok", user="bob")  # another user's endpoint hears nothing of alice's job
    webhooks.backend.open_tab()
    job_id = a_job(webhooks.backend)
    assert webhooks.backend.run_job(str(job_id))["status"] == "completed"

    assert webhooks.queued() == 1
    assert webhooks.run() == [{"batchItemFailures": []}]
    [request] = webhooks.receiver.of("/ok")
    assert request.headers["webhook-signature"] == signature_of(secret, request)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.body)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "job.completed"
    assert body["data"] == {
        "job_id": str(job_id),
        "marketplace": "vinted",
        "action": "sync",
        "product_id": None,
        "status": "completed",
    }
    [event] = stored(sql, "SELECT id, created_at FROM outbox")
    assert datetime.fromisoformat(body["timestamp"]) == event["created_at"]  # the event's time, not the attempt's

    [delivery] = webhooks.deliveries()
    assert request.headers["webhook-id"] == delivery["webhook_id"] == f"msg_{uuid.UUID(delivery['id']).hex}"
    assert (delivery["event_id"], delivery["event_type"]) == (str(event["id"]), "job.completed")
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 200)
    assert delivery["delivered_at"] is not None
    assert delivery["last_error"] is None
    assert webhooks.deliveries(user="bob") == []


def test_an_event_type_the_endpoint_did_not_subscribe_to_makes_no_delivery(webhooks: Webhooks) -> None:
    webhooks.create("/ok", events=["job.failed"])
    assert webhooks.backend.http("POST", f"/jobs/{a_job(webhooks.backend)}/cancel").status == 200
    assert webhooks.queued() == 0
    assert webhooks.deliveries() == []


def test_an_endpoint_answering_500_three_times_gets_the_event_on_the_fourth_try_with_the_same_webhook_id(
    webhooks: Webhooks,
) -> None:
    secret = webhooks.create("/flaky")
    webhooks.backend.http("POST", f"/jobs/{a_job(webhooks.backend)}/cancel")

    answers = webhooks.run()
    assert [len(answer["batchItemFailures"]) for answer in answers] == [1, 1, 1, 0]
    requests = webhooks.receiver.of("/flaky")
    assert len(requests) == 4
    assert len({request.headers["webhook-id"] for request in requests}) == 1
    assert len({request.body for request in requests}) == 1  # the same bytes; only the attempt's time may move
    for request in requests:
        assert request.headers["webhook-signature"] == signature_of(secret, request)
    assert json.loads(requests[0].body)["type"] == "job.cancelled"
    [delivery] = webhooks.deliveries()
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 4, 204)
    assert webhooks.queued() == 0


def test_a_failed_attempt_comes_back_after_the_schedules_wait_not_before(
    webhooks: Webhooks, settings: Callable[..., None]
) -> None:
    settings(webhook_retries=",".join(["30"] + ["0"] * (len(RETRY_SECONDS) - 1)))
    webhooks.create("/down")
    webhooks.backend.http("POST", "/webhooks/test")
    assert [len(answer["batchItemFailures"]) for answer in webhooks.run()] == [1]  # then nothing visible
    assert webhooks.queued() == 1
    [delivery] = webhooks.deliveries()
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == ("retrying", 1, 500)
    assert delivery["last_error"] == "HTTP 500"
    wait = datetime.fromisoformat(delivery["next_attempt_at"]) - datetime.fromisoformat(delivery["last_attempt_at"])
    assert timedelta(seconds=27) <= wait <= timedelta(seconds=33)  # 30 s, jittered by 10 % at most


def test_after_the_last_attempt_the_delivery_is_failed_and_its_message_in_the_dead_letter_queue(
    webhooks: Webhooks,
) -> None:
    webhooks.create("/down")
    webhooks.backend.http("POST", "/webhooks/test")
    answers = webhooks.run()
    assert [len(answer["batchItemFailures"]) for answer in answers] == [1] * MAX_ATTEMPTS
    assert len(webhooks.receiver.of("/down")) == MAX_ATTEMPTS
    [delivery] = webhooks.deliveries()
    assert (delivery["state"], delivery["attempts"], delivery["next_attempt_at"]) == ("failed", MAX_ATTEMPTS, None)
    assert webhooks.queued() == 0
    [parked] = webhooks.sqs.receive_message(QueueUrl=webhooks.dlq_url).get("Messages", [])
    assert json.loads(parked["Body"]) == {"delivery_id": delivery["id"]}


def test_an_endpoint_that_never_answers_times_out_and_another_users_delivery_in_the_batch_still_goes(
    webhooks: Webhooks, silent: Silent, settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings(dev_webhook_origins=f"{webhooks.receiver.origin},{silent.origin}")
    real = runtime.webhook_deliverer

    def short_deadline() -> WebhookDeliverer:
        deliverer = real()
        deliverer._timeout = SHORT_TIMEOUT  # 5 s in AWS: a test need not wait that long to see it end
        return deliverer

    monkeypatch.setattr(runtime, "webhook_deliverer", short_deadline)
    assert webhooks.put(f"{silent.origin}/hook", user="alice").status == 201
    webhooks.create("/ok", user="bob")
    webhooks.backend.http("POST", "/webhooks/test", user="alice")
    webhooks.backend.http("POST", "/webhooks/test", user="bob")

    started = time.monotonic()
    [answer] = webhooks.run(max_batches=1)
    took = time.monotonic() - started
    assert took < SHORT_TIMEOUT + 2, took  # the two attempts ran side by side, the silent one cut at its deadline
    assert len(answer["batchItemFailures"]) == 1
    assert len(webhooks.receiver.of("/ok")) == 1
    [bobs] = webhooks.deliveries(user="bob")
    assert bobs["state"] == "delivered"
    [alices] = webhooks.deliveries(user="alice")
    assert (alices["state"], alices["last_status_code"]) == ("retrying", None)
    assert alices["last_error"] == f"no answer within {SHORT_TIMEOUT:g} s"
    assert silent.held  # it did connect: the wait was for an answer


def test_a_redirect_is_a_failed_attempt_never_followed(webhooks: Webhooks) -> None:
    webhooks.create("/redirect")
    webhooks.backend.http("POST", "/webhooks/test")
    webhooks.run(max_batches=1)
    [delivery] = webhooks.deliveries()
    assert (delivery["state"], delivery["last_status_code"]) == ("retrying", 302)
    assert "redirects are not followed" in delivery["last_error"]
    assert webhooks.receiver.of("/ok") == []


def test_a_name_that_resolves_to_a_private_address_at_delivery_is_not_connected_to(
    webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"hooks.example.test": "93.184.216.34"}
    monkeypatch.setattr(image_fetch, "getaddrinfo", _resolver(answers))
    assert webhooks.put("https://hooks.example.test/hook").status == 201
    answers["hooks.example.test"] = "169.254.169.254"  # DNS rebinding: a public answer when saved, not now
    webhooks.backend.http("POST", "/webhooks/test")
    webhooks.run(max_batches=1)
    [delivery] = webhooks.deliveries()
    assert (delivery["state"], delivery["last_status_code"]) == ("retrying", None)
    assert "resolves to 169.254.169.254, which is not a public internet address" in delivery["last_error"]


# Once per event ----------------------------------------------------------------------------------------------------


def test_an_event_the_sweeper_delivers_again_makes_no_second_delivery(
    webhooks: Webhooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhooks.create("/ok")
    fail_in_its_lane(a_job(webhooks.backend))  # committed; dispatched below
    with transaction(runtime.sessions()) as session:
        events = outbox.undispatched(session, datetime.now(UTC) + timedelta(hours=1), 10)
    real_mark = outbox.mark_dispatched

    def lost(session: Any, ids: list[uuid.UUID]) -> None:
        raise RuntimeError("the Lambda died after the hooks and before marking")

    monkeypatch.setattr(outbox, "mark_dispatched", lost)
    runtime.events().dispatch(events)
    monkeypatch.setattr(outbox, "mark_dispatched", real_mark)
    assert webhooks.queued() == 1

    assert sweep_later().undispatched_events == 1  # the sweeper delivers it again: the hook runs again
    assert webhooks.queued() == 1
    assert len(webhooks.deliveries()) == 1
    webhooks.run()
    assert len(webhooks.receiver.of("/ok")) == 1


def test_the_test_event_is_delivered_signed_and_logged_and_the_log_pages_newest_first(webhooks: Webhooks) -> None:
    secret = webhooks.create("/ok")
    sent = [webhooks.backend.http("POST", "/webhooks/test") for _ in range(3)]
    assert [reply.status for reply in sent] == [202, 202, 202]
    webhooks.run()
    requests = webhooks.receiver.of("/ok")
    assert {request.headers["webhook-id"] for request in requests} == {reply.body["webhook_id"] for reply in sent}
    for request in requests:
        assert request.headers["webhook-signature"] == signature_of(secret, request)
        body = json.loads(request.body)
        assert body["type"] == "webhook.test"
        assert body["data"]["test"] is True

    first = webhooks.backend.http("GET", "/webhooks/deliveries", query={"limit": "2"})
    assert [item["id"] for item in first.body["items"]] == [sent[2].body["delivery_id"], sent[1].body["delivery_id"]]
    second = webhooks.backend.http(
        "GET", "/webhooks/deliveries", query={"limit": "2", "cursor": first.body["next_cursor"]}
    )
    assert [item["id"] for item in second.body["items"]] == [sent[0].body["delivery_id"]]
    assert second.body["next_cursor"] is None
    assert {item["state"] for item in [*first.body["items"], *second.body["items"]]} == {"delivered"}
