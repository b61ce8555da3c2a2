"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"), symmetric (`v1`).

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the secret's bytes (the base64 after
`whsec_`); the signature is `v1,` and the base64 of its HMAC-SHA256. The `webhook-signature` header may carry
several, space-separated (a secret being rotated): any one that matches will do.

Pure functions of their arguments (the clock is one): crosslist signs its outbound webhooks with `sign`, and a
receiver checks a request with `verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
# The spec asks for 24 to 64 random bytes; 32 is HMAC-SHA256's own block of strength.
SECRET_BYTES = 32
DEFAULT_TOLERANCE_SECONDS = 300
SIGNATURE_VERSION = "v1"


class WebhookVerificationError(Exception):
    """The request is not a webhook signed with this secret, now: the message says what is wrong."""


def new_secret() -> str:
    """A new signing secret: `whsec_` and the base64 of SECRET_BYTES random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The key a secret stands for (with or without its `whsec_` prefix); ValueError if it is not base64."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` of `body` sent with `webhook-id: msg_id` and `webhook-timestamp: timestamp`."""
    if "." in msg_id:
        raise ValueError("a webhook id must not contain '.': it delimits the signed content")
    content = f"{msg_id}.{timestamp}.".encode() + (body.encode() if isinstance(body, str) else body)
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Return if `body` with these headers (any case) was signed with `secret` at most `tolerance_seconds`
    from `now` (unix seconds), either way; raise WebhookVerificationError otherwise."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not timestamp_text or not signatures:
        raise WebhookVerificationError("webhook-id, webhook-timestamp and webhook-signature are all required")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a unix time in seconds") from None
    if abs(now - timestamp) > tolerance_seconds:
        raise WebhookVerificationError(f"webhook-timestamp is more than {tolerance_seconds:g} s from now")
    try:
        expected = sign(secret, msg_id, timestamp, body).partition(",")[2].encode()
    except ValueError as error:
        raise WebhookVerificationError(str(error)) from None
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value.encode(), expected):
            return
    raise WebhookVerificationError("no v1 signature matches")
