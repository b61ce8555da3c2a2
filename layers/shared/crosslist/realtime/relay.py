"""Run one plugin command: deliver it to ONE of the user's connections and await its result.

The result arrives through another Lambda (ws_message), which resolves the correlation record in
DynamoDB; this side reads that record with consistent reads until it is resolved or times out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from crosslist.realtime.commands import CommandStatus, PendingCommandStore
from crosslist.realtime.connections import ConnectionStore
from crosslist.realtime.gateway import ConnectionGateway, ConnectionGone, encode
from crosslist.realtime.messages import PluginCommand, command_message

logger = Logger(child=True)


class NoPluginConnection(Exception):
    """No open tab of the user can execute the command: none is open, or none said its extension is ready."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PluginTimeout(Exception):
    pass


@dataclass(frozen=True)
class PluginReply:
    request_id: str
    success: bool
    result: dict[str, Any] | None
    error: str | None


class PluginRelay:
    def __init__(
        self,
        connections: ConnectionStore,
        commands: PendingCommandStore,
        gateway: ConnectionGateway,
        *,
        poll_initial_seconds: float = 0.05,
        poll_max_seconds: float = 0.1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connections = connections
        self._commands = commands
        self._gateway = gateway
        self._poll_initial = poll_initial_seconds
        self._poll_max = poll_max_seconds
        self._clock = clock
        self._sleep = sleep

    def call(self, *, user_id: str, job_id: str, step: str, command: PluginCommand, timeout_ms: int) -> PluginReply:
        request_id = str(uuid.uuid4())
        data = encode(command_message(request_id, job_id, step, command, timeout_ms))
        deadline = self._clock() + timeout_ms / 1000
        # The record exists before the command leaves, so even an instant result finds it.
        self._commands.create(request_id, user_id, job_id, step, deadline)
        try:
            self._deliver(user_id, data)
        except NoPluginConnection:
            self._commands.delete(request_id)
            raise
        return self._await(request_id, deadline)

    def _deliver(self, user_id: str, data: bytes) -> str:
        # Never broadcast: two open tabs must not both execute a Vinted POST. Only a tab whose extension
        # said it is ready gets commands (a second device or a tab without the extension would let them
        # time out), the most recently ready first.
        open_tabs = self._connections.for_user(user_id)
        for connection in sorted((c for c in open_tabs if c.ready), key=lambda c: c.ready_at_ms, reverse=True):
            try:
                self._gateway.post(connection.connection_id, data)
            except ConnectionGone:
                logger.info("stale connection closed", extra={"connection_id": connection.connection_id})
                self._connections.close(connection.connection_id)
                continue
            return connection.connection_id
        if any(c.ready for c in open_tabs):
            raise NoPluginConnection("no_plugin_connection", "every tab with the browser extension has closed")
        if open_tabs:
            raise NoPluginConnection(
                "plugin_not_ready",
                f"{len(open_tabs)} crosslist tab(s) open, but none has the browser extension ready;"
                " install or enable the extension, or log in to Vinted in that browser",
            )
        raise NoPluginConnection(
            "no_plugin_connection",
            "no crosslist tab is open with the browser extension; open the web app and try again",
        )

    def _await(self, request_id: str, deadline: float) -> PluginReply:
        pause = self._poll_initial
        while True:
            command = self._commands.get(request_id)
            if command is None:
                raise PluginTimeout(f"command {request_id} disappeared")
            if command.status in (CommandStatus.SUCCEEDED, CommandStatus.FAILED):
                return PluginReply(request_id, command.status is CommandStatus.SUCCEEDED, command.result, command.error)
            if command.status is CommandStatus.TIMED_OUT:
                raise PluginTimeout(f"no result for command {request_id} in time")
            now = self._clock()
            if now >= deadline:
                if self._commands.expire(request_id):
                    raise PluginTimeout(f"no result for command {request_id} in time")
                continue  # a result arrived between the read and the expiry: read it
            self._sleep(min(pause, deadline - now))
            pause = min(pause * 2, self._poll_max)
