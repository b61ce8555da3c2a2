"""The Connections table: which WebSocket connections each user has open."""

from __future__ import annotations

import enum
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
# Messages all of one user's connections may send per window, together: without it a user multiplies the
# budget above by opening tabs (MAX_CONNECTIONS_PER_USER x 50). A user's tabs send a plugin_status and maybe
# a resume when they connect and when the extension's state changes: even 20 tabs reconnecting at once
# (a network blip) send about 40, so 100 never holds back a person, and caps a flood spread over many tabs
# at twice one tab's budget.
MESSAGES_PER_USER_WINDOW = 100
# Open connections one user may have: a person has a few tabs on a few devices. Past this, connecting
# closes the oldest ones (each connection is an API Gateway connection and a record to keep and query).
MAX_CONNECTIONS_PER_USER = 20
# A user's message count for one window is an item of this table keyed by this prefix (a connection id
# API Gateway makes is base64 and never holds '#'). It has no user_id nor connected_at, so the by_user
# index never holds it and the scan of live users skips it; it expires by TTL after its window.
USER_BUDGET_KEY_PREFIX = "user-budget#"
# How many connections (and spent budgets) one Lambda instance remembers; past it, it starts over.
REMEMBERED_CONNECTIONS = 10_000


class Budget(enum.StrEnum):
    """Which message budget refused a message."""

    CONNECTION = "connection"
    USER = "user"


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
    """A message counted against its connection's and its user's budgets: who sent it, and whether it is
    over one of them (then it is dropped)."""

    sender: Connection
    refused_by: Budget | None = None
    first_refused: bool = False  # the first message that budget refused in its window: the sender is told

    @property
    def over_limit(self) -> bool:
        return self.refused_by is not None


class ConnectionStore:
    def __init__(self, table: Any) -> None:
        self._table = table
        # What this instance learnt from its counting writes, so that a flood's excess costs no request at
        # all: a connection's user never changes, and a budget spent in a window stays spent until the
        # window ends (counts only grow). Nothing is counted here: DynamoDB holds the counts.
        self._senders: dict[str, Connection] = {}  # connection id -> its record, as last counted
        self._spent_by_connection: dict[str, int] = {}  # connection id -> the window its budget is spent in
        self._spent_by_user: dict[str, int] = {}  # user id -> the window their budget is spent in

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
        connection it is), then, unless that refused it, against its user's window (one more write). A
        message to a budget this instance already saw spent in this window is refused with no request.
        None when the connection is unknown or expired."""
        now = time.time() if now is None else now
        window = int(now) // MESSAGE_WINDOW_SECONDS
        known = self._senders.get(connection_id)
        if known is not None:
            if self._spent_by_connection.get(connection_id) == window:
                return CountedMessage(known, Budget.CONNECTION)
            if self._spent_by_user.get(known.user_id) == window:
                return CountedMessage(known, Budget.USER)
        counted = self._count_for_connection(connection_id, now)
        if counted is None:
            return None
        self._remember(self._senders, connection_id, counted.sender)
        if counted.over_limit:
            self._remember(self._spent_by_connection, connection_id, window)
            return counted
        user_count = self._count_for_user(counted.sender.user_id, window)
        if user_count <= MESSAGES_PER_USER_WINDOW:
            return counted
        self._remember(self._spent_by_user, counted.sender.user_id, window)
        return CountedMessage(counted.sender, Budget.USER, user_count == MESSAGES_PER_USER_WINDOW + 1)

    @staticmethod
    def _remember[Remembered](memory: dict[str, Remembered], key: str, value: Remembered) -> None:
        if len(memory) >= REMEMBERED_CONNECTIONS:  # bounded: an instance can live for hours
            memory.clear()
        memory[key] = value

    def _count_for_user(self, user_id: str, window: int) -> int:
        """The user's messages in the window, this one included. One unconditional write: the window is
        part of the item's key, so a new window is a new item (no read, no reset, no race)."""
        item = self._table.update_item(
            Key={"connection_id": f"{USER_BUDGET_KEY_PREFIX}{window}#{user_id}"},
            UpdateExpression="ADD msg_count :one SET expires_at = :window_end",
            ExpressionAttributeValues={":one": 1, ":window_end": (window + 1) * MESSAGE_WINDOW_SECONDS},
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        return int(item["msg_count"])

    def _count_for_connection(self, connection_id: str, now: float) -> CountedMessage | None:
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
            if count <= MESSAGES_PER_WINDOW:
                return CountedMessage(connection)
            return CountedMessage(connection, Budget.CONNECTION, count == MESSAGES_PER_WINDOW + 1)
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
                # A user's message counter has no user_id: it is not a connection.
                if "user_id" in item and int(item.get("expires_at", 0)) > now and "closed_at" not in item
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
