"""The port through which the backend posts to a WebSocket connection (API Gateway management API)."""

from __future__ import annotations

import json
from typing import Any, Protocol

# API Gateway WebSocket frames: 128 KB per message.
MAX_MESSAGE_BYTES = 128 * 1024


class ConnectionGone(Exception):
    """The connection is closed (API Gateway answered 410 Gone)."""


class MessageTooLarge(Exception):
    pass


class ConnectionGateway(Protocol):
    def post(self, connection_id: str, data: bytes) -> None:
        """Send one message; raises ConnectionGone when the connection no longer exists."""

    def delete(self, connection_id: str) -> None:
        """Close the connection (API Gateway then runs its $disconnect, at best); raises ConnectionGone when
        it no longer exists."""


def encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":"), default=str).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES} bytes WebSocket limit")
    return data


class ApiGatewayManagementGateway:
    def __init__(self, client: Any) -> None:
        self._client = client

    def post(self, connection_id: str, data: bytes) -> None:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except self._client.exceptions.GoneException as gone:
            raise ConnectionGone(connection_id) from gone

    def delete(self, connection_id: str) -> None:
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except self._client.exceptions.GoneException as gone:
            raise ConnectionGone(connection_id) from gone
