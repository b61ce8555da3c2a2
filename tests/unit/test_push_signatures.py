"""What eBay and Etsy push is shown to be theirs before anything is done (crosslist.notifications): eBay's
endpoint challenge, eBay's X-EBAY-SIGNATURE (ECDSA, a key generated here), its public keys kept per key id, and
Etsy's Standard Webhooks signature as the fake Etsy makes it (crosslist.webhooks.signing verifies it)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from crosslist.notifications import ebay_signature
from crosslist.notifications.ebay_signature import Unverified
from crosslist.notifications.imports import idempotency_key
from crosslist.notifications.public_keys import KEEP_FOR, UNKNOWN_FOR, EbayPublicKeys
from crosslist.webhooks import signing
from devstack.fake_etsy import FakeEtsy

# Computed outside Python: printf '%s' CODE TOKEN URL | sha256sum
CHALLENGE = (
    "a8628072-3d33-45ee-9004-bee86830a22d",
    "crosslist-verification-token-0123456789abcdef",
    "https://api.example.com/notifications/ebay",
)
CHALLENGE_RESPONSE = "2db312df6ed373fc96714dd06f5c37306239f3a03c6ff09b25ce8c0199a18ff2"
KID = "9b1c6a2e-4a4f-4a4e-8a3f-0d1f2a3b4c5d"
MESSAGE = {
    "metadata": {"topic": "MARKETPLACE_ACCOUNT_DELETION", "schemaVersion": "1.0", "deprecated": False},
    "notification": {
        "notificationId": "49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d",
        "eventDate": "2026-12-07T10:43:59.462Z",
        "publishDate": "2026-12-07T10:43:59.679Z",
        "publishAttemptCount": 1,
        "data": {"username": "test_user", "userId": "ma8vp1jySJC", "eiasToken": "nY+sHZ2PrBmdj6wVnY+seQ=="},
    },
}


def ebay_header(key: ec.EllipticCurvePrivateKey, body: bytes, kid: str = KID, **changes: Any) -> str:
    """X-EBAY-SIGNATURE as eBay builds it: base64 of a JSON object holding the base64 DER signature."""
    signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA1()))).decode()
    header = {"alg": "ecdsa", "kid": kid, "signature": signature, "digest": "SHA1", **changes}
    return base64.b64encode(json.dumps(header).encode()).decode()


def one_line_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as eBay's getPublicKey answers it: PEM with its lines run together."""
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode().replace("\n", "")


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def public(key: ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePublicKey:
    return ebay_signature.load_public_key(one_line_pem(key))


def compact(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def test_the_challenge_response_is_the_sha256_of_code_token_and_endpoint() -> None:
    assert ebay_signature.challenge_response(*CHALLENGE) == CHALLENGE_RESPONSE


def test_a_body_signed_by_ebays_key_verifies(
    key: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey
) -> None:
    body = compact(MESSAGE)
    header = ebay_signature.parse_signature_header(ebay_header(key, body))
    assert header.kid == KID
    ebay_signature.verify(body, header, public)


def test_the_compact_json_of_the_body_is_what_ebays_sdks_verify(
    key: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey
) -> None:
    signed = compact(MESSAGE)
    pretty = json.dumps(MESSAGE, indent=2).encode()  # the same message, spaced differently on the way
    ebay_signature.verify(pretty, ebay_signature.parse_signature_header(ebay_header(key, signed)), public)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: {**m, "notification": {**m["notification"], "notificationId": "another"}},
        lambda m: {**m, "notification": {**m["notification"], "data": {"userId": "someone-else"}}},
        lambda m: {**m, "metadata": {**m["metadata"], "topic": "ORDER_CONFIRMATION"}},
    ],
    ids=["another-id", "another-user", "another-topic"],
)
def test_a_changed_body_does_not_verify(
    key: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey, tamper: Any
) -> None:
    header = ebay_signature.parse_signature_header(ebay_header(key, compact(MESSAGE)))
    with pytest.raises(Unverified) as refused:
        ebay_signature.verify(compact(tamper(MESSAGE)), header, public)
    assert refused.value.reason == "bad_signature"


