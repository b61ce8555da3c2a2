"""eBay's push notifications, verified (no I/O here): the endpoint's challenge, and each message's signature.

The challenge: when the endpoint is registered (the account deletion endpoint in eBay's developer portal, or a
Notification API destination), eBay calls `GET ?challenge_code=…` and expects
`{"challengeResponse": hex(SHA-256(challengeCode + verificationToken + endpointURL))}`.

The signature: `X-EBAY-SIGNATURE` is base64 of the JSON `{"alg": "ecdsa", "kid": <public key id>, "signature":
<base64 DER ECDSA signature>, "digest": "SHA1"}`; the public key is the Notification API's for that kid
(crosslist.notifications.public_keys). The signed bytes are the body as sent; eBay's own SDKs verify the compact
JSON of the parsed body, which is the same text for eBay's compact bodies, and is tried second.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MAX_HEADER_LENGTH = 2048  # a real header is about 250 characters
MAX_SIGNATURE_BYTES = 160  # a DER P-256 signature is at most 72 bytes; P-521 139
KID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_PEM_MARKERS = re.compile(r"-----(BEGIN|END) PUBLIC KEY-----")


class Unverified(Exception):
    """The message cannot be shown to come from eBay; `reason` says why, in a word (logged, never acted on)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignatureHeader:
    kid: str
    signature: bytes  # DER


def challenge_response(challenge_code: str, verification_token: str, endpoint: str) -> str:
    """What eBay expects back from the endpoint's challenge."""
    digest = hashlib.sha256()
    for part in (challenge_code, verification_token, endpoint):
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def parse_signature_header(value: str | None) -> SignatureHeader:
    """The header's key id and signature; Unverified when it is missing or not eBay's shape."""
    if not value:
        raise Unverified("unsigned")
    if len(value) > MAX_HEADER_LENGTH:
        raise Unverified("malformed_signature_header")
    try:
        header = json.loads(base64.b64decode(value.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise Unverified("malformed_signature_header") from None
    if not isinstance(header, dict):
        raise Unverified("malformed_signature_header")
    alg, kid, signature = header.get("alg"), header.get("kid"), header.get("signature")
    digest = header.get("digest", "SHA1")
    if not isinstance(alg, str) or alg.lower() != "ecdsa" or not isinstance(digest, str) or digest.upper() != "SHA1":
        raise Unverified("unsupported_algorithm")
    if not isinstance(kid, str) or not KID.match(kid):
        raise Unverified("malformed_signature_header")
    if not isinstance(signature, str):
        raise Unverified("malformed_signature_header")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Unverified("malformed_signature_header") from None
    if not 0 < len(der) <= MAX_SIGNATURE_BYTES:
        raise Unverified("malformed_signature_header")
    return SignatureHeader(kid, der)


def load_public_key(key: str) -> ec.EllipticCurvePublicKey:
    """eBay's public key as getPublicKey gives it (PEM, its lines often run together); ValueError when it is not
    an EC public key."""
    body = "".join(_PEM_MARKERS.sub("", key).split())
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    loaded = load_pem_public_key(f"-----BEGIN PUBLIC KEY-----\n{lines}\n-----END PUBLIC KEY-----\n".encode())
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic curve public key")
    return loaded


def verify(body: bytes, header: SignatureHeader, key: ec.EllipticCurvePublicKey) -> None:
    """Unverified unless `header`'s signature over the body (as sent, or as compact JSON) is `key`'s."""
    for signed in _signed_texts(body):
        try:
            key.verify(header.signature, signed, ec.ECDSA(hashes.SHA1()))  # SHA-1: eBay's choice, not ours
        except InvalidSignature:
            continue
        return
    raise Unverified("bad_signature")


def _signed_texts(body: bytes) -> list[bytes]:
    texts = [body]
    try:
        compact = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode()
    except ValueError:
        return texts
    return texts if compact == body else [*texts, compact]
