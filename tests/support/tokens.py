"""JWTs as the frontend's identity provider would issue them."""

from __future__ import annotations

import time

import jwt

from tests.conftest import JWT_SECRET


def token_for(user_id: str, *, expires_in: int = 3600, secret: str = JWT_SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + expires_in}, secret, algorithm="HS256")
