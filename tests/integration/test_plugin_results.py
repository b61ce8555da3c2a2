"""Results coming back over the WebSocket: only the owner's first, timely answer counts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration


def test_results_from_another_user_or_replayed_are_refused_and_the_job_is_unaffected(backend: Backend) -> None:
    alice_tab, vinted = backend.open_tab("alice")
    status, bob_tab = backend.connect("bob")
    assert status == 200
    forged = {"id": 666}

    def meddled(message: dict[str, Any]) -> None:
        if message.get("type") == "plugin.command" and message["step"] == "upload_photo_1":
            # Bob answers Alice's command before her extension does…
            backend.send(
                bob_tab,
                {"action": "plugin_result", "request_id": message["request_id"], "success": True, "result": forged},
            )
            vinted(message)
            # …and Alice's web app sends her answer a second time.
            backend.send(
                alice_tab,
                {"action": "plugin_result", "request_id": message["request_id"], "success": True, "result": forged},
            )
        else:
            vinted(message)

    backend.gateway.listeners[alice_tab] = meddled
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]
    backend.run_queue()

    first_request = vinted.commands[0]["request_id"]
    assert [(e["code"], e["request_id"]) for e in backend.gateway.of_type(bob_tab, "error")] == [
        ("forbidden", first_request)
    ]
    assert [(e["code"], e["request_id"]) for e in backend.gateway.of_type(alice_tab, "error")] == [
        ("already_resolved", first_request)
    ]
    job = backend.job(job_id)
    assert job["status"] == "completed"
    assert job["result"]["photo_ids"] == [9001, 9002]
    # Bob's connection never saw Alice's command or her progress.
    assert [m["type"] for m in backend.gateway.messages[bob_tab] if m["type"] != "jobs.active"] == ["error"]
    assert all(m["jobs"] == [] for m in backend.gateway.of_type(bob_tab, "jobs.active"))


def test_a_result_for_an_unknown_request_is_refused(backend: Backend) -> None:
    tab, _ = backend.open_tab()
    backend.send(tab, {"action": "plugin_result", "request_id": "no-such-request", "success": True, "result": {}})
    [error] = backend.gateway.of_type(tab, "error")
    assert (error["code"], error["request_id"]) == ("unknown_request", "no-such-request")


def test_a_message_from_an_unregistered_connection_is_refused(backend: Backend) -> None:
    backend.send("never-connected=", {"action": "plugin_result", "request_id": "r1", "success": True, "result": {}})
    [error] = backend.gateway.of_type("never-connected=", "error")
    assert error["code"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('["plugin_result"]', "JSON object"),
        ({"action": "teleport", "request_id": "r1"}, "unknown action 'teleport'"),
        ({"success": True, "request_id": "r1"}, "unknown action None"),
        ({"action": "plugin_result", "success": True}, "request_id: Field required"),
        ({"action": "plugin_result", "request_id": "r1"}, "success: Field required"),
        ({"action": "plugin_result", "request_id": "r1", "success": False}, "must say why in 'error'"),
        (
            {"action": "plugin_result", "request_id": "r1", "success": "maybe"},
            "success: Input should be a valid boolean",
        ),
        ({"action": "plugin_result", "request_id": "r1", "success": True, "result": [1]}, "result: Input should be"),
        (
            {"action": "plugin_result", "request_id": "r1", "success": False, "error": "404", "error_kind": "image"},
            "naming the photo in 'image_url'",
        ),
    ],
)
def test_malformed_messages_get_invalid_message_with_the_reason(
    backend: Backend, aws: dict[str, Any], body: Any, reason: str
) -> None:
    tab, _ = backend.open_tab()
    backend.send(tab, body)
    [error] = backend.gateway.of_type(tab, "error")
    assert error["code"] == "invalid_message"
    assert reason in error["message"]
    assert aws["dynamodb"].scan(TableName="PendingCommandsTable")["Count"] == 0


def test_only_the_tab_a_command_went_to_may_answer_it_and_its_answers_are_not_counted_as_chatter(
    backend: Backend, aws: dict[str, Any]
) -> None:
    other_tab, _ = backend.open_tab()  # the same user's older tab: it takes no command while a newer one is ready
    tab, vinted = backend.open_tab()

    def echoed_by_the_other_tab(message: dict[str, Any]) -> None:
        if message.get("type") == "plugin.command" and message["step"] == "upload_photo_1":
            backend.send(
                other_tab,
                {"action": "plugin_result", "request_id": message["request_id"], "success": True, "result": {"id": 1}},
            )
        vinted(message)

    backend.gateway.listeners[tab] = echoed_by_the_other_tab
    job_id = backend.publish(backend.create_product(images=2)["id"]).body["id"]
    backend.run_queue()

    [refused] = backend.gateway.of_type(other_tab, "error")
    assert (refused["code"], refused["request_id"]) == ("forbidden", vinted.commands[0]["request_id"])
    assert backend.job(job_id)["result"]["photo_ids"] == [9001, 9002]
    counts = {
        item["connection_id"]["S"]: int(item.get("msg_count", {"N": "0"})["N"])
        for item in aws["dynamodb"].scan(TableName="ConnectionsTable")["Items"]
    }
    # Three answers from the executing tab, none counted; the refused one is counted like any message.
    assert counts[tab] == counts[other_tab] - 1
