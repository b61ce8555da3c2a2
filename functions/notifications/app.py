"""HTTP API: what eBay and Etsy push to crosslist (no crosslist token: each message is signed by its sender, and
verified before anything is done). eBay's challenge, eBay's notifications (account deletion, order confirmation),
Etsy's webhooks (order.paid). The logic is crosslist.notifications."""

import base64
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.api import documented, make_resolver
from crosslist.notifications.schemas import (
    EBAY_NOTIFICATION_BODY,
    EBAY_SIGNATURE_HEADER,
    ETSY_SIGNATURE_HEADERS,
    ETSY_WEBHOOK_BODY,
    ChallengeResponse,
)
from crosslist.notifications.service import json_headers

logger = Logger()
# eBay and Etsy call these: they carry no crosslist token (the signature says who sent them).
app = make_resolver(public_paths=[r"/notifications/(ebay|etsy)"])
NOT_CONFIGURED = (
    "`not_configured`: this deployment takes no notifications from that marketplace (or no route has this path)"
)


def _described(responses: dict[int, OpenAPIResponse], descriptions: dict[int, str]) -> dict[int, OpenAPIResponse]:
    """The standard answers, each refusal described as it is meant here."""
    for status, description in {404: NOT_CONFIGURED, **descriptions}.items():
        responses[status] = {**responses[status], "description": description}
    return responses


@app.get(
    "/notifications/ebay",
    responses=_described(documented(200, "The challenge's answer", ChallengeResponse, public=True), {}),
)
def ebay_challenge(challenge_code: Annotated[str, Query(min_length=1, max_length=256)]) -> ChallengeResponse:
    """eBay checks the endpoint (when it is registered in the developer portal, and when crosslist's destination is
    created): the hash of the challenge code, the verification token and this URL."""
    return ChallengeResponse(challengeResponse=runtime.push_notifications().ebay_challenge(challenge_code))


@app.post(
    "/notifications/ebay",
    responses=_described(
        documented(
            204,
            "Verified: acted on once (again, too old, another topic: nothing more is done)",
            refusals=(412, 503),
            body=True,
            public=True,
        ),
        {
            412: "`signature_invalid`: not signed by eBay (unsigned, malformed, a key eBay does not serve, a signature"
            " that does not match): nothing was done",
            503: "eBay's public key could not be read now: eBay delivers the notification again",
        },
    ),
    openapi_extensions={**EBAY_NOTIFICATION_BODY, "parameters": [EBAY_SIGNATURE_HEADER]},
)
def ebay_notification() -> Response[None]:
    """An eBay notification: its signature verified first (412 `signature_invalid`; nothing is done), then acted on
    once: MARKETPLACE_ACCOUNT_DELETION erases that eBay user's data, ORDER_CONFIRMATION imports the seller's orders
    at once. A message published more than 3 days ago is answered 204 and not acted on (a replay)."""
    signature = json_headers(app.current_event.headers).get("x-ebay-signature")
    runtime.push_notifications().ebay(_raw_body(), signature)
    return Response(status_code=204)


@app.post(
    "/notifications/etsy",
    responses=_described(
        documented(
            204,
            "Verified: acted on once (again, another event: nothing more is done)",
            refusals=(412, 503),
            body=True,
            public=True,
        ),
        {
            412: "`signature_invalid`: not signed with the app's signing secret, or its timestamp is more than 5"
            " minutes from now: nothing was done",
            503: "A service crosslist depends on did not answer: Etsy delivers the webhook again",
        },
    ),
    openapi_extensions={**ETSY_WEBHOOK_BODY, "parameters": ETSY_SIGNATURE_HEADERS},
)
def etsy_webhook() -> Response[None]:
    """An Etsy webhook: its Standard Webhooks signature verified first (412 `signature_invalid`; nothing is done),
    then acted on once: order.paid imports the shop's orders at once."""
    runtime.push_notifications().etsy(_raw_body(), json_headers(app.current_event.headers))
    return Response(status_code=204)


def _raw_body() -> bytes:
    """The body as the sender sent it: what its signature covers."""
    event = app.current_event
    if not event.body:
        return b""
    return base64.b64decode(event.body) if event.is_base64_encoded else event.body.encode("utf-8", "surrogatepass")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
