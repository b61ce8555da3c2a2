"""Live progress to every open connection of a user (best effort: a job never fails for it)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from crosslist.realtime.connections import Connection, ConnectionStore
from crosslist.realtime.gateway import ConnectionGateway, ConnectionGone, encode

logger = Logger(child=True)


class Notifier:
    def __init__(self, connections: ConnectionStore, gateway: ConnectionGateway) -> None:
        self._connections = connections
        self._gateway = gateway

    def to_user(self, user_id: str, message: dict[str, Any], *, connections: list[Connection] | None = None) -> int:
        """Send to all the user's connections (read here unless the caller has them); returns how many
        received it."""
        data = encode(message)
        delivered = 0
        for connection in self._connections.for_user(user_id) if connections is None else connections:
            try:
                self._gateway.post(connection.connection_id, data)
                delivered += 1
            except ConnectionGone:
                self._connections.close(connection.connection_id)
            except Exception:
                logger.exception("progress message not delivered", extra={"connection_id": connection.connection_id})
        return delivered

    def to_connection(self, connection_id: str, message: dict[str, Any]) -> None:
        try:
            self._gateway.post(connection_id, encode(message))
        except ConnectionGone:
            self._connections.close(connection_id)
