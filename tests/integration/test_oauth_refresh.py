"""The oauth_refresh schedule finds the eBay and Etsy credentials about to expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from crosslist import runtime
from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_only_active_refreshable_credentials_expiring_soon_are_due(sql: Any) -> None:
    now = datetime.now(UTC)
    rows = [
        ("due", "ebay", now + timedelta(minutes=5), b"refresh", "active"),
        ("later", "ebay", now + timedelta(hours=2), b"refresh", "active"),
        ("no-refresh-token", "etsy", now + timedelta(minutes=5), None, "active"),
        ("needs-reauth", "etsy", now - timedelta(minutes=5), b"refresh", "needs_reauth"),
    ]
    with sql.begin() as connection:
        for user_id, marketplace, expires_at, refresh, status in rows:
            connection.execute(
                text(
                    "INSERT INTO oauth_credentials (id, user_id, marketplace, access_token_encrypted,"
                    " refresh_token_encrypted, scopes, expires_at, status)"
                    " VALUES (gen_random_uuid(), :u, :m, :a, :r, '', :e, :s)"
                ),
                {"u": user_id, "m": marketplace, "a": b"access", "r": refresh, "e": expires_at, "s": status},
            )
    runtime.reset()
    handler = load_handler(REPO / "functions" / "oauth_refresh")
    # No KMS key in this environment: counted, left alone (test_credentials.py refreshes with one).
    assert handler({"schedule": "oauth_refresh"}, LambdaContext("oauth_refresh")) == {
        "due_for_refresh": 1,
        "not_configured": 1,
    }
