"""`{"action": "ping"}` keeps a quiet connection open (API Gateway closes one idle for 10 minutes): answered
`pong` to that connection alone, and counted against the message budgets like any message but a result."""

from __future__ import annotations

import pytest

from crosslist.realtime.connections import MESSAGES_PER_WINDOW
from tests.integration.conftest import Backend
from tests.integration.test_websocket_budgets import FrozenClock, clock  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def queued_messages(backend: Backend) -> int:
    attributes = backend.sqs.get_queue_attributes(
        QueueUrl=backend.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_ping_is_answered_pong_to_its_connection_alone(backend: Backend) -> None:
    tab, _ = backend.open_tab("alice")
    other_tab, _ = backend.open_tab("alice")
    before = {connection: list(backend.gateway.messages[connection]) for connection in (tab, other_tab)}
    queued = queued_messages(backend)

    backend.send(tab, {"action": "ping"})

    assert backend.gateway.messages[tab] == [*before[tab], {"type": "pong"}]
    assert backend.gateway.messages[other_tab] == before[other_tab]
    backend.send(tab, {"action": "ping", "sent_at": 12})  # what it does not know is ignored, as elsewhere
    assert backend.gateway.messages[tab][-1] == {"type": "pong"}
    assert queued_messages(backend) == queued  # no lane woken, no session asked for


def test_pings_count_against_the_connections_budget(backend: Backend, clock: FrozenClock) -> None:  # noqa: F811
    _, tab = backend.connect("alice")
    for _ in range(MESSAGES_PER_WINDOW + 5):
        backend.send(tab, {"action": "ping"})

    shown = backend.gateway.messages[tab]
    assert [m["type"] for m in shown if m["type"] != "jobs.active"] == ["pong"] * MESSAGES_PER_WINDOW + ["error"]
    assert shown[-1]["code"] == "rate_limited"


def test_a_ping_from_an_unregistered_connection_is_refused(backend: Backend) -> None:
    backend.send("never-connected=", {"action": "ping"})
    assert [m["code"] for m in backend.gateway.of_type("never-connected=", "error")] == ["forbidden"]
    assert backend.gateway.of_type("never-connected=", "pong") == []
