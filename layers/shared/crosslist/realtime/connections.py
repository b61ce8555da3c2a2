"""The Connections table: which WebSocket connections each user has open."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

# API Gateway closes a WebSocket connection after 2 hours at most.
CONNECTION_LIFETIME_SECONDS = 2 * 60 * 60
# A closed connection is kept this long: a result the tab sent just before closing may be handled
# after its $disconnect (API Gateway runs both concurrently) and must still be recognised as the user's.
CLOSED_CONNECTION_GRACE_SECONDS = 5 * 60


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    connected_at_ms: int
    expires_at: int
    closed: bool = False

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

    def close(self, connection_id: str, now: float | None = None) -> None:
        """The connection is gone ($disconnect, or 410 from API Gateway): no command goes to it any more."""
        now = time.time() if now is None else now
        try:
            self._table.update_item(
                Key={"connection_id": connection_id},
                UpdateExpression="SET closed_at = :now, expires_at = :expires",
                ConditionExpression="attribute_exists(connection_id)",
                ExpressionAttributeValues={":now": int(now), ":expires": int(now) + CLOSED_CONNECTION_GRACE_SECONDS},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def get(self, connection_id: str) -> Connection | None:
        """The connection, open or recently closed (to tell whose a message is)."""
        item = self._table.get_item(Key={"connection_id": connection_id}).get("Item")
        if item is None:
            return None
        connection = _from_item(item)
        # DynamoDB deletes expired items lazily (and moto never does): check the TTL ourselves.
        return connection if connection.is_live(time.time()) else None

    def for_user(self, user_id: str) -> list[Connection]:
        """The user's open connections, most recently connected first."""
        now = time.time()
        response = self._table.query(
            IndexName="by_user", KeyConditionExpression=Key("user_id").eq(user_id), ScanIndexForward=False
        )
        connections = [_from_item(item) for item in response.get("Items", [])]
        live = [c for c in connections if c.is_live(now) and not c.closed]
        return sorted(live, key=lambda c: c.connected_at_ms, reverse=True)


def _from_item(item: dict[str, Any]) -> Connection:
    return Connection(
        connection_id=str(item["connection_id"]),
        user_id=str(item["user_id"]),
        connected_at_ms=int(item["connected_at"]),
        expires_at=int(item["expires_at"]),
        closed="closed_at" in item,
    )
