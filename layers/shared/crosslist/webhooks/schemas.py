"""What the /webhooks routes take and answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from crosslist.db.models import WebhookDelivery, WebhookEndpoint
from crosslist.events.events import EVENT_TYPES, EventType
from crosslist.webhooks.urls import MAX_WEBHOOK_URL_LENGTH

# Sent only by POST /webhooks/test: nobody subscribes to it, every endpoint can be sent it.
TEST_EVENT_TYPE = "webhook.test"
DeliveryState = Literal["pending", "delivered", "retrying", "failed"]


def webhook_id(delivery_id: uuid.UUID) -> str:
    """The `webhook-id` header of a delivery: the same on every attempt (a receiver's idempotency key)."""
    return f"msg_{delivery_id.hex}"


class WebhookEndpointPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_WEBHOOK_URL_LENGTH,
        description="Where the events are POSTed: https, on a host whose every address is public (never a private,"
        " loopback, link-local or metadata address); redirects are not followed",
    )
    events: list[EventType] = Field(
        min_length=1,
        max_length=4 * len(EVENT_TYPES),
        description="The event types sent to it (at least one); the others are not",
    )
    rotate_secret: StrictBool = Field(
        default=False,
        description="Replacing: a new signing secret, shown in this answer only (the old one stops signing at once)",
    )

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: list[EventType]) -> list[EventType]:
        return list(dict.fromkeys(events))


class WebhookEndpointView(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str] = Field(description="The event types it is sent")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookEndpointView:
        return cls.model_validate(endpoint, from_attributes=True)


class WebhookEndpointSaved(WebhookEndpointView):
    secret: str | None = Field(
        description="`whsec_` and base64: the key the `webhook-signature` header is made with (Standard Webhooks)."
        " Only in the answer that created the endpoint or rotated its secret: keep it, it is never shown again"
    )


class WebhookDeliveryView(BaseModel):
    id: uuid.UUID
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt of this delivery")
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str = Field(description="One of the event types, or webhook.test (POST /webhooks/test)")
    state: DeliveryState = Field(
        description="pending (not tried yet), delivered (a 2xx), retrying (failed, tried again at"
        " next_attempt_at), failed (every attempt failed: given up)"
    )
    attempts: int
    last_status_code: int | None = Field(description="What the endpoint answered last; null: no answer")
    last_error: str | None = Field(description="Why the last attempt failed")
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> WebhookDeliveryView:
        fields = {name: getattr(delivery, name) for name in cls.model_fields if name != "webhook_id"}
        return cls.model_validate({**fields, "webhook_id": webhook_id(delivery.id)})


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryView] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class WebhookTestSent(BaseModel):
    delivery_id: uuid.UUID = Field(description="Its row in GET /webhooks/deliveries")
    webhook_id: str = Field(description="The `webhook-id` header it is sent with")
