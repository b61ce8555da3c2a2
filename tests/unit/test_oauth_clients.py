"""The token endpoints' refresh grant, as eBay and Etsy document it, against httpx's mock transport."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from crosslist.auth.credentials import InvalidGrant
from crosslist.auth.oauth_clients import HttpTokenEndpoint, OAuthApp, TokenEndpointUnavailable

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOKEN_URLS = {
    "ebay": "https://api.ebay.com/identity/v1/oauth2/token",
    "etsy": "https://api.etsy.com/v3/public/oauth/token",
}


def endpoint(marketplace: str, handler: httpx.MockTransport) -> HttpTokenEndpoint:
    app = OAuthApp(marketplace, "app-id", "app-secret", TOKEN_URLS[marketplace], scopes="sell.inventory")  # type: ignore[arg-type]
    return HttpTokenEndpoint(app, httpx.Client(transport=handler), clock=lambda: NOW)


def test_etsy_gets_its_client_id_in_the_form_and_rotates_the_refresh_token() -> None:
    seen: list[httpx.Request] = []

    def etsy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "a2", "expires_in": 3600, "refresh_token": "r2"})

    tokens = endpoint("etsy", httpx.MockTransport(etsy)).refresh("r1")

    [request] = seen
    assert str(request.url) == TOKEN_URLS["etsy"]
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["r1"],
        "client_id": ["app-id"],
    }
    assert "authorization" not in request.headers
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at) == ("a2", "r2", NOW + timedelta(hours=1))


def test_ebay_authenticates_the_app_with_basic_auth_and_keeps_its_long_lived_refresh_token() -> None:
    seen: list[httpx.Request] = []

    def ebay(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"access_token": "v^1.1#a", "expires_in": 7200, "token_type": "User Access Token"}
        )

    tokens = endpoint("ebay", httpx.MockTransport(ebay)).refresh("v^1.1#r")

    [request] = seen
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"app-id:app-secret").decode()
    assert parse_qs(request.content.decode())["scope"] == ["sell.inventory"]
    assert tokens.refresh_token is None  # not rotated: the stored one stays
    assert tokens.expires_at == NOW + timedelta(hours=2)


def test_a_refused_refresh_token_is_invalid_grant() -> None:
    refused = httpx.MockTransport(lambda _: httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(InvalidGrant):
        endpoint("etsy", refused).refresh("r-old")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(429, json={"error": "rate_limited"}),
        httpx.Response(503, text="unavailable"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(400, json={"error": "invalid_request"}),
    ],
)
def test_anything_else_leaves_the_credential_as_it_was(answer: httpx.Response) -> None:
    with pytest.raises(TokenEndpointUnavailable):
        endpoint("ebay", httpx.MockTransport(lambda _: answer)).refresh("r")


def test_a_network_error_is_unavailable_not_a_refusal() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TokenEndpointUnavailable):
        endpoint("etsy", httpx.MockTransport(down)).refresh("r")
