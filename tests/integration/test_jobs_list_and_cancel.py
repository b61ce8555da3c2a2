"""GET /jobs pages through the caller's jobs; POST /jobs/{id}/cancel stops a job, never mid-command."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration


def test_jobs_are_listed_newest_first_page_by_page_without_gaps_or_repeats(backend: Backend) -> None:
    created = [backend.publish(backend.create_product()["id"]).body["id"] for _ in range(5)]
    backend.publish(backend.create_product(user="bob")["id"], user="bob")

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        reply = backend.http("GET", "/jobs", query=query)
        assert reply.status == 200, reply.body
        seen += [job["id"] for job in reply.body["items"]]
        pages += 1
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))  # newest first, Bob's job never shown
    assert pages == 3


def test_jobs_can_be_filtered(backend: Backend) -> None:
    first = backend.publish(backend.create_product()["id"]).body["id"]
    second = backend.publish(backend.create_product()["id"]).body["id"]
    assert backend.http("POST", f"/jobs/{first}/cancel").status == 200

    cancelled = backend.http("GET", "/jobs", query={"status": "cancelled"}).body["items"]
    assert [job["id"] for job in cancelled] == [first]
    pending = backend.http("GET", "/jobs", query={"status": "pending", "marketplace": "vinted"}).body["items"]
    assert [job["id"] for job in pending] == [second]
    assert backend.http("GET", "/jobs", query={"marketplace": "ebay"}).body["items"] == []


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


ROW = "5b0e4c77-3d6c-4c4e-9a53-1f4c7c2a9e10"


@pytest.mark.parametrize("path", ["/jobs", "/orders"])
@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        _cursor(["0001-01-01T00:00:00+14:00", ROW]),  # overflowed the driver while it wrote the query
        _cursor(["9999-12-31T23:59:59-14:00", ROW]),
        _cursor(["2026-12-01T10:00:00+02:00", ROW]),  # a real time, but not as the server writes it
        _cursor(["2026-12-01T10:00:00+00:00", 7]),
        _cursor(["2026-12-01T10:00:00+00:00", [ROW]]),
        _cursor(["2026-12-01T10:00:00+00:00", {"id": ROW}]),
        _cursor({"2026-12-01T10:00:00+00:00": 1, ROW: 2}),
        _cursor(["2026-12-01T10:00:00+00:00", ROW, "more"]),
        _cursor("2026-12-01T10:00:00+00:00"),
    ],
)
def test_a_cursor_the_server_did_not_issue_is_a_400_and_hurts_no_later_request(
    backend: Backend, path: str, cursor: str
) -> None:
    backend.create_product()
    refused = backend.http("GET", path, query={"cursor": cursor})
    assert (refused.status, refused.body["code"]) == (400, "invalid_cursor"), refused.body
    # The same instance then answers the next request (another user's) correctly.
    assert backend.http("GET", "/products", user="bob").body["items"] == []
    assert len(backend.http("GET", "/products").body["items"]) == 1


@pytest.mark.parametrize(
    "query",
    [{"status": "sleeping"}, {"limit": "0"}, {"limit": "101"}, {"batch_id": "x"}],
)
def test_bad_list_queries_are_422_with_a_reason(backend: Backend, query: dict[str, str]) -> None:
    reply = backend.http("GET", "/jobs", query=query)
    assert reply.status == 422, reply.body
    assert reply.body["message"]


def test_a_pending_job_is_cancelled_at_once_and_never_runs(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product_id = backend.create_product()["id"]
    job_id = backend.publish(product_id).body["id"]

    reply = backend.http("POST", f"/jobs/{job_id}/cancel")
    assert (reply.status, reply.body["status"]) == (200, "cancelled")
    backend.run_queue()

    assert backend.job(job_id)["status"] == "cancelled"
    assert vinted.commands == []
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 0
    # A cancelled job holds nothing: the product can be published again.
    assert backend.publish(product_id).status == 202


def test_a_running_job_stops_at_its_next_step_boundary(backend: Backend, sql: Any) -> None:
    tab, vinted = backend.open_tab()
    job_id = backend.publish(backend.create_product(images=3)["id"]).body["id"]
    cancel_replies = []

    def cancel_during_the_first_upload(message: dict[str, Any]) -> None:
        if message.get("type") == "plugin.command" and message["step"] == "upload_photo_1":
            cancel_replies.append(backend.http("POST", f"/jobs/{job_id}/cancel"))
        vinted(message)  # the command in flight still completes: never cut mid-call

    backend.gateway.listeners[tab] = cancel_during_the_first_upload
    backend.run_queue()

    [asked] = cancel_replies
    assert (asked.status, asked.body["status"], asked.body["cancel_requested"]) == (200, "running", True)
    job = backend.job(job_id)
    assert (job["status"], job["current_step"], job["accumulated_data"]["photo_ids"]) == ("cancelled", 1, [9001])
    assert [c["step"] for c in vinted.commands] == ["upload_photo_1"]
    assert [m["job_id"] for m in backend.gateway.of_type(tab, "job.cancelled")] == [job_id]
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 0


def test_an_ended_job_cannot_be_cancelled_and_another_users_job_is_not_found(backend: Backend) -> None:
    backend.open_tab()
    job_id = backend.publish(backend.create_product(images=1)["id"]).body["id"]
    backend.run_queue()

    ended = backend.http("POST", f"/jobs/{job_id}/cancel")
    assert (ended.status, ended.body["code"], ended.body["status"]) == (409, "job_ended", "completed")
    assert backend.http("POST", f"/jobs/{job_id}/cancel", user="bob").status == 404
    assert backend.http("POST", "/jobs/not-a-uuid/cancel").status == 422
