"""A user's webhook endpoint (one per user), its delivery log, and the test event.

The signing secret is made here, shown in the answer that made it, and stored sealed (crosslist.auth.vault:
AES-GCM under a KMS data key of the endpoint's own, bound to the endpoint's id): the API never reads it back.
KMS is asked for a data key before the transaction, so no connection waits on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from crosslist import cursors
from crosslist.auth.vault import KeyService, seal
from crosslist.db.engine import transaction
from crosslist.db.models import WebhookDelivery, WebhookEndpoint
from crosslist.errors import NotFound
from crosslist.webhooks.queue import DeliveryQueue
from crosslist.webhooks.schemas import (
    TEST_EVENT_TYPE,
    WebhookDeliveryPage,
    WebhookDeliveryView,
    WebhookEndpointPut,
    WebhookEndpointSaved,
    WebhookEndpointView,
    WebhookTestSent,
    webhook_id,
)
from crosslist.webhooks.signing import new_secret
from crosslist.webhooks.urls import check_webhook_url

SECRET_FIELD = "signing_secret"  # what the sealed secret is bound to, beside the endpoint's id


class WebhookEndpoints:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        keys: Callable[[], KeyService],
        queue: Callable[[], DeliveryQueue],
        dev_origins: Sequence[str] = (),
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._queue = queue
        self._dev_origins = tuple(dev_origins)

    def put(self, user_id: str, request: WebhookEndpointPut) -> tuple[WebhookEndpointSaved, bool]:
        """Create the user's endpoint (True: created, its secret in the answer) or replace its URL and events
        (its secret kept, unless `rotate_secret`: a new one, in the answer)."""
        check_webhook_url(request.url, self._dev_origins)
        for _ in range(3):  # another request created or deleted it meanwhile: look again
            with transaction(self._sessions) as session:
                existing = session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.user_id == user_id))
            if existing is None:
                saved = self._create(user_id, request)
                if saved is not None:
                    return saved, True
            else:
                replaced = self._replace(user_id, existing, request)
                if replaced is not None:
                    return replaced, False
        raise RuntimeError("the webhook endpoint changed under three requests in a row")

    def _create(self, user_id: str, request: WebhookEndpointPut) -> WebhookEndpointSaved | None:
        endpoint_id = uuid.uuid4()
        secret, sealed, data_key = self._sealed_secret(endpoint_id)
        with transaction(self._sessions) as session:
            created = session.scalar(
                insert(WebhookEndpoint)
                .values(
                    id=endpoint_id,
                    user_id=user_id,
                    url=request.url,
                    events=list(request.events),
                    secret_encrypted=sealed,
                    data_key_encrypted=data_key,
                )
                .on_conflict_do_nothing(constraint="uq_webhook_endpoints_user")
                .returning(WebhookEndpoint)
            )
            if created is None:
                return None
            view = WebhookEndpointView.of(created)
        return WebhookEndpointSaved(**view.model_dump(), secret=secret)

    def _replace(
        self, user_id: str, endpoint_id: uuid.UUID, request: WebhookEndpointPut
    ) -> WebhookEndpointSaved | None:
        values: dict[str, object] = {"url": request.url, "events": list(request.events)}
        secret = None
        if request.rotate_secret:
            secret, values["secret_encrypted"], values["data_key_encrypted"] = self._sealed_secret(endpoint_id)
        with transaction(self._sessions) as session:
            replaced = session.scalar(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user_id)
                .values(**values, updated_at=datetime.now(UTC))
                .returning(WebhookEndpoint)
                .execution_options(synchronize_session=False)
            )
            if replaced is None:
                return None
            view = WebhookEndpointView.of(replaced)
        return WebhookEndpointSaved(**view.model_dump(), secret=secret)

    def _sealed_secret(self, endpoint_id: uuid.UUID) -> tuple[str, bytes, bytes]:
        """A new secret, sealed under a new data key bound to the endpoint; and that key, encrypted."""
        secret = new_secret()
        data_key = self._keys().new_key(str(endpoint_id))
        return secret, seal(data_key.plaintext, str(endpoint_id), SECRET_FIELD, secret), data_key.encrypted

    def get(self, user_id: str) -> WebhookEndpointView:
        with transaction(self._sessions) as session:
            endpoint = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id))
            if endpoint is None:
                raise NotFound("no webhook endpoint: PUT /webhooks creates it")
            return WebhookEndpointView.of(endpoint)

    def delete(self, user_id: str) -> None:
        """Delete the endpoint and its delivery log; deliveries still queued are dropped when they arrive."""
        with transaction(self._sessions) as session:
            deleted = session.scalar(
                delete(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id).returning(WebhookEndpoint.id)
            )
        if deleted is None:
            raise NotFound("no webhook endpoint: PUT /webhooks creates it")

    def deliveries(self, user_id: str, *, cursor: str | None, limit: int) -> WebhookDeliveryPage:
        with transaction(self._sessions) as session:
            rows, next_cursor = cursors.newest_first_page(
                session,
                select(WebhookDelivery).where(WebhookDelivery.user_id == user_id),
                at=WebhookDelivery.created_at,
                row_id=WebhookDelivery.id,
                cursor=cursor,
                limit=limit,
            )
            return WebhookDeliveryPage(items=[WebhookDeliveryView.of(row) for row in rows], next_cursor=next_cursor)

    def send_test(self, user_id: str) -> WebhookTestSent:
        """A `webhook.test` event for the endpoint, delivered as any event is (signed, logged, retried)."""
        with transaction(self._sessions) as session:
            endpoint = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id))
            if endpoint is None:
                raise NotFound("no webhook endpoint: PUT /webhooks creates it")
            delivery = WebhookDelivery(
                id=uuid.uuid4(),
                user_id=user_id,
                endpoint_id=endpoint.id,
                event_id=uuid.uuid4(),
                event_type=TEST_EVENT_TYPE,
                event_at=datetime.now(UTC),
                data={"endpoint_id": str(endpoint.id), "test": True},
                state="pending",
                attempts=0,
            )
            session.add(delivery)
            session.flush()
            # Queued before the commit: a delivery in the log always has its message (a failed send rolls back).
            self._queue().send([delivery.id])
        return WebhookTestSent(delivery_id=delivery.id, webhook_id=webhook_id(delivery.id))
