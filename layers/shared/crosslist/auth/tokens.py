"""Verify a JWT and return the user it names (its "sub" claim)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jwt

from crosslist.errors import Unauthorized

# Tolerated clock difference between the identity provider and Lambda.
LEEWAY_SECONDS = 30
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


class TokenVerifier:
    def __init__(
        self,
        algorithm: str,
        key: Callable[[str], Any],
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self._algorithm = algorithm
        self._key = key  # token -> verification key (a shared secret, or the JWKS key named by "kid")
        self._audience = audience
        self._issuer = issuer

    @classmethod
    def hs256(cls, secret: str, audience: str | None = None, issuer: str | None = None) -> TokenVerifier:
        return cls("HS256", lambda _token: secret, audience, issuer)

    @classmethod
    def rs256(cls, jwks_url: str, audience: str | None = None, issuer: str | None = None) -> TokenVerifier:
        jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=5)
        return cls("RS256", lambda token: jwks.get_signing_key_from_jwt(token).key, audience, issuer)

    def user_id(self, token: str | None) -> str:
        if not token:
            raise Unauthorized("a bearer token is required")
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code="token_expired") from None
        except (jwt.PyJWTError, ValueError) as invalid:
            raise Unauthorized(f"invalid token: {invalid}") from None
        subject = claims["sub"]
        # The user id is stored in PostgreSQL and DynamoDB and used in SQS group ids: printable text only.
        if not isinstance(subject, str) or not 0 < len(subject) <= 128 or _UNPRINTABLE.search(subject):
            raise Unauthorized(
                "invalid token: 'sub' must be 1 to 128 printable characters (no NUL or control characters)"
            )
        return subject


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
