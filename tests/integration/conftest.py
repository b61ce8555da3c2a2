"""Drive the real Lambda handlers with AWS-shaped events, against PostgreSQL and moto."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import create_engine, text

from crosslist import runtime
from devstack.aws import provision
from devstack.lambdas import LambdaContext, load_handler
from devstack.plugin import VintedSimulator
from devstack.sqs_trigger import sqs_event
from tests.conftest import REPO
from tests.support.events import http_event, websocket_event
from tests.support.fakes import VINTED_USER_ID, FakeGateway, FakeVinted
from tests.support.tokens import token_for

USER_TABLES = (
    "outbox",
    "webhook_deliveries",
    "webhook_endpoints",
    "sale_actions",
    "sales",
    "user_settings",
    "marketplace_listings",
    "marketplace_jobs",
    "marketplace_batches",
    "job_lanes",
    "oauth_credentials",
    "seller_settings",
    "products",
    "sync_rules",
    "marketplace_accounts",
    "received_notifications",
)


@pytest.fixture
def database(database_url: str) -> str:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(USER_TABLES)} CASCADE"))
    engine.dispose()
    return database_url


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Backend:
    """The deployed system as its users reach it: HTTP API, WebSocket API, and the SQS trigger."""

    def __init__(self, gateway: FakeGateway, sqs: Any, provisioned: Any) -> None:
        self.gateway = gateway
        self.sqs = sqs
        self.queue_url = provisioned.queues["JobsQueue"]
        self.queue_arn = provisioned.queue_arns["JobsQueue"]
        self.timers_url = provisioned.queues["TimersQueue"]
        self.timers_arn = provisioned.queue_arns["TimersQueue"]
        functions = REPO / "functions"
        self._vinted_accounts: dict[str, VintedSimulator] = {}
        self.delivering: list[dict[str, Any]] = []  # the messages of the invocation running now
        self._create_job = load_handler(functions / "create_job")
        self._products = load_handler(functions / "products")
        self._marketplaces = load_handler(functions / "marketplaces")
        self._notifications = load_handler(functions / "notifications")
        self._process_job = load_handler(functions / "process_job")
        self._ws_connect = load_handler(functions / "ws_connect")
        self._ws_message = load_handler(functions / "ws_message")

    # HTTP API
    def http(self, method: str, path: str, user: str | None = "alice", body: Any = None, **kw: Any) -> Reply:
        headers = {"authorization": f"Bearer {token_for(user)}"} if user else {}
        headers.update(kw.pop("headers", {}))
        handler = self._create_job
        if path.startswith(("/products", "/webhooks")):
            handler = self._products
        elif path.startswith("/marketplaces") and not path.endswith("/unlinked"):
            handler = self._marketplaces
        elif path.startswith("/notifications"):
            handler = self._notifications
        response = handler(http_event(method, path, body=body, headers=headers, **kw), LambdaContext("http"))
        raw = response.get("body")
        return Reply(response["statusCode"], json.loads(raw) if raw else None, response.get("headers", {}))

    def create_product(self, user: str = "alice", images: int = 3, **fields: Any) -> dict[str, Any]:
        product = {
            "title": "Levi's 501 jeans",
            "description": "Straight fit, barely worn",
            "price": "27.90",
            "brand": "Levi's",
            "size": "W32 L32",
            "condition": "very good",
            "image_urls": [f"https://images.example.com/levis-{n}.jpg" for n in range(1, images + 1)],
            "marketplace_attributes": {
                "vinted": {
                    "brand_id": 53,
                    "size_id": 207,
                    "catalog_id": 1839,
                    "status_id": 2,
                    "color_ids": [12],
                    "package_size_id": 2,
                }
            },
            **fields,
        }
        reply = self.http("POST", "/products", user=user, body=product)
        assert reply.status == 201, reply.body
        return dict(reply.body)

    def publish(self, product_id: str, user: str = "alice", **extra: Any) -> Reply:
        body = {"marketplace": "vinted", "action": "publish", "product_id": product_id, **extra}
        return self.http("POST", "/jobs", user=user, body=body)

    def job(self, job_id: str, user: str = "alice") -> dict[str, Any]:
        reply = self.http("GET", f"/jobs/{job_id}", user=user)
        assert reply.status == 200, reply.body
        return dict(reply.body)

    # WebSocket API
    def connect(self, user: str = "alice", token: str | None = None) -> tuple[int, str]:
        connection_id = f"conn-{uuid.uuid4().hex[:12]}="
        query = {"token": token if token is not None else token_for(user)}
        response = self._ws_connect(websocket_event("$connect", connection_id, query=query), LambdaContext("ws"))
        self.deliver_sessions()  # the new tab gets its jobs.active, as process_job answers it in AWS
        return response["statusCode"], connection_id

    def deliver_sessions(self) -> int:
        """Run the queued session messages (jobs.active for a tab) and leave job messages queued."""
        delivered = 0
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            if '"connection_id"' in message["Body"]:
                assert self.deliver([message]) == {"batchItemFailures": []}
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                delivered += 1
            else:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return delivered

    def open_tab(self, user: str = "alice", *, ready: bool = True, **behaviour: Any) -> tuple[str, FakeVinted]:
        """A web app tab with the browser extension: it executes the plugin commands it receives, once it
        has said its extension is ready (as the web app does right after connecting)."""
        status, connection_id = self.connect(user)
        assert status == 200
        # A user's tabs share their Vinted account: one in-memory Vinted per user.
        account = self._vinted_accounts.setdefault(
            user, VintedSimulator(latency_ms=0, vinted_user_id=VINTED_USER_ID, retry_after=None)
        )
        behaviour.setdefault("simulator", account)
        vinted = FakeVinted(send=lambda message: self.send(connection_id, message), **behaviour)
        if ready:
            self.plugin_status(connection_id, ready=True, vinted_user_id=vinted.vinted_user_id)
        self.gateway.listeners[connection_id] = vinted
        return connection_id, vinted

    def plugin_status(self, connection_id: str, **status: Any) -> None:
        self.send(connection_id, {"action": "plugin_status", "extension_version": "1.0.0", **status})

    def disconnect(self, connection_id: str) -> None:
        self._ws_connect(websocket_event("$disconnect", connection_id), LambdaContext("ws"))

    def send(self, connection_id: str, message: dict[str, Any] | str) -> None:
        body = message if isinstance(message, str) else json.dumps(message)
        route = "plugin_result" if '"plugin_result"' in body else "$default"
        self._ws_message(websocket_event(route, connection_id, body=body), LambdaContext("ws"))

    # SQS trigger
    def deliver(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        event = sqs_event(messages, self.queue_arn)
        result: dict[str, Any] = self._process_job(event, LambdaContext("process_job", timeout_seconds=300))
        return result

    def receive(self) -> list[dict[str, Any]]:
        return list(
            self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=1,
                MessageSystemAttributeNames=["All"],
                VisibilityTimeout=1800,
            ).get("Messages", [])
        )

    def run_queue(self, max_batches: int = 200, *, wait_timers: float = 0.0) -> int:
        """What the SQS event source mappings do: deliver the jobs queue's messages to process_job and the
        timers queue's to process_job too, deleting what succeeded, until both are empty. Timers still
        delayed are waited for up to `wait_timers` seconds (a lane waiting on pacing, a backoff, a deadline)."""
        batches = 0
        deadline = time.monotonic() + wait_timers
        while batches < max_batches:
            if messages := self.receive():
                batches += 1
                self.delivering = messages
                try:
                    failed = {f["itemIdentifier"] for f in self.deliver(messages)["batchItemFailures"]}
                except Exception:  # the invocation failed: its messages come back after their visibility
                    failed = {message["MessageId"] for message in messages}
                for message in messages:
                    if message["MessageId"] not in failed:
                        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                continue
            if self.fire_timers():
                continue
            if time.monotonic() >= deadline or not self.timers_pending() or not self.active_jobs():
                break
            time.sleep(0.05)
        return batches

    def run_job(self, job_id: str, user: str = "alice", wait_timers: float = 30.0) -> dict[str, Any]:
        """Run the queues until nothing is active (timers waited for up to `wait_timers` s): the job then."""
        self.run_queue(wait_timers=wait_timers)
        return self.job(job_id, user=user)

    def active_jobs(self) -> int:
        """Jobs not ended yet: while there are none, no timer can matter (a deadline timer of a command
        that got its reply is still delayed in the queue)."""
        with create_engine(os.environ["DATABASE_URL"]).connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM marketplace_jobs WHERE status NOT IN ('completed', 'failed', 'cancelled')"
                    )
                ).scalar_one()
            )

    def fire_timers(self) -> int:
        """Deliver the timers that are due to process_job; returns how many."""
        messages = self.sqs.receive_message(QueueUrl=self.timers_url, MaxNumberOfMessages=10).get("Messages", [])
        if messages:
            event = sqs_event(messages, self.timers_arn)
            failed = {
                f["itemIdentifier"] for f in self._process_job(event, LambdaContext("process_job"))["batchItemFailures"]
            }
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.timers_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def timers_pending(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.timers_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesDelayed"])

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        provisioned = provision(REPO / "template.yaml", dynamodb, sqs)
        os.environ["JOBS_QUEUE_URL"] = provisioned.queues["JobsQueue"]
        os.environ["TIMERS_QUEUE_URL"] = provisioned.queues["TimersQueue"]
        os.environ["WEBHOOK_DELIVERY_QUEUE_URL"] = provisioned.queues["WebhookDeliveryQueue"]
        runtime.reset()
        yield {"sqs": sqs, "dynamodb": dynamodb, "provisioned": provisioned}
        runtime.reset()


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    # moto accepts posts to any connection and never answers 410 Gone: use a fake that does.
    fake = FakeGateway()
    monkeypatch.setattr(runtime, "gateway", lambda: fake)
    return fake


@pytest.fixture
def backend(database: str, aws: dict[str, Any], gateway: FakeGateway) -> Backend:
    return Backend(gateway, aws["sqs"], aws["provisioned"])


@pytest.fixture
def sql(database: str) -> Iterator[Any]:
    """Direct SQL, for setting the scene and checking what was stored."""
    engine = create_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture
def short_plugin_timeout(sql: Any) -> Iterator[int]:
    """Vinted steps wait 1 s for the extension instead of a minute (less, and a loaded machine can take that
    long between sending a command and the test's next look)."""
    timeout_ms = 1000
    update = text("UPDATE marketplace_action_types SET timeout_ms = :t WHERE marketplace = 'vinted'")
    with sql.begin() as connection:
        connection.execute(update, {"t": timeout_ms})
    yield timeout_ms
    with sql.begin() as connection:
        connection.execute(update, {"t": 60_000})


def count(sql: Any, query: str, **params: Any) -> int:
    with sql.connect() as connection:
        return int(connection.execute(text(query), params).scalar_one())


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set CROSSLIST_* settings for this test: every Lambda reads them anew."""

    def apply(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"CROSSLIST_{name.upper()}", value)
        runtime.settings.cache_clear()

    yield apply
    runtime.settings.cache_clear()
