"""JWT verification: HS256 with a shared secret, RS256 with keys from a JWKS URL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from crosslist.auth.tokens import TokenVerifier, bearer_token
from crosslist.errors import Unauthorized

SECRET = "a-shared-secret-long-enough-for-hs256"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    # A day: the parameters are built at collection, and a whole suite may run before them.
    return {"sub": "alice", "iat": now, "exp": now + 86_400, **overrides}


def test_hs256_token_names_its_user() -> None:
    assert TokenVerifier.hs256(SECRET).user_id(jwt.encode(claims(), SECRET, algorithm="HS256")) == "alice"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "unauthorized"),
        (jwt.encode(claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256"), "token_expired"),
        (jwt.encode({k: v for k, v in claims().items() if k != "sub"}, SECRET, algorithm="HS256"), "unauthorized"),
        (jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, algorithm="HS256"), "unauthorized"),
        (jwt.encode(claims(sub=""), SECRET, algorithm="HS256"), "unauthorized"),
        (jwt.encode(claims(sub="ali\u0000ce"), SECRET, algorithm="HS256"), "unauthorized"),
        (jwt.encode(claims(sub="alice\n"), SECRET, algorithm="HS256"), "unauthorized"),
        (jwt.encode(claims(sub="a" * 129), SECRET, algorithm="HS256"), "unauthorized"),
        (jwt.encode(claims(), "x" * 40, algorithm="HS256"), "unauthorized"),
        (jwt.encode(claims(), "", algorithm="none"), "unauthorized"),
    ],
)
def test_hs256_refuses_what_it_cannot_trust(token: str | None, code: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        TokenVerifier.hs256(SECRET).user_id(token)
    assert refused.value.code == code


def test_audience_and_issuer_are_enforced_when_configured() -> None:
    verifier = TokenVerifier.hs256(SECRET, audience="crosslist", issuer="https://id.example.com")
    good = jwt.encode(claims(aud="crosslist", iss="https://id.example.com"), SECRET, algorithm="HS256")
    assert verifier.user_id(good) == "alice"
    with pytest.raises(Unauthorized):
        verifier.user_id(jwt.encode(claims(aud="another-app", iss="https://id.example.com"), SECRET, algorithm="HS256"))


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "key-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json", key
    server.shutdown()


def test_rs256_token_is_checked_against_the_jwks_key(jwks_server: tuple[str, Any]) -> None:
    url, key = jwks_server
    verifier = TokenVerifier.rs256(url)
    token = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "key-1"})
    assert verifier.user_id(token) == "alice"

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        verifier.user_id(jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "key-1"}))
    with pytest.raises(Unauthorized):  # an HS256 token signed with the public key must not pass as RS256
        verifier.user_id(jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "key-1"}))


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_bearer_token_is_taken_from_the_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
