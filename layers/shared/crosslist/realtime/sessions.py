"""Use cases behind the WebSocket routes: open and close a connection, receive a plugin result."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from crosslist.auth.tokens import TokenVerifier
from crosslist.realtime.commands import PendingCommandStore, ResultRejected
from crosslist.realtime.connections import ConnectionStore
from crosslist.realtime.messages import PluginResultMessage, error_message
from crosslist.realtime.notifier import Notifier


def open_connection(
    connection_id: str, token: str | None, verifier: TokenVerifier, connections: ConnectionStore
) -> str:
    """Register a connection for the user its token names; raises Unauthorized."""
    user_id = verifier.user_id(token)
    connections.add(connection_id, user_id)
    return user_id


class PluginResults:
    """Apply results the browser extension sends back, through the user's web app."""

    def __init__(self, connections: ConnectionStore, commands: PendingCommandStore, notifier: Notifier) -> None:
        self._connections = connections
        self._commands = commands
        self._notifier = notifier

    def receive(self, connection_id: str, body: str | None) -> dict[str, Any] | None:
        """Resolve the command the message answers. Returns the error sent back to the sender, if any."""
        error = self._apply(connection_id, body)
        if error is not None:
            self._notifier.to_connection(connection_id, error)
        return error

    def _apply(self, connection_id: str, body: str | None) -> dict[str, Any] | None:
        try:
            raw = json.loads(body or "")
        except json.JSONDecodeError:
            return error_message("invalid_message", "the message is not valid JSON")
        if not isinstance(raw, dict):
            return error_message("invalid_message", "the message must be a JSON object")
        request_id = raw.get("request_id") if isinstance(raw.get("request_id"), str) else None
        if raw.get("action") != "plugin_result":
            return error_message(
                "invalid_message", f"unknown action {raw.get('action')!r}; expected 'plugin_result'", request_id
            )
        try:
            message = PluginResultMessage.model_validate(raw)
        except ValidationError as invalid:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in invalid.errors()
            )
            return error_message("invalid_message", reasons, request_id)

        sender = self._connections.get(connection_id)
        if sender is None:
            return error_message("forbidden", "this connection is not registered", message.request_id)
        try:
            self._commands.resolve(
                message.request_id,
                sender.user_id,
                success=message.success,
                result=message.result,
                error=message.error,
            )
        except ResultRejected as rejected:
            return error_message(rejected.code.value, rejected.message, message.request_id)
        return None
