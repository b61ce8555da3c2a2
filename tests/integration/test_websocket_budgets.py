"""What one user may cost the WebSocket side: a message budget per user on top of the one per connection,
and at most 20 open connections (connecting a 21st closes the oldest)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from crosslist import runtime
from crosslist.realtime import connections
from crosslist.realtime.connections import (
    MAX_CONNECTIONS_PER_USER,
    MESSAGE_WINDOW_SECONDS,
    MESSAGES_PER_USER_WINDOW,
    MESSAGES_PER_WINDOW,
)
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration

TABS = 11  # each sends fewer messages than a connection's budget; together more than the user's


class FrozenClock:
    """The connections' clock, held inside one budget window (however slow this machine is) until moved."""

    def __init__(self) -> None:
        self.now = float((int(time.time()) // MESSAGE_WINDOW_SECONDS) * MESSAGE_WINDOW_SECONDS + 1)

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(connections, "time", SimpleNamespace(time=frozen.time))
    return frozen


def unknown_result(n: int) -> dict[str, Any]:
    return {"action": "plugin_result", "request_id": f"r{n}", "success": True, "result": {}}


def error_codes(backend: Backend, tabs: list[str]) -> list[str]:
    return [error["code"] for tab in tabs for error in backend.gateway.of_type(tab, "error")]


def test_a_users_tabs_together_are_cut_off_at_the_per_user_budget(backend: Backend, clock: FrozenClock) -> None:
    tabs = [backend.connect("alice")[1] for _ in range(TABS)]
    _, bobs_tab = backend.connect("bob")
    per_tab = MESSAGES_PER_USER_WINDOW // TABS + 1
    assert per_tab < MESSAGES_PER_WINDOW  # no tab reaches its own budget
    for n in range(per_tab):
        for tab in tabs:  # round robin, as a flood over many tabs goes
            backend.send(tab, unknown_result(n))

    codes = error_codes(backend, tabs)
    # Answered up to the user's budget, told once (by the message that crossed it), the rest dropped.
    assert codes.count("unknown_request") == MESSAGES_PER_USER_WINDOW
    assert codes.count("rate_limited") == 1
    assert len(codes) == MESSAGES_PER_USER_WINDOW + 1
    [limited] = [e for tab in tabs for e in backend.gateway.of_type(tab, "error") if e["code"] == "rate_limited"]
    assert f"more than {MESSAGES_PER_USER_WINDOW} messages" in limited["message"]
    assert "per-user budget" in limited["message"]

    # Another user keeps their own budget…
    backend.send(bobs_tab, unknown_result(0))
    assert error_codes(backend, [bobs_tab]) == ["unknown_request"]
    # …and the user gets a new one with the next window.
    clock.now += MESSAGE_WINDOW_SECONDS
    backend.send(tabs[0], unknown_result(999))
    assert error_codes(backend, [tabs[0]])[-1] == "unknown_request"


def test_a_flood_on_one_tab_is_refused_by_the_connection_budget_and_leaves_the_users_budget_alone(
    backend: Backend, clock: FrozenClock
) -> None:
    flooding_tab, other_tab = backend.connect("alice")[1], backend.connect("alice")[1]
    for n in range(MESSAGES_PER_USER_WINDOW + 50):
        backend.send(flooding_tab, unknown_result(n))
    # The refused messages cost no user budget: the user's other tab is answered all its messages.
    for n in range(MESSAGES_PER_USER_WINDOW - MESSAGES_PER_WINDOW):
        backend.send(other_tab, unknown_result(n))

    assert error_codes(backend, [flooding_tab]) == ["unknown_request"] * MESSAGES_PER_WINDOW + ["rate_limited"]
    assert "from this connection" in backend.gateway.of_type(flooding_tab, "error")[-1]["message"]
    assert error_codes(backend, [other_tab]) == ["unknown_request"] * (MESSAGES_PER_USER_WINDOW - MESSAGES_PER_WINDOW)


def test_accepted_plugin_results_cost_no_budget(backend: Backend, clock: FrozenClock) -> None:
    tab, vinted = backend.open_tab("alice")  # its plugin_status: 1 message of the user's budget
    spenders = [backend.connect("alice")[1] for _ in range(3)]
    for n in range(MESSAGES_PER_USER_WINDOW - 1):  # the user's budget is spent: the next message is over it
        backend.send(spenders[n % len(spenders)], unknown_result(n))

    job_id = backend.publish(backend.create_product(images=3)["id"]).body["id"]
    backend.run_queue()

    # Its four results each resolved a command sent to this tab: none was counted, none refused.
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1", "upload_photo_2", "upload_photo_3", "create_item"]
    assert backend.gateway.of_type(tab, "error") == []
    assert backend.job(job_id)["status"] == "completed"
    backend.send(tab, unknown_result(0))  # whereas any other message is over the user's budget
    assert error_codes(backend, [tab]) == ["rate_limited"]


def test_a_users_message_counts_are_never_taken_for_connections(backend: Backend, clock: FrozenClock) -> None:
    tab, _ = backend.open_tab("alice")
    for n in range(5):
        backend.send(tab, unknown_result(n))
    store = runtime.connections()
    assert [c.connection_id for c in store.for_user("alice")] == [tab]
    assert store.live_users() == {"alice"}

    backend.disconnect(tab)  # the window's count outlives the tab

    assert store.for_user("alice") == []
    assert store.live_users() == set()


def test_a_21st_connection_closes_the_oldest_and_its_command_goes_to_another_tab(
    backend: Backend, aws: dict[str, Any]
) -> None:
    oldest, oldest_vinted = backend.open_tab("alice", silent={"upload_photo_1"})  # the only ready tab
    others = [backend.connect("alice")[1] for _ in range(MAX_CONNECTIONS_PER_USER - 1)]
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]
    backend.run_queue()
    assert [c["step"] for c in oldest_vinted.commands] == ["upload_photo_1"]  # unanswered so far

    newest, newest_vinted = backend.open_tab("alice")
    backend.run_queue(wait_timers=5)

    assert backend.gateway.deleted == [oldest]  # DeleteConnection: API Gateway closes its socket
    [why] = backend.gateway.of_type(oldest, "error")  # told first, so that its web app does not reconnect it
    assert why["code"] == "too_many_connections"
    open_ids = {c.connection_id for c in runtime.connections().for_user("alice")}
    assert open_ids == {*others, newest}
    items = {i["connection_id"]["S"]: i for i in aws["dynamodb"].scan(TableName="ConnectionsTable")["Items"]}
    assert "closed_at" in items[oldest]
    # Its unanswered command went to the new tab, as when a tab closes itself: no attempt used.
    assert [c["step"] for c in newest_vinted.commands] == ["upload_photo_1", "create_item"]
    job = backend.job(job_id)
    assert (job["status"], job["attempts"]) == ("completed", 1)


def test_connecting_closes_the_oldest_even_when_api_gateway_already_lost_it(backend: Backend) -> None:
    tabs = [backend.connect("alice")[1] for _ in range(MAX_CONNECTIONS_PER_USER)]
    backend.gateway.gone.add(tabs[0])  # closed at API Gateway, its $disconnect never ran

    status, newest = backend.connect("alice")

    assert status == 200
    assert backend.gateway.deleted == []
    assert {c.connection_id for c in runtime.connections().for_user("alice")} == {*tabs[1:], newest}


def test_up_to_20_connections_close_nothing(backend: Backend) -> None:
    tabs = [backend.connect("alice")[1] for _ in range(MAX_CONNECTIONS_PER_USER)]
    backend.connect("bob")  # another user's connections are not alice's
    assert backend.gateway.deleted == []
    assert {c.connection_id for c in runtime.connections().for_user("alice")} == set(tabs)
