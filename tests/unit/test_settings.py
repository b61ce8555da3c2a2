"""Configuration read from the environment."""

from __future__ import annotations

import pytest

from crosslist.settings import Settings


def test_marketplace_endpoints_default_to_production_and_can_point_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().ebay_api_base == "https://api.ebay.com"
    monkeypatch.setenv("CROSSLIST_EBAY_API_BASE", "https://api.sandbox.ebay.com")
    monkeypatch.setenv("CROSSLIST_ETSY_OAUTH_TOKEN_URL", "http://127.0.0.1:9999/oauth/token")
    settings = Settings()
    assert settings.ebay_api_base == "https://api.sandbox.ebay.com"
    assert settings.etsy_oauth_token_url == "http://127.0.0.1:9999/oauth/token"
    assert settings.etsy_api_base == "https://openapi.etsy.com/v3"


def test_blank_values_from_cloudformation_parameters_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_JWKS_URL", "")
    monkeypatch.setenv("DATABASE_SECRET_ARN", "")
    settings = Settings()
    assert settings.jwt_jwks_url is None
    assert settings.database_secret_arn is None


def test_an_unknown_jwt_algorithm_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHM", "none")
    with pytest.raises(ValueError, match="jwt_algorithm"):
        Settings()
