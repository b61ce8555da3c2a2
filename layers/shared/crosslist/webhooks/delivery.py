"""deliver_webhooks: each WebhookDeliveryQueue message is one delivery, POSTed signed, logged, retried.

A batch (up to 10 messages, any users) is read in one transaction, POSTed in parallel (one thread each, each
attempt bounded by crosslist.webhooks.sending's deadline: a slow endpoint delays no other delivery), and its
outcomes written in a second transaction; no connection is held while the endpoints answer.

The body, `{"type", "timestamp", "data"}` (Standard Webhooks' shape; `timestamp` is the event's time), and the
`webhook-id` (`msg_` and the delivery's id) are the same on every attempt; `webhook-timestamp` is the attempt's
and the signature covers all three. A 2xx delivers. Anything else fails the attempt: the message's visibility
is set to the next wait of RETRY_SECONDS and it is reported as a batch item failure, so SQS brings it back then.
The attempt number is SQS's receive count, so a crash between attempts still counts one; after MAX_ATTEMPTS the
delivery is `failed` and its message, made visible at once, is moved to the dead-letter queue by the redrive
policy (maxReceiveCount = MAX_ATTEMPTS, template.yaml) on its next receive.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger
from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from crosslist.auth.vault import KeyService, open_sealed
from crosslist.db.engine import transaction
from crosslist.db.models import WebhookDelivery, WebhookEndpoint
from crosslist.webhooks import sending
from crosslist.webhooks.endpoints import SECRET_FIELD
from crosslist.webhooks.queue import DeliveryMessage, DeliveryQueue
from crosslist.webhooks.schemas import webhook_id
from crosslist.webhooks.signing import sign

logger = Logger(child=True)

# The waits after attempt 1, 2, … (Standard Webhooks' example schedule, cut where SQS's 12-hour visibility limit
# and a day's retention of the user's interest meet): 8 attempts over about 27.6 hours. Each wait is jittered by
# ±10 %. maxReceiveCount in template.yaml is MAX_ATTEMPTS (a test keeps them equal).
RETRY_SECONDS: tuple[int, ...] = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_SECONDS) + 1
JITTER = 0.1
# The log keeps a user's finished deliveries this long; older ones are deleted as the user's next ones finish.
KEEP_DELIVERIES = timedelta(days=30)
OPEN_STATES = ("pending", "retrying")

Post = Callable[..., sending.Attempt]


@dataclass(frozen=True)
class Received:
    """An SQS record of WebhookDeliveryQueue."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


