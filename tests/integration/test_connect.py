"""Connecting an eBay or Etsy account (real PostgreSQL, moto's KMS): the authorization URL, the callback that
sends the browser back to the web app, the completion with the user's token that stores the credential, and
the state that makes a forged, replayed, expired or someone else's authorization store nothing."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from crosslist.auth.connect import Connector
from crosslist.auth.credentials import CredentialStore, InvalidGrant, TokenSet
from crosslist.auth.oauth_clients import OAuthApp
from crosslist.auth.vault import KmsKeys
from crosslist.db.engine import make_engine, make_session_factory
from crosslist.errors import BadRequest, InvalidRequest

pytestmark = pytest.mark.integration

APPS = {
    "etsy": OAuthApp(
        "etsy",
        "etsy-app",
        "etsy-secret",
        "https://api.etsy.test/v3/public/oauth/token",
        scopes="listings_r listings_w transactions_r",
        authorize_url="https://www.etsy.test/oauth/connect",
        redirect_uri="https://app.example.com/marketplaces/etsy/callback",
    ),
    "ebay": OAuthApp(
        "ebay",
        "ebay-app",
        "ebay-secret",
        "https://api.ebay.test/identity/v1/oauth2/token",
        scopes="https://api.ebay.com/oauth/api_scope/sell.inventory",
        authorize_url="https://auth.ebay.test/oauth2/authorize",
        redirect_uri="crosslist-RuName",
    ),
}


WEB_APP = "https://app.example.com"


class TokenEndpoint:
    """The marketplace's token endpoint: which codes (and PKCE verifiers) it was shown; "bogus" it refuses."""

    def __init__(self) -> None:
        self.exchanged: list[tuple[str, str | None]] = []

    def exchange(self, code: str, code_verifier: str | None) -> TokenSet:
        self.exchanged.append((code, code_verifier))
        if code == "bogus":
            raise InvalidGrant("the authorization code is invalid or was issued to another client")
        return TokenSet(f"access-for-{code}", datetime.now(UTC) + timedelta(hours=1), refresh_token=f"refresh-{code}")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(database: str) -> Iterator[tuple[Connector, CredentialStore, TokenEndpoint, Clock]]:
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        engine = make_engine(database)
        sessions = make_session_factory(engine)
        store = CredentialStore(sessions, KmsKeys(kms, key_id))
        endpoint, clock = TokenEndpoint(), Clock()
        connector = Connector(
            sessions, lambda: store, APPS.get, lambda app: endpoint, web_app_origins=[WEB_APP], clock=clock
        )
        yield connector, store, endpoint, clock
        engine.dispose()


def state_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_connecting_etsy_uses_pkce_and_stores_the_credential_for_the_user_who_started_it(world: Any) -> None:
    connector, store, endpoint, _ = world
    url = connector.authorization_url("alice", "etsy")

    query = state_of(url)
    assert url.startswith("https://www.etsy.test/oauth/connect?")
    assert (query["client_id"], query["redirect_uri"], query["code_challenge_method"]) == (
        "etsy-app",
        APPS["etsy"].redirect_uri,
        "S256",
    )
    connector.complete("alice", "etsy", "code-1", query["state"])

    [(code, verifier)] = endpoint.exchanged
    assert code == "code-1"
    assert verifier is not None
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert challenge == query["code_challenge"]  # the verifier Etsy gets matches the challenge it was shown
    assert store.access_token("alice", "etsy", endpoint) == "access-for-code-1"
    assert [(c.marketplace, c.status) for c in connector.connections("alice")] == [
        ("ebay", "not_connected"),
        ("etsy", "connected"),
    ]


def test_ebay_gets_no_pkce_and_its_runame_as_the_redirect(world: Any) -> None:
    connector, _, endpoint, _ = world
    query = state_of(connector.authorization_url("bob", "ebay"))
    assert "code_challenge" not in query
    assert query["redirect_uri"] == "crosslist-RuName"
    connector.complete("bob", "ebay", "c", query["state"])
    assert endpoint.exchanged == [("c", None)]


def test_a_forged_replayed_expired_or_misdirected_state_stores_nothing(world: Any) -> None:
    connector, _, endpoint, clock = world
    used = state_of(connector.authorization_url("alice", "etsy"))["state"]
    connector.complete("alice", "etsy", "code-1", used)
    for_ebay = state_of(connector.authorization_url("alice", "ebay"))["state"]
    expired = state_of(connector.authorization_url("alice", "etsy"))["state"]
    clock.now += timedelta(minutes=11)

    for marketplace, state in (
        ("etsy", "forged-" + "x" * 40),
        ("etsy", used),  # replayed
        ("etsy", expired),
        ("etsy", for_ebay),  # started for eBay
    ):
        with pytest.raises(BadRequest) as refused:
            connector.complete("alice", marketplace, "code-2", state)
        assert refused.value.code == "invalid_state"
    assert endpoint.exchanged == [("code-1", endpoint.exchanged[0][1])]  # only the first, honest one


