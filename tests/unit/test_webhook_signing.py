"""Standard Webhooks signatures: the spec's published vector, and what verify refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from crosslist.webhooks.signing import (
    SECRET_PREFIX,
    WebhookVerificationError,
    new_secret,
    secret_key,
    sign,
    verify,
)

# The test vector of the Standard Webhooks reference libraries (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py, test_sign_function).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str, msg_id: str = SPEC_ID, timestamp: int = SPEC_TIMESTAMP) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_the_specs_vector_is_signed_as_published() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    assert sign(SPEC_SECRET.removeprefix(SECRET_PREFIX), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.encode()) == SPEC_SIGNATURE


def test_a_signature_is_an_hmac_of_id_timestamp_and_body_under_the_decoded_secret() -> None:
    secret = new_secret()
    body = b'{"type":"job.completed","timestamp":"2026-12-07T12:00:00Z","data":{"job_id":"x"}}'
    expected = hmac.new(base64.b64decode(secret[len("whsec_") :]), b"msg_1.1700000000." + body, hashlib.sha256)
    assert sign(secret, "msg_1", 1700000000, body) == "v1," + base64.b64encode(expected.digest()).decode()


def test_the_specs_vector_verifies_within_the_tolerance_either_way() -> None:
    verify(SPEC_SECRET, headers(SPEC_SIGNATURE), SPEC_BODY, now=SPEC_TIMESTAMP)
    verify(SPEC_SECRET, headers(SPEC_SIGNATURE), SPEC_BODY, now=SPEC_TIMESTAMP + 300)
    verify(SPEC_SECRET, headers(SPEC_SIGNATURE), SPEC_BODY.encode(), now=SPEC_TIMESTAMP - 300)
    # Header names in any case, as HTTP servers hand them over.
    verify(SPEC_SECRET, {k.title(): v for k, v in headers(SPEC_SIGNATURE).items()}, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_one_matching_signature_among_several_is_enough() -> None:
    several = f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,abc {SPEC_SIGNATURE}"
    verify(SPEC_SECRET, headers(several), SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"body": '{"test": 2432232315}'}, "no v1 signature matches"),
        ({"body": SPEC_BODY + " "}, "no v1 signature matches"),
        ({"timestamp": SPEC_TIMESTAMP + 1}, "no v1 signature matches"),
        ({"msg_id": "msg_p5jXN8AQM9LWM0D4loKWxJel"}, "no v1 signature matches"),
        ({"secret": new_secret()}, "no v1 signature matches"),
        ({"signature": "v2" + SPEC_SIGNATURE[2:]}, "no v1 signature matches"),
        ({"now": SPEC_TIMESTAMP + 301}, "more than 300 s"),
        ({"now": SPEC_TIMESTAMP - 301}, "more than 300 s"),
    ],
)
def test_a_tampered_body_id_timestamp_or_an_old_attempt_is_refused(changed: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {
        "secret": SPEC_SECRET,
        "body": SPEC_BODY,
        "msg_id": SPEC_ID,
        "timestamp": SPEC_TIMESTAMP,
        "signature": SPEC_SIGNATURE,
        "now": SPEC_TIMESTAMP,
        **changed,
    }
    sent = headers(str(args["signature"]), str(args["msg_id"]), int(str(args["timestamp"])))
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(str(args["secret"]), sent, str(args["body"]), now=float(str(args["now"])))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    sent = headers(SPEC_SIGNATURE)
    del sent[missing]
    with pytest.raises(WebhookVerificationError, match="required"):
        verify(SPEC_SECRET, sent, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_a_timestamp_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="unix time"):
        verify(SPEC_SECRET, {**headers(SPEC_SIGNATURE), "webhook-timestamp": "hello"}, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_new_secrets_are_random_base64_of_32_bytes_behind_the_prefix() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert first != second
    assert len(secret_key(first)) == 32
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_not base64!")


def test_an_id_with_a_full_stop_is_never_signed() -> None:
    # The spec: the id and timestamp must not be able to shift the boundary of the signed content.
    with pytest.raises(ValueError, match=r"'\.'"):
        sign(SPEC_SECRET, "msg.1", SPEC_TIMESTAMP, SPEC_BODY)
