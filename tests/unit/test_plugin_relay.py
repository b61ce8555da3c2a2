"""The relay delivers a command to one connection and waits for its correlation record, on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from crosslist.realtime.commands import CommandStatus, PendingCommandStore, RejectionCode, ResultRejected
from crosslist.realtime.connections import ConnectionStore
from crosslist.realtime.gateway import MessageTooLarge
from crosslist.realtime.messages import PluginCommand
from crosslist.realtime.relay import NoPluginConnection, PluginRelay, PluginTimeout
from devstack.aws import provision
from tests.conftest import REPO
from tests.support.fakes import FakeGateway

PHOTO = PluginCommand(method="POST", path="/api/v2/photos", payload={"image_url": "https://images.example.com/1.jpg"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.pauses: list[float] = []
        self.on_sleep: list[Any] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep.pop(0)()


@pytest.fixture
def stores() -> Iterator[tuple[ConnectionStore, PendingCommandStore]]:
    with mock_aws():
        provision(REPO / "template.yaml", boto3.client("dynamodb"), boto3.client("sqs"))
        dynamodb = boto3.resource("dynamodb")
        yield (
            ConnectionStore(dynamodb.Table("ConnectionsTable")),
            PendingCommandStore(dynamodb.Table("PendingCommandsTable")),
        )


def relay_for(
    stores: tuple[ConnectionStore, PendingCommandStore], gateway: FakeGateway, clock: FakeClock
) -> PluginRelay:
    connections, commands = stores
    return PluginRelay(
        connections, commands, gateway, poll_initial_seconds=0.05, poll_max_seconds=0.5, clock=clock, sleep=clock.sleep
    )


def test_waits_with_growing_pauses_until_the_result_arrives(stores: Any) -> None:
    connections, commands = stores
    connections.add("tab", "alice")
    gateway, clock = FakeGateway(), FakeClock()
    sent: list[dict[str, Any]] = []
    gateway.listeners["tab"] = sent.append

    def answer() -> None:
        commands.resolve(
            sent[0]["request_id"],
            "alice",
            success=True,
            result={"id": 7},
            error=None,
            now=clock.now,
        )

    clock.on_sleep = [lambda: None] * 4 + [answer]

    reply = relay_for(stores, gateway, clock).call(
        user_id="alice", job_id="j1", step="upload_photo_1", command=PHOTO, timeout_ms=60_000
    )

    assert (reply.success, reply.result) == (True, {"id": 7})
    assert clock.pauses == [0.05, 0.1, 0.2, 0.4, 0.5]
    assert sent[0]["timeout_ms"] == 60_000
    assert sent[0]["payload"] == PHOTO.payload


def test_times_out_at_the_deadline_and_then_refuses_the_late_result(stores: Any) -> None:
    connections, commands = stores
    connections.add("tab", "alice")
    gateway, clock = FakeGateway(), FakeClock()

    with pytest.raises(PluginTimeout):
        relay_for(stores, gateway, clock).call(user_id="alice", job_id="j1", step="s", command=PHOTO, timeout_ms=2_000)

    assert sum(clock.pauses) == pytest.approx(2.0)
    request_id = gateway.messages["tab"][0]["request_id"]
    assert commands.get(request_id).status is CommandStatus.TIMED_OUT
    with pytest.raises(ResultRejected) as rejected:
        commands.resolve(request_id, "alice", success=True, result={}, error=None, now=clock.now - 10)
    assert rejected.value.code is RejectionCode.EXPIRED


def test_a_result_landing_between_the_last_read_and_the_expiry_wins(
    stores: tuple[ConnectionStore, PendingCommandStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    connections, commands = stores
    connections.add("tab", "alice")
    gateway, clock = FakeGateway(), FakeClock()
    relay = relay_for(stores, gateway, clock)
    original_expire = commands.expire

    def expire_after_a_late_answer(request_id: str) -> bool:
        commands.resolve(request_id, "alice", success=False, result=None, error="sold out", now=clock.now - 0.001)
        return original_expire(request_id)

    monkeypatch.setattr(commands, "expire", expire_after_a_late_answer)
    reply = relay.call(user_id="alice", job_id="j1", step="s", command=PHOTO, timeout_ms=100)
    assert (reply.success, reply.error) == (False, "sold out")


def test_without_a_live_connection_nothing_is_left_waiting(stores: Any) -> None:
    connections, commands = stores
    connections.add("closed-tab", "alice")
    gateway = FakeGateway()
    gateway.gone.add("closed-tab")

    with pytest.raises(NoPluginConnection):
        relay_for(stores, gateway, FakeClock()).call(user_id="alice", job_id="j", step="s", command=PHOTO, timeout_ms=1)

    assert connections.for_user("alice") == []
    assert commands._table.scan()["Count"] == 0


def test_another_users_connections_are_never_used(stores: Any) -> None:
    connections, _ = stores
    connections.add("bobs-tab", "bob")
    with pytest.raises(NoPluginConnection):
        relay_for(stores, FakeGateway(), FakeClock()).call(
            user_id="alice", job_id="j", step="s", command=PHOTO, timeout_ms=1
        )


def test_a_command_over_the_websocket_limit_is_refused_before_anything_is_stored(stores: Any) -> None:
    connections, commands = stores
    connections.add("tab", "alice")
    huge = PluginCommand(method="POST", path="/api/v2/photos", payload={"image": "x" * 200_000})
    with pytest.raises(MessageTooLarge):
        relay_for(stores, FakeGateway(), FakeClock()).call(
            user_id="alice", job_id="j", step="s", command=huge, timeout_ms=1
        )
    assert commands._table.scan()["Count"] == 0