def test_disconnecting_forgets_the_credential_and_vinted_is_not_an_oauth_marketplace(world: Any) -> None:
    connector, _, _, _ = world
    connector.complete("carol", "etsy", "code", state_of(connector.authorization_url("carol", "etsy"))["state"])
    assert connector.disconnect("carol", "etsy") is True
    assert connector.disconnect("carol", "etsy") is False
    assert {c.status for c in connector.connections("carol")} == {"not_connected"}
    with pytest.raises(InvalidRequest) as refused:
        connector.authorization_url("carol", "vinted")
    assert refused.value.code == "marketplace_not_available"


def test_an_authorization_started_by_one_user_cannot_link_another_users_account(world: Any) -> None:
    """Account-linking CSRF: carol sends her own authorization URL to a victim, who approves it. The callback
    only sends the victim's browser back to the web app; the victim's web app completes with the victim's
    token, which is not carol's: nothing is linked, to either of them."""
    connector, _, endpoint, _ = world
    carols = state_of(connector.authorization_url("carol", "ebay"))["state"]
    # eBay sends the victim's browser to the callback with the victim's code and carol's state.
    back = state_of(connector.returning("ebay", carols, "victims-code", None))
    assert (back["state"], back["code"]) == (carols, "victims-code")

    with pytest.raises(BadRequest) as refused:
        connector.complete("victim", "ebay", back["code"], back["state"])
    assert refused.value.code == "invalid_state"
    assert endpoint.exchanged == []  # the victim's code was never even exchanged
    assert {c.status for c in connector.connections("carol")} == {"not_connected"}
    assert {c.status for c in connector.connections("victim")} == {"not_connected"}


def test_the_callback_returns_to_the_web_app_page_the_user_started_from(world: Any) -> None:
    connector, _, _, _ = world
    started = state_of(connector.authorization_url("alice", "etsy", f"{WEB_APP}/settings?tab=shops"))["state"]
    back = urlsplit(connector.returning("etsy", started, "c1", None))
    assert (back.scheme, back.netloc, back.path) == ("https", "app.example.com", "/settings")
    assert state_of(back.geturl()) == {"tab": "shops", "marketplace": "etsy", "state": started, "code": "c1"}

    denied = state_of(connector.returning("etsy", started, None, "access_denied"))
    assert denied["error"] == "access_denied"
    assert "code" not in denied
    # An unknown state has no page of its own: the web app's first origin, told why.
    unknown = connector.returning("etsy", "forged", "c2", None)
    assert unknown == f"{WEB_APP}/?marketplace=etsy&error=invalid_state"
    default = state_of(connector.authorization_url("alice", "ebay"))["state"]
    assert connector.returning("ebay", default, "c3", None).startswith(f"{WEB_APP}/?")


@pytest.mark.parametrize(
    "return_to",
    [
        "https://evil.example/settings",
        "https://app.example.com.evil.example/",
        "https://app.example.com@evil.example/",
        "http://app.example.com/",  # another scheme is another origin
        "https://app.example.com:8443/",
        "https://app.example.com\\@evil.example/",
        "https://app.example.com/#fragment",
        "javascript:alert(1)",
        "//evil.example/",
        "/relative",
        "https://app.example.com/\tx",
    ],
)
def test_a_return_url_off_the_allowed_origins_is_refused(world: Any, return_to: str) -> None:
    connector, _, _, _ = world
    with pytest.raises(InvalidRequest) as refused:
        connector.authorization_url("alice", "ebay", return_to)
    assert refused.value.code == "return_to_not_allowed"


def test_a_code_the_marketplace_refuses_is_a_400_saying_so(world: Any) -> None:
    connector, _, _, _ = world
    state = state_of(connector.authorization_url("alice", "etsy"))["state"]
    with pytest.raises(BadRequest) as refused:
        connector.complete("alice", "etsy", "bogus", state)
    assert refused.value.code == "authorization_failed"
    assert "invalid or was issued to another client" in refused.value.message
    assert {c.status for c in connector.connections("alice")} == {"not_connected"}


@pytest.fixture
def etsy_app(backend: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, list[str]]]]:
    """Etsy registered for the HTTP API (moto's KMS and secrets), its token endpoint answering in process: the
    forms it was sent (the code "bogus" it refuses)."""
    import json

    import httpx

    from crosslist import runtime

    kms = boto3.client("kms", region_name="us-east-1")
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    app = {"client_id": "etsy-app", "client_secret": "s", "redirect_uri": "https://app.example.com/cb", "scopes": "x"}
    arn = secrets.create_secret(Name="etsy-app", SecretString=json.dumps(app))["ARN"]
    monkeypatch.setenv("CREDENTIALS_KEY_ID", kms.create_key()["KeyMetadata"]["KeyId"])
    monkeypatch.setenv("ETSY_OAUTH_SECRET_ARN", arn)
    monkeypatch.setenv("WEB_APP_ORIGINS", WEB_APP)
    runtime.settings.cache_clear()
    runtime.credential_store.cache_clear()
    exchanged: list[dict[str, list[str]]] = []

    def etsy(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        exchanged.append(form)
        if form["code"] == ["bogus"]:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "code is invalid"})
        return httpx.Response(200, json={"access_token": "a1", "expires_in": 3600, "refresh_token": "r1"})

    monkeypatch.setattr(runtime, "_http_client", lambda: httpx.Client(transport=httpx.MockTransport(etsy)))
    yield exchanged
    runtime.settings.cache_clear()
    runtime.credential_store.cache_clear()


