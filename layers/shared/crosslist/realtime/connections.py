"""The Connections table: which WebSocket connections each user has open."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

# API Gateway closes a WebSocket connection after 2 hours at most.
CONNECTION_LIFETIME_SECONDS = 2 * 60 * 60


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    connected_at_ms: int
    expires_at: int

    def is_live(self, now: float) -> bool:
        return self.expires_at > now


class ConnectionStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def add(self, connection_id: str, user_id: str, now: float | None = None) -> Connection:
        now = time.time() if now is None else now
        connection = Connection(
            connection_id=connection_id,
            user_id=user_id,
            connected_at_ms=int(now * 1000),
            expires_at=int(now) + CONNECTION_LIFETIME_SECONDS,
        )
        self._table.put_item(
            Item={
                "connection_id": connection.connection_id,
                "user_id": connection.user_id,
                "connected_at": connection.connected_at_ms,
                "expires_at": connection.expires_at,
            }
        )
        return connection

    def remove(self, connection_id: str) -> None:
        self._table.delete_item(Key={"connection_id": connection_id})

    def get(self, connection_id: str) -> Connection | None:
        item = self._table.get_item(Key={"connection_id": connection_id}).get("Item")
        if item is None:
            return None
        connection = _from_item(item)
        # DynamoDB deletes expired items lazily (and moto never does): check the TTL ourselves.
        return connection if connection.is_live(time.time()) else None

    def for_user(self, user_id: str) -> list[Connection]:
        """The user's live connections, most recently connected first."""
        now = time.time()
        response = self._table.query(
            IndexName="by_user", KeyConditionExpression=Key("user_id").eq(user_id), ScanIndexForward=False
        )
        connections = [_from_item(item) for item in response.get("Items", [])]
        live = [c for c in connections if c.is_live(now)]
        return sorted(live, key=lambda c: c.connected_at_ms, reverse=True)


def _from_item(item: dict[str, Any]) -> Connection:
    return Connection(
        connection_id=str(item["connection_id"]),
        user_id=str(item["user_id"]),
        connected_at_ms=int(item["connected_at"]),
        expires_at=int(item["expires_at"]),
    )