def test_a_body_signed_by_another_key_does_not_verify(public: ec.EllipticCurvePublicKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    body = compact(MESSAGE)
    with pytest.raises(Unverified):
        ebay_signature.verify(body, ebay_signature.parse_signature_header(ebay_header(other, body)), public)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "unsigned"),
        ("", "unsigned"),
        ("not base64 at all!", "malformed_signature_header"),
        (base64.b64encode(b"not json").decode(), "malformed_signature_header"),
        (base64.b64encode(b"[1, 2]").decode(), "malformed_signature_header"),
        ("A" * 5000, "malformed_signature_header"),
    ],
)
def test_a_missing_or_unreadable_header_is_refused(header: str | None, reason: str) -> None:
    with pytest.raises(Unverified) as refused:
        ebay_signature.parse_signature_header(header)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"alg": "rsa"}, "unsupported_algorithm"),
        ({"digest": "SHA256"}, "unsupported_algorithm"),
        ({"kid": "../../public_key/x"}, "malformed_signature_header"),
        ({"kid": ""}, "malformed_signature_header"),
        ({"signature": "%%%"}, "malformed_signature_header"),
        ({"signature": ""}, "malformed_signature_header"),
    ],
)
def test_a_header_not_of_ebays_shape_is_refused(
    key: ec.EllipticCurvePrivateKey, changes: dict[str, str], reason: str
) -> None:
    with pytest.raises(Unverified) as refused:
        ebay_signature.parse_signature_header(ebay_header(key, b"{}", **changes))
    assert refused.value.reason == reason


def test_a_public_key_that_is_not_an_elliptic_curve_key_is_refused() -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(ValueError, match="not an elliptic curve"):
        ebay_signature.load_public_key(pem.replace("\n", ""))


def test_a_burst_fetches_each_key_once_and_an_unknown_kid_is_not_asked_again_for_a_while(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    now = [1000.0]
    asked: list[str] = []

    def fetch(kid: str) -> str | None:
        asked.append(kid)
        return one_line_pem(key) if kid == KID else None

    keys = EbayPublicKeys(fetch, clock=lambda: now[0])
    assert all(keys.key(KID) is not None for _ in range(50))
    assert all(keys.key("made-up") is None for _ in range(50))
    assert asked == [KID, "made-up"]
    now[0] += UNKNOWN_FOR + 1
    keys.key("made-up")
    keys.key(KID)
    assert asked == [KID, "made-up", "made-up"]  # the known key is kept longer
    now[0] += KEEP_FOR
    keys.key(KID)
    assert asked[-1] == KID
    assert keys.fetches == 4


def test_the_fake_etsys_webhooks_verify_with_its_secret_and_nothing_else() -> None:
    etsy = FakeEtsy()  # not served: only its signing is used
    body = b'{"event_type":"order.paid","resource_url":"https://openapi.etsy.com/v3/application/shops/1/receipts/2"}'
    headers = etsy.signed_webhook(body)
    now = float(headers["webhook-timestamp"])
    signing.verify(etsy.webhook_secret, headers, body, now=now)
    refusals = [
        (etsy.webhook_secret, headers, body.replace(b"order.paid", b"order.shipped"), now),  # body changed
        (signing.new_secret(), headers, body, now),  # another app's secret
        (etsy.webhook_secret, {**headers, "webhook-id": "msg_other"}, body, now),  # id changed
        (etsy.webhook_secret, headers, body, now + 301),  # 5 minutes and a second later: a replay
        (etsy.webhook_secret, {k: v for k, v in headers.items() if k != "webhook-signature"}, body, now),
    ]
    for secret, sent, content, at in refusals:
        with pytest.raises(signing.WebhookVerificationError):
            signing.verify(secret, sent, content, now=at)


def test_a_pushed_imports_key_is_its_notification_id_and_a_long_one_is_hashed_to_fit() -> None:
    assert idempotency_key("ebay", "abc_def") == "push:ebay:abc_def"
    long_key = idempotency_key("etsy", "x" * 300)
    assert len(long_key) <= 200
    assert long_key.startswith("push:etsy:sha256:")
    assert idempotency_key("etsy", "x" * 300) == long_key != idempotency_key("etsy", "y" * 300)
