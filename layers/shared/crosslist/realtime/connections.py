"""The Connections table: which WebSocket connections each user has open."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from crosslist.realtime.conditional import update_if

# API Gateway closes a WebSocket connection after 2 hours at most.
CONNECTION_LIFETIME_SECONDS = 2 * 60 * 60
# A closed connection is kept this long: a result the tab sent just before closing may be handled
# after its $disconnect (API Gateway runs both concurrently) and must still be recognised as the user's.
CLOSED_CONNECTION_GRACE_SECONDS = 5 * 60
# Messages one connection may send per window. A tab sends one result per plugin command (and the
# extension runs one command at a time, paced like a person) plus a rare plugin_status: far below this.
MESSAGE_WINDOW_SECONDS = 10
MESSAGES_PER_WINDOW = 50


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    connected_at_ms: int
    expires_at: int
    closed: bool = False
    # The tab said its browser extension can execute commands (plugin_status ready:true), and when.
    ready: bool = False
    ready_at_ms: int = 0
    extension_version: str | None = None
    vinted_logged_in: bool = True
    challenge: bool = False  # Vinted shows this browser a bot challenge (DataDome captcha)
    vinted_user_id: str | None = None  # the Vinted account the extension is logged in as

    def is_live(self, now: float) -> bool:
        return self.expires_at > now

    @property
    def takes_commands(self) -> bool:
        return self.ready and self.vinted_logged_in and not self.challenge


@dataclass(frozen=True)
class CountedMessage:
    """A message counted against its connection's budget: who sent it, and whether it is over budget."""

    sender: Connection
    over_limit: bool
    first_over_limit: bool  # the first refused message of its window: the one the sender is told about


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
        update_if(
            self._table,
            Key={"connection_id": connection_id},
            UpdateExpression="SET closed_at = :now, expires_at = :expires",
            ConditionExpression="attribute_exists(connection_id)",
            ExpressionAttributeValues={":now": int(now), ":expires": int(now) + CLOSED_CONNECTION_GRACE_SECONDS},
        )

    def set_plugin_status(
        self,
        connection_id: str,
        user_id: str,
        *,
        ready: bool,
        extension_version: str | None,
        vinted_logged_in: bool = True,
        challenge: bool = False,
        vinted_user_id: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Record whether this open connection's extension can execute commands; False if it is not open."""
        now = time.time() if now is None else now
        recorded = update_if(
            self._table,
            Key={"connection_id": connection_id},
            UpdateExpression="SET ready = :ready, ready_at = :now, extension_version = :version,"
            " vinted_logged_in = :logged_in, challenge = :challenge, vinted_user_id = :account",
            ConditionExpression=(
                "attribute_exists(connection_id) AND user_id = :user AND attribute_not_exists(closed_at)"
            ),
            ExpressionAttributeValues={
                ":ready": ready,
                ":now": int(now * 1000),
                ":version": extension_version,
                ":logged_in": vinted_logged_in,
                ":challenge": challenge,
                ":account": vinted_user_id,
                ":user": user_id,
            },
        )
        return recorded is not None

    def set_logged_out(self, connection_id: str) -> None:
        """Vinted answered 401 to a command of this tab: it gets none until its extension says it is logged in."""
        update_if(
            self._table,
            Key={"connection_id": connection_id},
            UpdateExpression="SET vinted_logged_in = :false",
            ConditionExpression="attribute_exists(connection_id)",
            ExpressionAttributeValues={":false": False},
        )

    def count_message(self, connection_id: str, now: float | None = None) -> CountedMessage | None:
        """Count one incoming message against its connection's window (one write, which also tells whose
        connection it is). None when the connection is unknown or expired."""
        now = time.time() if now is None else now
        window = int(now) // MESSAGE_WINDOW_SECONDS
        for _ in range(2):
            try:  # the usual case: a message in the current window
                item = self._table.update_item(
                    Key={"connection_id": connection_id},
                    UpdateExpression="ADD msg_count :one",
                    ConditionExpression="msg_window = :window",
                    ExpressionAttributeValues={":one": 1, ":window": window},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                if "Item" not in exc.response:
                    return None
                item = self._start_window(connection_id, window)
                if item is None:  # another message started this window first: count in it
                    continue
            connection = _from_item(item)
            # DynamoDB deletes expired items lazily (and moto never does): check the TTL ourselves.
            if not connection.is_live(now):
                return None
            count = int(item["msg_count"])
            return CountedMessage(connection, count > MESSAGES_PER_WINDOW, count == MESSAGES_PER_WINDOW + 1)
        return None

    def _start_window(self, connection_id: str, window: int) -> dict[str, Any] | None:
        return update_if(
            self._table,
            Key={"connection_id": connection_id},
            UpdateExpression="SET msg_window = :window, msg_count = :one",
            ConditionExpression="attribute_exists(connection_id) AND "
            "(attribute_not_exists(msg_window) OR msg_window < :window)",
            ExpressionAttributeValues={":one": 1, ":window": window},
            ReturnValues="ALL_NEW",
        )

    def live_users(self) -> set[str]:
        """Every user with an open connection. A scan, paged: for the sync rules' scheduler (every minute),
        never on a request's path."""
        now = time.time()
        users: set[str] = set()
        scan: dict[str, Any] = {"ProjectionExpression": "user_id, expires_at, closed_at"}
        while True:
            page = self._table.scan(**scan)
            users.update(
                str(item["user_id"])
                for item in page.get("Items", [])
                if int(item.get("expires_at", 0)) > now and "closed_at" not in item
            )
            if "LastEvaluatedKey" not in page:
                return users
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

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
        ready=bool(item.get("ready", False)),
        ready_at_ms=int(item.get("ready_at", 0)),
        extension_version=item.get("extension_version"),
        vinted_logged_in=bool(item.get("vinted_logged_in", True)),
        challenge=bool(item.get("challenge", False)),
        vinted_user_id=item.get("vinted_user_id"),
    )
