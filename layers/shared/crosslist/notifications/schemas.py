"""What the notification endpoints answer, and what they take, as the OpenAPI document shows it.

The bodies are not validated against these schemas before their signature is checked (a message that is not the
sender's is refused whatever its shape): they are documented here, read after verification in
crosslist.notifications.service.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ChallengeResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    challengeResponse: str = Field(  # noqa: N815 - eBay's name
        description="hex(SHA-256(challenge_code + verification token + this endpoint's URL)), as eBay expects"
    )


def _body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"description": description, "content": {"application/json": {"schema": schema}}}}


EBAY_NOTIFICATION_BODY = _body(
    "An eBay notification, signed (X-EBAY-SIGNATURE): MARKETPLACE_ACCOUNT_DELETION or ORDER_CONFIRMATION; other"
    " topics are answered 204 and ignored",
    {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {"topic": {"type": "string"}, "schemaVersion": {"type": "string"}},
            },
            "notification": {
                "type": "object",
                "properties": {
                    "notificationId": {"type": "string"},
                    "eventDate": {"type": "string", "format": "date-time"},
                    "publishDate": {"type": "string", "format": "date-time"},
                    "publishAttemptCount": {"type": "integer"},
                    "data": {"type": "object"},
                },
            },
        },
    },
)
EBAY_SIGNATURE_HEADER = {
    "name": "X-EBAY-SIGNATURE",
    "in": "header",
    "required": False,
    "description": 'base64 of {"alg": "ecdsa", "kid": …, "signature": …, "digest": "SHA1"}; without it: 412',
    "schema": {"type": "string"},
}
ETSY_WEBHOOK_BODY = _body(
    "An Etsy webhook, signed as Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature): order.paid;"
    " other events are answered 204 and ignored",
    {
        "type": "object",
        "properties": {
            "event_type": {"type": "string"},
            "resource_url": {"type": "string"},
            "shop_id": {"type": "integer"},
        },
    },
)
ETSY_SIGNATURE_HEADERS = [
    {"name": name, "in": "header", "required": False, "description": description, "schema": {"type": "string"}}
    for name, description in (
        ("webhook-id", "The message's id: one already acted on is answered 204 and not acted on again"),
        ("webhook-timestamp", "Seconds since the epoch, within 5 minutes of now"),
        ("webhook-signature", "v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}> (space-separated, one or more)"),
    )
]