@dataclass
class BatchOutcome:
    failures: list[str] = field(default_factory=list)  # message ids to report as batch item failures
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Prepared:
    delivery_id: uuid.UUID
    user_id: str
    url: str
    body: bytes
    secret: str | None  # None: it could not be opened (KMS): the attempt fails without a request


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The JSON body of a delivery: the same bytes on every attempt."""
    timestamp = delivery.event_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    document = {"type": delivery.event_type, "timestamp": timestamp, "data": delivery.data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookDeliverer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        keys: Callable[[], KeyService],
        queue: DeliveryQueue,
        dev_origins: Sequence[str] = (),
        retry_seconds: Sequence[float] = RETRY_SECONDS,
        timeout_seconds: float = sending.TIMEOUT_SECONDS,
        post: Post = sending.post,
    ) -> None:
        if len(retry_seconds) != MAX_ATTEMPTS - 1:
            raise ValueError(f"the retry schedule has {MAX_ATTEMPTS - 1} waits (maxReceiveCount - 1)")
        self._sessions = sessions
        self._keys = keys
        self._queue = queue
        self._dev_origins = tuple(dev_origins)
        self._retry_seconds = tuple(retry_seconds)
        self._timeout = timeout_seconds
        self._post = post

    def deliver(self, batch: Sequence[Received]) -> BatchOutcome:
        outcome = BatchOutcome()
        wanted: dict[uuid.UUID, Received] = {}
        for received in batch:
            try:
                delivery_id = DeliveryMessage.model_validate_json(received.body).delivery_id
            except ValidationError:
                logger.error("not a webhook delivery message: dropped", extra={"message_id": received.message_id})
                continue
            wanted.setdefault(delivery_id, received)  # a duplicate message of the batch is dropped
        prepared = self._prepare(list(wanted))
        if not prepared:
            return outcome
        with ThreadPoolExecutor(max_workers=len(prepared), thread_name_prefix="webhook") as pool:
            attempts = list(pool.map(self._attempt, prepared))
        now = datetime.now(UTC)
        waits: dict[uuid.UUID, float] = {}
        with transaction(self._sessions) as session:
            for item, attempt in zip(prepared, attempts, strict=True):
                count = wanted[item.delivery_id].receive_count
                wait = None if attempt.delivered or count >= MAX_ATTEMPTS else self._wait(count)
                _record(session, item.delivery_id, attempt, now, wait)
                if wait is not None:
                    waits[item.delivery_id] = wait
            session.execute(
                delete(WebhookDelivery)
                .where(
                    WebhookDelivery.user_id.in_({item.user_id for item in prepared}),
                    WebhookDelivery.created_at < now - KEEP_DELIVERIES,
                    WebhookDelivery.state.in_(("delivered", "failed")),
                )
                .execution_options(synchronize_session=False)
            )
        for item, attempt in zip(prepared, attempts, strict=True):
            received = wanted[item.delivery_id]
            log = {"delivery_id": str(item.delivery_id), "attempt": received.receive_count, "status": attempt.status}
            if attempt.delivered:
                outcome.delivered += 1
                logger.info("webhook delivered", extra=log)
                continue
            wait = waits.get(item.delivery_id)
            if wait is None:
                outcome.failed += 1
                logger.warning("webhook given up: to the dead-letter queue", extra={**log, "error": attempt.error})
            else:
                outcome.retrying += 1
                logger.info("webhook attempt failed", extra={**log, "error": attempt.error, "retry_in": wait})
            self._come_back(received, 0 if wait is None else wait)
            outcome.failures.append(received.message_id)
        return outcome

    def _wait(self, attempt: int) -> float:
        base = self._retry_seconds[attempt - 1]
        return base * random.uniform(1 - JITTER, 1 + JITTER)  # spreads retries: no secret

    def _prepare(self, delivery_ids: list[uuid.UUID]) -> list[_Prepared]:
        """The deliveries still to make, with their endpoint's URL and secret; the others (delivered, given
        up, deleted with their endpoint, never committed) are done."""
        if not delivery_ids:
            return []
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.state.in_(OPEN_STATES))
            ).all()
        secrets: dict[uuid.UUID, str | None] = {}
        prepared = []
        for delivery, endpoint in rows:
            if endpoint.id not in secrets:
                secrets[endpoint.id] = self._secret(endpoint)
            prepared.append(
                _Prepared(delivery.id, delivery.user_id, endpoint.url, delivery_body(delivery), secrets[endpoint.id])
            )
        return prepared

    def _secret(self, endpoint: WebhookEndpoint) -> str | None:
        try:
            key = self._keys().key(str(endpoint.id), endpoint.data_key_encrypted)
            return open_sealed(key, str(endpoint.id), SECRET_FIELD, endpoint.secret_encrypted)
        except Exception:  # VaultError, KMS unreachable: the attempt fails and is retried
            logger.exception("a webhook endpoint's secret could not be opened", extra={"endpoint_id": str(endpoint.id)})
            return None

    def _attempt(self, item: _Prepared) -> sending.Attempt:
        if item.secret is None:
            return sending.Attempt(None, "not sent: the signing secret could not be opened (KMS); tried again later")
        msg_id = webhook_id(item.delivery_id)
        timestamp = int(time.time())
        try:
            signature = sign(item.secret, msg_id, timestamp, item.body)
        except ValueError:  # a stored secret that is not base64: nothing to sign with
            logger.exception("a webhook could not be signed", extra={"delivery_id": str(item.delivery_id)})
            return sending.Attempt(None, "not sent: the signing secret is not usable; rotate it (PUT /webhooks)")
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
        return self._post(item.url, item.body, headers, dev_origins=self._dev_origins, timeout=self._timeout)

    def _come_back(self, received: Received, seconds: float) -> None:
        try:
            self._queue.retry_in(received.receipt_handle, round(seconds))
        except Exception:  # it comes back after the queue's visibility timeout instead
            logger.exception("a webhook's next attempt could not be scheduled", extra={"seconds": seconds})


def _record(
    session: Session, delivery_id: uuid.UUID, attempt: sending.Attempt, now: datetime, wait: float | None
) -> None:
    changes: dict[str, object]
    if attempt.delivered:
        state, changes = "delivered", {"delivered_at": now, "next_attempt_at": None, "last_error": None}
    elif wait is None:
        state, changes = "failed", {"next_attempt_at": None, "last_error": attempt.error}
    else:
        state, changes = "retrying", {"next_attempt_at": now + timedelta(seconds=wait), "last_error": attempt.error}
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state.in_(OPEN_STATES))
        .values(
            state=state,
            attempts=WebhookDelivery.attempts + 1,
            last_attempt_at=now,
            last_status_code=attempt.status,
            **changes,
        )
        .execution_options(synchronize_session=False)
    )
