"""The devstack, started once for these tests on free ports, reached through real sockets and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
from moto import mock_aws

from devstack.plugin import VintedSimulator
from devstack.postgres import free_port
from devstack.stack import DevStack, StackConfig
from tests.conftest import REPO
from tests.support.databases import empty_database

DATABASE = "crosslist_e2e"


@pytest.fixture(scope="module")
def devstack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[DevStack]:
    # Module scope: its moto server shares moto's in-process state with the mock_aws tests, so it
    # must be gone (pollers included) before they run. A module may set DEVSTACK_ENVIRONMENT (e.g.
    # pacing on) for its own devstack.
    stack = _started_devstack(
        empty_database(database_url, DATABASE).render_as_string(hide_password=False),
        tmp_path_factory,
        dict(getattr(request.module, "DEVSTACK_ENVIRONMENT", {})),
    )
    yield stack
    stack.stop()
    _forget_moto_state()


STARTS = 3


def _started_devstack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, environment: dict[str, str]
) -> DevStack:
    """A devstack on free ports. A free port can be taken by another listener before the stack binds it: the
    stack is then stopped, moto's state forgotten, and started again on other ports."""
    for attempt in range(1, STARTS + 1):
        config = StackConfig(
            root=REPO,
            http_port=free_port(),
            ws_port=free_port(),
            database_url=database_url,
            data_dir=tmp_path_factory.mktemp("devstack"),
            concurrency=2,
            schedules=False,
            extra_environment=environment,
        )
        stack = DevStack(config)
        try:
            stack.start()
        except OSError:
            if attempt == STARTS:
                raise
            with contextlib.suppress(Exception):
                stack.stop()
            _forget_moto_state()
            continue
        return stack
    raise AssertionError("unreachable")


def _forget_moto_state() -> None:
    """moto's state lives in this process: the next module's devstack (or a mock_aws test) starts clean."""
    cleaner = mock_aws()
    cleaner.start(reset=True)
    cleaner.stop()


def token(stack: DevStack, user: str, expires_in: int = 600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + expires_in}, stack.jwt_secret, algorithm="HS256")


@dataclass
class Tab:
    """A web app tab with the browser extension, over a real WebSocket."""

    user: str
    vinted: VintedSimulator = field(default_factory=lambda: VintedSimulator(latency_ms=0))
    close_after: int | None = None  # close the socket after answering this many commands
    close_on: str | None = None  # close the socket on receiving this step's command, without answering
    ready: bool = True  # says its extension is ready right after connecting, as the web app does
    socket: aiohttp.ClientWebSocketResponse | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each command
    events: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stack: DevStack, session: aiohttp.ClientSession) -> None:
        async def fetch(url: str) -> bytes:
            async with session.get(url) as response:
                response.raise_for_status()
                return await response.read()

        async with session.ws_connect(f"{stack.ws_url}/?token={token(stack, self.user)}") as socket:
            self.socket = socket
            if self.ready:  # connected once the backend has recorded it: commands may come from then on
                status = {"action": "plugin_status", "ready": True, "extension_version": "e2e"}
                await socket.send_str(json.dumps({**status, "vinted_user_id": self.vinted.vinted_user_id}))
            else:
                self.connected.set()
            async for frame in socket:
                message = json.loads(frame.data)
                if message.get("type") == "plugin.status":
                    self.connected.set()
                if isinstance(message.get("progress"), dict):  # a command carries its job's progress
                    self.events.append(message["progress"])
                if message.get("type") != "plugin.command":
                    self.events.append(message)
                    continue
                self.commands.append(message)
                self.received_at.append(time.monotonic())
                if message.get("step") == self.close_on:
                    await socket.close()
                    break
                reply = await self.vinted.execute(message, fetch)
                if reply.answered:
                    await socket.send_str(json.dumps(reply.message(message["request_id"])))
                if self.close_after is not None and len(self.commands) >= self.close_after:
                    await socket.close()
        self.closed.set()

    def of_type(self, message_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("type") == message_type]


class Frontend:
    """What the web app does over HTTP."""

    def __init__(self, stack: DevStack, session: aiohttp.ClientSession, user: str) -> None:
        self.stack = stack
        self.session = session
        self.headers = {"Authorization": f"Bearer {token(stack, user)}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.stack.http_url + path, json=body, headers=self.headers) as reply:
            return reply.status, await reply.json(content_type=None)

    async def product(self, images: int) -> dict[str, Any]:
        status, body = await self.call(
            "POST",
            "/products",
            {
                "title": "Levi's 501 jeans",
                "price": "27.90",
                "image_urls": [f"{self.stack.http_url}/__devstack/images/{n}.png" for n in range(1, images + 1)],
                "marketplace_attributes": {"vinted": {"catalog_id": 1839, "status_id": 2, "package_size_id": 2}},
            },
        )
        assert status == 201, body
        return dict(body)

    async def publish_and_wait(self, product_id: str, timeout: float = 30) -> dict[str, Any]:
        return await self.run_job({"action": "publish", "product_id": product_id}, timeout)

    async def run_job(self, request: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """POST /jobs (a Vinted job) and wait for it to end."""
        status, job = await self.call("POST", "/jobs", {"marketplace": "vinted", **request})
        assert status == 202, job
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, job = await self.call("GET", f"/jobs/{job['id']}")
            if job["status"] in ("completed", "failed"):
                return dict(job)
            await asyncio.sleep(0.1)
        raise AssertionError(f"job still {job['status']} after {timeout} s: {job}")
