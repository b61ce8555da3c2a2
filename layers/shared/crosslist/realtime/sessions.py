"""Use cases behind the WebSocket routes: open and close a connection, receive a plugin result."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from crosslist import untrusted_json
from crosslist.jobs.queue import PLUGIN_MARKETPLACES, CarriedReply
from crosslist.realtime.commands import CommandStatus, PendingCommandStore
from crosslist.realtime.connections import (
    MAX_CONNECTIONS_PER_USER,
    MESSAGE_WINDOW_SECONDS,
    MESSAGES_PER_USER_WINDOW,
    MESSAGES_PER_WINDOW,
    Budget,
    ConnectionStore,
)
from crosslist.realtime.gateway import ConnectionGateway, ConnectionGone, encode
from crosslist.realtime.messages import (
    MAX_REQUEST_ID_LENGTH,
    PingMessage,
    PluginResultMessage,
    PluginStatusMessage,
    ResumeMessage,
    error_message,
    plugin_status_message,
    pong_message,
)
from crosslist.realtime.notifier import Notifier

logger = Logger(child=True)

if TYPE_CHECKING:  # ws_message never verifies a token: loading PyJWT would only slow its cold start
    from crosslist.auth.tokens import TokenVerifier


class Waker(Protocol):
    """Wake a lane of the job engine (crosslist.jobs.queue.JobQueue.wake)."""

    def __call__(self, user_id: str, marketplace: str, cause: str, reply: CarriedReply | None = None) -> None: ...


def open_connection(
    connection_id: str,
    token: str | None,
    verifier: TokenVerifier,
    connections: ConnectionStore,
    *,
    commands: PendingCommandStore,
    wake: Waker,
    gateway: Callable[[], ConnectionGateway],
) -> str:
    """Register a connection for the user its token names; raises Unauthorized. A user with
    MAX_CONNECTIONS_PER_USER open already loses the oldest: each is closed at API Gateway and handled as if
    it had closed itself. `gateway` is called only then (most connections never need its client)."""
    user_id = verifier.user_id(token)
    connections.add(connection_id, user_id)
    others = [c for c in connections.for_user(user_id) if c.connection_id != connection_id]  # newest first
    for oldest in others[MAX_CONNECTIONS_PER_USER - 1 :]:
        _close_at_api_gateway(gateway(), oldest.connection_id)
        # API Gateway runs its $disconnect too, but only at best: close it here (closing twice is harmless).
        close_connection(oldest.connection_id, connections, commands, wake)
    return user_id


def _close_at_api_gateway(gateway: ConnectionGateway, connection_id: str) -> None:
    """Tell the tab why (a web app that reconnects whatever closed it would close another tab), then close
    it. A connection API Gateway no longer has is closed already."""
    why = error_message(
        "too_many_connections",
        f"more than {MAX_CONNECTIONS_PER_USER} connections of this user are open: the oldest are closed;"
        " do not reconnect this tab by itself",
    )
    try:
        gateway.post(connection_id, encode(why))
    except ConnectionGone:
        return  # gone already: its $disconnect may not have run yet, so it is closed all the same
    except Exception:  # closed all the same, without a reason
        logger.exception("an extra connection not told why it is closed", extra={"connection_id": connection_id})
    try:
        gateway.delete(connection_id)
    except ConnectionGone:
        pass
    except Exception:  # recorded as closed all the same: no command goes to it, and it no longer counts
        logger.exception("an extra connection not closed at API Gateway", extra={"connection_id": connection_id})


class LaterWaker(Protocol):
    """Wake a lane of the job engine at `due` (crosslist.jobs.queue.TimerQueue.wake_at)."""

    def __call__(self, user_id: str, marketplace: str, due: float, cause: str, reply: CarriedReply) -> None: ...


def close_connection(
    connection_id: str, connections: ConnectionStore, commands: PendingCommandStore, wake: Waker
) -> int:
    """The tab is gone: no command goes to it any more, and those it was running end now rather than at
    their deadline; their lanes are woken to send them to another tab. Returns how many it left unanswered."""
    connections.close(connection_id)
    lost = commands.lose_connection(connection_id)
    for command in lost:
        try:
            wake(command.user_id, command.marketplace, f"lost:{command.request_id}")
        except Exception:  # the lane's deadline timer still wakes it
            logger.exception("lane not woken after a tab closed", extra={"request_id": command.request_id})
    return len(lost)


class PluginResults:
    """Apply what the user's web app sends: results of plugin commands, and whether its extension is ready."""

    def __init__(
        self,
        connections: ConnectionStore,
        commands: PendingCommandStore,
        notifier: Notifier,
        *,
        request_session: Callable[[str, str], None],
        wake: Waker,
        wake_later: LaterWaker,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connections = connections
        self._commands = commands
        self._notifier = notifier
        # (user, connection): have the tab sent its user's active jobs (answered where PostgreSQL is).
        self._request_session = request_session
        self._wake = wake
        self._wake_later = wake_later
        self._clock = clock

    def receive(self, connection_id: str, body: str | None) -> dict[str, Any] | None:
        """Apply one message. Returns the error for the sender, if any (sent unless it is a repeat of
        a rate limit the sender was already told about)."""
        try:
            error = self._apply(connection_id, body)
        except _Silenced as silenced:
            return silenced.error
        if error is not None:
            self._notifier.to_connection(connection_id, error)
        return error

    def _apply(self, connection_id: str, body: str | None) -> dict[str, Any] | None:
        try:
            message, request_id = _parse(body)
        except _Refused as refused:
            return refused.error

        # The answer to a command sent to this tab: there are only as many as there were commands, so it is
        # not counted against the tab's message rate (one write less on every step). A refused one is.
        if isinstance(message, PluginResultMessage) and self._result(connection_id, message):
            return None
        counted = self._connections.count_message(connection_id)
        if counted is None:
            return error_message("forbidden", "this connection is not registered", request_id)
        if counted.refused_by is not None:
            limited = error_message("rate_limited", _OVER_BUDGET[counted.refused_by], request_id)
            if counted.first_refused:
                return limited
            raise _Silenced(limited)
        if isinstance(message, PluginResultMessage):  # refused: explained once counted (a flood is not)
            rejected = self._commands.rejection(message.request_id, connection_id)
            return error_message(rejected.code.value, rejected.message, message.request_id)
        if isinstance(message, PingMessage):  # counted: its only use is the traffic itself
            self._notifier.to_connection(connection_id, pong_message())
            return None
        sender = counted.sender
        if isinstance(message, ResumeMessage):
            try:
                self._request_session(sender.user_id, connection_id)
            except Exception:
                logger.exception("resume not queued", extra={"connection_id": connection_id})
                return error_message("unavailable", "the jobs' state cannot be fetched right now; try again", None)
            return None
        assert isinstance(message, PluginStatusMessage)
        return self._status(connection_id, sender.user_id, message, request_id)

    def _status(
        self, connection_id: str, user_id: str, message: PluginStatusMessage, request_id: str | None
    ) -> dict[str, Any] | None:
        if not self._connections.set_plugin_status(
            connection_id,
            user_id,
            ready=message.ready,
            extension_version=message.extension_version,
            vinted_logged_in=message.vinted_logged_in,
            challenge=message.challenge,
            vinted_user_id=message.vinted_user_id,
        ):
            return error_message("forbidden", "this connection is closed", request_id)
        # The web app can show the extension as connected once the backend has recorded it.
        self._notifier.to_connection(connection_id, plugin_status_message(message))
        if message.takes_commands:  # jobs waiting for the extension go on by themselves
            for marketplace in PLUGIN_MARKETPLACES:
                self._wake_lane(user_id, marketplace, f"ready:{connection_id}:{time.time_ns()}")
        return None

    def _result(self, connection_id: str, message: PluginResultMessage) -> bool:
        """Record the result and continue its job; False when it is refused."""
        command = self._commands.resolve(
            message.request_id,
            connection_id,
            success=message.success,
            result=message.result,
            error=message.error,
            http_status=message.status,
            retry_after=message.retry_after,
            photo_failure=message.photo_failure,
        )
        if command is None:
            return False
        # The result continues its job: a new invocation of process_job, through the lane's queue group.
        # The wake-up carries the result as recorded, so the lane need not read it back.
        carried = CarriedReply(
            request_id=command.request_id,
            success=command.status is CommandStatus.SUCCEEDED,
            result=command.result,
            error=command.error,
            status=command.http_status,
            retry_after=command.retry_after,
            photo_failure=command.photo_failure,
        )
        cause = f"result:{command.request_id}"
        if carried.success and command.hold_until is not None and command.hold_until > self._clock():
            # Pacing holds the lane's next call until then: the step goes on when that call can go, in
            # one wake-up, rather than now and again then. A failure is seen at once.
            try:
                self._wake_later(command.user_id, command.marketplace, command.hold_until, cause, carried)
                return True
            except Exception:
                logger.exception("result not held: its lane is woken now", extra={"cause": cause})
        self._wake_lane(command.user_id, command.marketplace, cause, carried)
        return True

    def _wake_lane(self, user_id: str, marketplace: str, cause: str, reply: CarriedReply | None = None) -> None:
        try:
            self._wake(user_id, marketplace, cause, reply)
        except Exception:  # recorded all the same: the lane's timer or the sweeper wakes it later
            logger.exception("lane not woken", extra={"cause": cause})


def _parse(body: str | None) -> tuple[_Message, str | None]:
    """The message, and its request_id when an error can echo it; raises _Refused (invalid_message)."""
    try:
        raw = untrusted_json.parse(body or "")
    except untrusted_json.InvalidJson as invalid:
        raise _Refused(error_message("invalid_message", f"the message is not usable JSON: {invalid.reason}")) from None
    if not isinstance(raw, dict):
        raise _Refused(error_message("invalid_message", "the message must be a JSON object"))
    request_id = raw.get("request_id")
    if not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID_LENGTH:
        request_id = None  # echoed in the error only if it can be one: a 128 KB one would not fit in it
    action = raw.get("action")
    model = _MESSAGES.get(action) if isinstance(action, str) else None
    if model is None:
        expected = ", ".join(repr(known) for known in _MESSAGES)
        shown = repr(action[:50]) if isinstance(action, str) else str(action)[:50]
        raise _Refused(
            error_message("invalid_message", f"unknown action {shown}; expected one of {expected}", request_id)
        )
    try:
        return model.model_validate(raw), request_id
    except ValidationError as invalid:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in invalid.errors())
        raise _Refused(error_message("invalid_message", reasons, request_id)) from None


class _Refused(Exception):
    """A message that cannot be read: the error for its sender."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["code"])
        self.error = error


class _Silenced(Exception):
    """An error the sender is not sent again: answering every message of a flood would double it."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["code"])
        self.error = error


_OVER_BUDGET = {
    Budget.CONNECTION: f"more than {MESSAGES_PER_WINDOW} messages in {MESSAGE_WINDOW_SECONDS} s from this"
    " connection; messages are dropped until the window ends",
    Budget.USER: f"more than {MESSAGES_PER_USER_WINDOW} messages in {MESSAGE_WINDOW_SECONDS} s from this user's"
    " connections together (the per-user budget); messages are dropped until the window ends",
}

type _Message = PluginResultMessage | PluginStatusMessage | ResumeMessage | PingMessage

_MESSAGES: dict[str, type[_Message]] = {
    "plugin_result": PluginResultMessage,
    "plugin_status": PluginStatusMessage,
    "resume": ResumeMessage,
    "ping": PingMessage,
}
