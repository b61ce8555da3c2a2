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


def open_ready_tab(connections: ConnectionStore, connection_id: str, user_id: str, now: float | None = None) -> None:
    """A tab whose extension said it is ready (plugin_status ready:true)."""
    connections.add(connection_id, user_id, now=now)
    assert connections.set_plugin_status(connection_id, user_id, ready=True, extension_version="1.0", now=now)


def relay_for(
    stores: tuple[ConnectionStore, PendingCommandStore], gateway: FakeGateway, clock: FakeClock
) -> PluginRelay:
    connections, commands = stores
    return PluginRelay(
        connections, commands, gateway, poll_initial_seconds=0.05, poll_max_seconds=0.5, clock=clock, sleep=clock.sleep
    )


def test_waits_with_growing_pauses_until_the_result_arrives(stores: Any) -> None:
    connections, commands = stores
    open_ready_tab(connections, "tab", "alice")
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
    open_ready_tab(connections, "tab", "alice")
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
    open_ready_tab(connections, "tab", "alice")
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
    open_ready_tab(connections, "closed-tab", "alice")
    gateway = FakeGateway()
    gateway.gone.add("closed-tab")

    with pytest.raises(NoPluginConnection) as missing:
        relay_for(stores, gateway, FakeClock()).call(user_id="alice", job_id="j", step="s", command=PHOTO, timeout_ms=1)

    assert missing.value.code == "no_plugin_connection"

    assert connections.for_user("alice") == []
    assert commands._table.scan()["Count"] == 0


def test_another_users_connections_are_never_used(stores: Any) -> None:
    connections, _ = stores
    open_ready_tab(connections, "bobs-tab", "bob")
    with pytest.raises(NoPluginConnection):
        relay_for(stores, FakeGateway(), FakeClock()).call(
            user_id="alice", job_id="j", step="s", command=PHOTO, timeout_ms=1
        )


def test_a_command_over_the_websocket_limit_is_refused_before_anything_is_stored(stores: Any) -> None:
    connections, commands = stores
    open_ready_tab(connections, "tab", "alice")
    huge = PluginCommand(method="POST", path="/api/v2/photos", payload={"image": "x" * 200_000})
    with pytest.raises(MessageTooLarge):
        relay_for(stores, FakeGateway(), FakeClock()).call(
            user_id="alice", job_id="j", step="s", command=huge, timeout_ms=1
        )
    assert commands._table.scan()["Count"] == 0


def test_commands_go_only_to_a_tab_whose_extension_is_ready_the_most_recently_ready_first(stores: Any) -> None:
    connections, _ = stores
    gateway = FakeGateway()
    open_ready_tab(connections, "laptop", "alice", now=1_800_000_000)
    open_ready_tab(connections, "desktop", "alice", now=1_800_000_100)
    connections.add("phone-without-extension", "alice", now=1_800_000_200)  # the newest connection
    relay = relay_for(stores, gateway, FakeClock())
    with pytest.raises(PluginTimeout):
        relay.call(user_id="alice", job_id="j", step="s", command=PHOTO, timeout_ms=0)
    assert [c for c, sent in gateway.messages.items() if sent] == ["desktop"]

    # ready:false withdraws the desktop: the laptop takes the next command.
    assert connections.set_plugin_status("desktop", "alice", ready=False, extension_version="1.0")
    with pytest.raises(PluginTimeout):
        relay.call(user_id="alice", job_id="j", step="s", command=PHOTO, timeout_ms=0)
    assert len(gateway.messages["laptop"]) == 1


def test_a_user_with_only_tabs_whose_extension_is_not_ready_is_told_so(stores: Any) -> None:
    connections, commands = stores
    connections.add("tab-without-extension", "alice")
    gateway = FakeGateway()
    with pytest.raises(NoPluginConnection) as unavailable:
        relay_for(stores, gateway, FakeClock()).call(user_id="alice", job_id="j", step="s", command=PHOTO, timeout_ms=1)
    assert unavailable.value.code == "plugin_not_ready"
    assert gateway.messages == {}
    assert commands._table.scan()["Count"] == 0


def test_only_the_owner_of_an_open_connection_can_say_it_is_ready(stores: Any) -> None:
    connections, _ = stores
    connections.add("tab", "alice")
    assert not connections.set_plugin_status("tab", "bob", ready=True, extension_version=None)
    connections.close("tab")
    assert not connections.set_plugin_status("tab", "alice", ready=True, extension_version=None)
    assert not connections.set_plugin_status("never-connected", "alice", ready=True, extension_version=None)


def test_a_closing_tab_ends_only_its_own_unanswered_commands_and_a_late_answer_still_counts(stores: Any) -> None:
    _, commands = stores
    deadline = 1_800_000_060.0
    commands.create("answered", "alice", "j", "s", deadline, connection_id="tab")
    commands.create("running", "alice", "j", "s", deadline, connection_id="tab")
    commands.create("elsewhere", "alice", "j", "s", deadline, connection_id="other-tab")
    commands.resolve("answered", "alice", success=True, result={"id": 1}, error=None, now=deadline - 30)

    assert commands.lose_connection("tab") == 1

    assert commands.get("answered").status is CommandStatus.SUCCEEDED
    assert commands.get("running").status is CommandStatus.CONNECTION_LOST
    assert commands.get("elsewhere").status is CommandStatus.PENDING
    # The tab sent its answer just before closing; API Gateway handled the $disconnect first.
    commands.resolve("running", "alice", success=True, result={"id": 2}, error=None, now=deadline - 30)
    assert commands.get("running").result == {"id": 2}
