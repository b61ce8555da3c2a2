"""Fakes of the outside world: the API Gateway management API, and the web app + browser extension
(over the devstack's in-memory Vinted, the one fake of Vinted)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from crosslist.realtime.gateway import ConnectionGone
from devstack.plugin import Fault, VintedSimulator

VINTED_USER_ID = "31337"  # the Vinted account a FakeVinted tab is logged in as, unless given a simulator


class FakeGateway:
    """Records every message posted to a connection, and the connections the backend closed; a closed
    connection answers 410 Gone."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone: set[str] = set()
        self.deleted: list[str] = []  # DeleteConnection calls that closed a connection, in order
        self.listeners: dict[str, Callable[[dict[str, Any]], None]] = {}

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        message = json.loads(data)
        self.messages[connection_id].append(message)
        listener = self.listeners.get(connection_id)
        if listener is not None:
            listener(message)

    def delete(self, connection_id: str) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        self.gone.add(connection_id)
        self.deleted.append(connection_id)

    def of_type(self, connection_id: str, message_type: str) -> list[dict[str, Any]]:
        """The messages of a type the tab was shown, in order: a command's `progress` is a job.progress."""
        shown = [one for message in self.messages[connection_id] for one in shown_messages(message)]
        return [message for message in shown if message.get("type") == message_type]


def shown_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """What a message shows the web app: a command carries its job's progress (that tab is not sent it twice)."""
    progress = message.get("progress") if message.get("type") == "plugin.command" else None
    return [progress, message] if isinstance(progress, dict) else [message]


class FakeVinted:
    """One tab's browser extension executing commands on Vinted, for tests: a thin adapter over the
    devstack's VintedSimulator (the one fake of Vinted). It is called with each message posted to its
    connection and answers through `send` at once, like the web app.

    The step-name sets say how a command of that step goes; `*_once` sets are consumed by their first
    use. Tabs of one user share a Vinted account by passing the same `simulator`.
    """

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],  # delivers a message from this connection to ws_message
        *,
        fail_once: set[str] | None = None,  # 503 the first time only
        fail_always: set[str] | None = None,  # 503 every time
        silent: set[str] | None = None,  # never carried out, never answered (every time)
        throttle_once: set[str] | None = None,  # 429, with `retry_after`
        challenge_once: set[str] | None = None,  # 403 with DataDome's captcha body
        logged_out_once: set[str] | None = None,  # 401: the Vinted session expired
        lose_reply: set[str] | None = None,  # carried out on Vinted (an item IS created), never answered
        retry_after: float | None = None,  # the Retry-After of a 429 (None: no header)
        simulator: VintedSimulator | None = None,
    ) -> None:
        self.send = send
        self.fail_once = set(fail_once or ())
        self.fail_always = set(fail_always or ())
        self.silent = set(silent or ())
        self.throttle_once = set(throttle_once or ())
        self.challenge_once = set(challenge_once or ())
        self.logged_out_once = set(logged_out_once or ())
        self.lose_reply = set(lose_reply or ())
        if simulator is None:
            simulator = VintedSimulator(latency_ms=0, vinted_user_id=VINTED_USER_ID, retry_after=retry_after)
        elif retry_after is not None:
            simulator.retry_after = retry_after
        self.simulator = simulator
        self.commands: list[dict[str, Any]] = []  # every command received
        self.successes: list[dict[str, Any]] = []  # the commands Vinted carried out, answered or not

    @property
    def vinted_user_id(self) -> str:
        """The Vinted account this tab's extension is logged in as (for its plugin_status)."""
        return self.simulator.vinted_user_id

    @property
    def retry_after(self) -> float | None:
        return self.simulator.retry_after

    @retry_after.setter
    def retry_after(self, seconds: float | None) -> None:
        self.simulator.retry_after = seconds

    @property
    def items(self) -> list[dict[str, Any]]:
        """The items created on Vinted, oldest first: title, price, photo_ids, upload_session_id, id, url."""
        return list(self.simulator.items.values())

    @property
    def photos(self) -> dict[int, str]:
        """The photos uploaded to Vinted: photo id -> image URL."""
        return self.simulator.photos

    @property
    def orders(self) -> list[dict[str, Any]]:
        """The account's sales (VintedSimulator.sell), oldest first, as GET /api/v2/my_orders shows them:
        transaction_id, item_id, title, price{amount, currency_code}, status, date, buyer{login}."""
        return list(self.simulator.orders.values())

    @property
    def conversations(self) -> dict[str, list[dict[str, Any]]]:
        """Conversation id -> the replies posted to it, oldest first: {"id", "body", "conversation_id"}."""
        return self.simulator.conversations

    def __call__(self, message: dict[str, Any]) -> None:
        if message.get("type") != "plugin.command":
            return
        self.commands.append(message)
        reply = self.simulator.perform(message, fault=self._fault(message["step"]))
        if reply.success:
            self.successes.append(message)
        if reply.answered:
            self.send(reply.message(message["request_id"]))

    def _fault(self, step: str) -> Fault | None:
        if step in self.silent:
            return "no_reply"
        if step in self.fail_always:
            return "unavailable"
        once: list[tuple[set[str], Fault]] = [
            (self.fail_once, "unavailable"),
            (self.throttle_once, "throttled"),
            (self.challenge_once, "challenge"),
            (self.logged_out_once, "logged_out"),
            (self.lose_reply, "lost_reply"),
        ]
        for steps, fault in once:
            if step in steps:
                steps.discard(step)
                return fault
        return None