def test_connecting_etsy_through_the_http_api(backend: Any, etsy_app: list[dict[str, list[str]]]) -> None:
    exchanged = etsy_app
    started = backend.http("GET", "/marketplaces/etsy/connect", query={"return_to": f"{WEB_APP}/accounts"})
    assert started.status == 200, started.body
    state = state_of(started.body["authorization_url"])["state"]
    # The marketplace sends the browser back: no crosslist token, so the callback only sends it on.
    back = backend.http("GET", "/marketplaces/etsy/callback", user=None, query={"code": "c1", "state": state})
    assert back.status == 302, back.body
    landed = state_of(back.headers["Location"])
    assert back.headers["Location"].startswith(f"{WEB_APP}/accounts?")
    assert (landed["code"], landed["state"], landed["marketplace"]) == ("c1", state, "etsy")
    assert exchanged == []  # nothing is exchanged until the user who started it completes it
    # A code the marketplace refuses is a 400 that says so (it was a 500); the user connects again.
    bogus_state = state_of(backend.http("GET", "/marketplaces/etsy/connect").body["authorization_url"])["state"]
    bogus = backend.http("POST", "/marketplaces/etsy/connect", body={"code": "bogus", "state": bogus_state})
    assert (bogus.status, bogus.body["code"]) == (400, "authorization_failed"), bogus.body
    assert "code is invalid" in bogus.body["message"]
    exchanged.clear()
    # bob cannot complete alice's authorization; alice can.
    completion = {"code": landed["code"], "state": landed["state"]}
    stolen = backend.http("POST", "/marketplaces/etsy/connect", user="bob", body=completion)
    assert (stolen.status, stolen.body["code"]) == (400, "invalid_state")
    done = backend.http("POST", "/marketplaces/etsy/connect", body=completion)
    assert (done.status, done.body) == (200, {"marketplace": "etsy", "status": "connected"})
    assert exchanged[0]["grant_type"] == ["authorization_code"]
    assert "code_verifier" in exchanged[0]
    listed = {m["marketplace"]: m["status"] for m in backend.http("GET", "/marketplaces").body}
    assert listed == {"ebay": "not_connected", "etsy": "connected"}
    assert backend.http("GET", "/marketplaces", user="bob").body[1]["status"] == "not_connected"

    replay = backend.http("POST", "/marketplaces/etsy/connect", body=completion)
    assert (replay.status, replay.body["code"]) == (400, "invalid_state")
    assert backend.http("DELETE", "/marketplaces/etsy").status == 204
    assert backend.http("DELETE", "/marketplaces/etsy").status == 404


def test_what_the_connect_routes_refuse(backend: Any, etsy_app: list[dict[str, list[str]]]) -> None:
    completion = {"code": "c1", "state": "s" * 43}
    replay = backend.http("POST", "/marketplaces/etsy/connect", body=completion)
    assert (replay.status, replay.body["code"]) == (400, "invalid_state")
    elsewhere = backend.http("GET", "/marketplaces/etsy/connect", query={"return_to": "https://evil.example/"})
    assert (elsewhere.status, elsewhere.body["code"]) == (422, "return_to_not_allowed")
    denied = backend.http(
        "GET", "/marketplaces/etsy/callback", user=None, query={"error": "access_denied", "state": "s"}
    )
    assert denied.status == 302
    assert state_of(denied.headers["Location"])["error"] == "invalid_state"
    unauthenticated = backend.http("POST", "/marketplaces/etsy/connect", user=None, body=completion)
    assert unauthenticated.status == 401
    assert backend.http("GET", "/marketplaces/vinted/connect").status == 422
    assert backend.http("GET", "/marketplaces/etsy/connect", user=None).status == 401
    assert etsy_app == []


def test_no_token_or_secret_reaches_the_logs_of_a_connect_and_refresh(
    world: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Powertools logs go to stdout as JSON; Python logging too: neither may carry a token."""
    import logging

    from crosslist.auth.refresh import refresh_due

    caplog.set_level(logging.DEBUG)
    connector, store, endpoint, _ = world
    state = state_of(connector.authorization_url("alice", "etsy"))["state"]
    connector.complete("alice", "etsy", "code-secret-1", state)

    class Refusing:
        def refresh(self, refresh_token: str) -> TokenSet:
            raise RuntimeError("token endpoint down")  # logged by refresh_due, with its traceback

    from crosslist.auth.credentials import DueCredential

    due = [DueCredential(uuid.uuid4(), "alice", "etsy", datetime.now(UTC), 0)]
    assert refresh_due(store, due, lambda _: Refusing()).failed == 1
    assert store.access_token("alice", "etsy", endpoint) == "access-for-code-secret-1"

    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert "token endpoint down" in logged  # the failure is logged…
    for secret in ("access-for-code-secret-1", "refresh-code-secret-1", "etsy-secret"):
        assert secret not in logged  # …never a token nor the app's secret
