"""Fakes of the outside world: the API Gateway management API, and the web app + browser extension."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crosslist.realtime.gateway import ConnectionGone


class FakeGateway:
    """Records every message posted to a connection; a closed connection answers 410 Gone."""

    def __init__(self) -> None:
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gone: set[str] = set()
        self.listeners: dict[str, Callable[[dict[str, Any]], None]] = {}

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        message = json.loads(data)
        self.messages[connection_id].append(message)
        listener = self.listeners.get(connection_id)
        if listener is not None:
            listener(message)

    def of_type(self, connection_id: str, message_type: str) -> list[dict[str, Any]]:
        return [m for m in self.messages[connection_id] if m.get("type") == message_type]


@dataclass
class FakeVinted:
    """The browser extension executing commands on Vinted: answers through ws_message like the web app."""

    send: Callable[[dict[str, Any]], None]  # delivers a message from this connection to ws_message
    fail_once: set[str] = field(default_factory=set)  # step names that fail the first time only
    fail_always: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)  # step names the extension never answers
    commands: list[dict[str, Any]] = field(default_factory=list)
    successes: list[dict[str, Any]] = field(default_factory=list)
    _photo_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9001))

    def __call__(self, message: dict[str, Any]) -> None:
        if message.get("type") != "plugin.command":
            return
        self.commands.append(message)
        step = message["step"]
        if step in self.silent:
            return
        if step in self.fail_always or step in self.fail_once:
            self.fail_once.discard(step)
            self.send(
                {
                    "action": "plugin_result",
                    "request_id": message["request_id"],
                    "success": False,
                    "error": f"Vinted refused {step}",
                }
            )
            return
        self.successes.append(message)
        self.send(
            {
                "action": "plugin_result",
                "request_id": message["request_id"],
                "success": True,
                "result": self._answer(message),
            }
        )

    def _answer(self, command: dict[str, Any]) -> dict[str, Any]:
        if command["path"] == "/api/v2/photos":
            return {"id": next(self._photo_ids), "image_no": 1}
        return {"item": {"id": 4242, "url": "https://www.vinted.fr/items/4242-levis-501"}}
