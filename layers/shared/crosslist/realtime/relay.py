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
from crosslist.realtime.connections import Connection, ConnectionStore
from crosslist.realtime.gateway import ConnectionGateway, ConnectionGone, encode
from crosslist.realtime.messages import PluginCommand, command_message

logger = Logger(child=True)

# A tab that answers and closes at once may have its $disconnect handled before its answer: the answer
# still counts if it comes within this long after the tab closed.
LATE_RESULT_GRACE = 1.0


class NoPluginConnection(Exception):
    """No open tab of the user can execute the command: none is open, or none said its extension is ready."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PluginTimeout(Exception):
    pass


class ConnectionLost(Exception):
    """The tab executing the command closed without answering: whether the command ran is unknown."""


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
        tabs = self._ready_tabs(user_id)
        # The record exists before the command leaves, so even an instant result finds it; it names the
        # tab the command goes to, so that tab closing ends it at once.
        self._commands.create(request_id, user_id, job_id, step, deadline, connection_id=tabs[0].connection_id)
        try:
            self._deliver(request_id, tabs, data)
        except NoPluginConnection:
            self._commands.delete(request_id)
            raise
        return self._await(request_id, deadline)

    def _ready_tabs(self, user_id: str) -> list[Connection]:
        """The user's tabs that may execute commands, the most recently ready first; NoPluginConnection if none.

        Never broadcast: two open tabs must not both execute a Vinted POST. Only a tab whose extension said
        it is ready gets commands (a second device or a tab without the extension would let them time out).
        """
        open_tabs = self._connections.for_user(user_id)
        ready = sorted((c for c in open_tabs if c.takes_commands), key=lambda c: c.ready_at_ms, reverse=True)
        if ready:
            return ready
        if any(c.ready and c.challenge for c in open_tabs):
            raise NoPluginConnection(
                "challenge",
                "Vinted is showing a security check (captcha) in your browser: solve it, then try again",
            )
        if any(c.ready and not c.vinted_logged_in for c in open_tabs):
            raise NoPluginConnection(
                "plugin_logged_out", "log in to Vinted in the browser with the crosslist extension, then try again"
            )
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

    def _deliver(self, request_id: str, tabs: list[Connection], data: bytes) -> None:
        for position, tab in enumerate(tabs):
            if position > 0:
                self._commands.reassign(request_id, tab.connection_id)
            try:
                self._gateway.post(tab.connection_id, data)
            except ConnectionGone:
                logger.info("stale connection closed", extra={"connection_id": tab.connection_id})
                self._connections.close(tab.connection_id)
                continue
            return
        raise NoPluginConnection("no_plugin_connection", "every tab with the browser extension has closed")

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
            if command.status is CommandStatus.CONNECTION_LOST and now >= (command.lost_at or now) + LATE_RESULT_GRACE:
                if self._commands.expire(request_id):
                    raise ConnectionLost(f"the tab executing command {request_id} closed before answering")
                continue  # its answer came in the meantime: read it
            if now >= deadline:
                if self._commands.expire(request_id):
                    raise PluginTimeout(f"no result for command {request_id} in time")
                continue  # a result arrived between the read and the expiry: read it
            self._sleep(min(pause, deadline - now))
            pause = min(pause * 2, self._poll_max)
