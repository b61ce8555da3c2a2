"""Opening a WebSocket: a valid token registers the connection for two hours; anything else is refused."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.conftest import Backend
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration


def connections(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return list(aws["dynamodb"].scan(TableName="ConnectionsTable")["Items"])


def test_a_valid_token_registers_the_connection_until_api_gateways_two_hour_limit(
    backend: Backend, aws: dict[str, Any]
) -> None:
    before = time.time()
    status, connection_id = backend.connect("alice")
    assert status == 200
    [item] = connections(aws)
    assert (item["connection_id"]["S"], item["user_id"]["S"]) == (connection_id, "alice")
    assert before * 1000 <= int(item["connected_at"]["N"]) <= time.time() * 1000
    assert int(item["expires_at"]["N"]) - before == pytest.approx(7200, abs=2)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        token_for("alice", expires_in=-60),
        token_for("alice", secret="not-the-secret-of-this-app-0123456789"),
    ],
)
def test_a_missing_invalid_or_expired_token_is_refused(backend: Backend, aws: dict[str, Any], token: str) -> None:
    status, _ = backend.connect(token=token)
    assert status == 401
    assert connections(aws) == []


def test_disconnect_closes_the_connection_for_a_short_grace_period(backend: Backend, aws: dict[str, Any]) -> None:
    _, kept = backend.connect("alice")
    _, closed = backend.connect("alice")
    backend.disconnect(closed)
    backend.disconnect("never-connected=")  # a $disconnect for an unknown connection creates nothing
    items = {item["connection_id"]["S"]: item for item in connections(aws)}
    assert set(items) == {kept, closed}
    assert "closed_at" not in items[kept]
    # Kept only long enough to recognise a result sent just before closing.
    assert int(items[closed]["expires_at"]["N"]) - time.time() == pytest.approx(300, abs=2)
