"""POST /jobs/batch: one job per product, each refusal with its reason; GET /batches/{id} follows them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration


def batch(backend: Backend, product_ids: list[str], user: str = "alice", **extra: Any) -> Any:
    body = {"marketplace": "vinted", "action": "publish", "product_ids": product_ids, **extra}
    return backend.http("POST", "/jobs/batch", user=user, body=body)


def test_a_batch_queues_a_job_per_product_and_says_why_the_others_got_none(backend: Backend, sql: Any) -> None:
    publishable = [backend.create_product()["id"] for _ in range(3)]
    without_photos = backend.create_product(images=0)["id"]
    busy = backend.create_product()["id"]
    busy_job = backend.publish(busy).body["id"]
    unknown = str(uuid.uuid4())

    reply = batch(backend, [*publishable, without_photos, busy, unknown])

    assert reply.status == 202, reply.body
    assert reply.headers["Location"] == f"/batches/{reply.body['id']}"
    assert reply.body["total_jobs"] == 3
    assert sorted(job["product_id"] for job in reply.body["jobs"]) == sorted(publishable)
    refused = {r["product_id"]: r["code"] for r in reply.body["refused"]}
    assert refused == {without_photos: "not_publishable", busy: "job_in_progress", unknown: "not_found"}
    assert reply.body["counts"]["pending"] == 3
    assert backend.queued() == 2  # one wake-up of the lane per request: the earlier single job's and the batch's
    assert count(sql, "SELECT count(*) FROM marketplace_jobs WHERE batch_id IS NOT NULL") == 3
    assert busy_job not in {job["id"] for job in reply.body["jobs"]}


def test_a_batch_runs_to_the_end_and_a_cancelled_job_leaves_the_others_untouched(backend: Backend) -> None:
    tab, _ = backend.open_tab()
    products = [backend.create_product(images=1)["id"] for _ in range(4)]
    created = batch(backend, products).body
    cancelled = created["jobs"][1]["id"]
    assert backend.http("POST", f"/jobs/{cancelled}/cancel").status == 200

    backend.run_queue()

    view = backend.http("GET", f"/batches/{created['id']}")
    assert view.status == 200
    assert {k: v for k, v in view.body["counts"].items() if v} == {"completed": 3, "cancelled": 1}
    listed = backend.http("GET", "/jobs", query={"batch_id": created["id"]}).body["items"]
    assert len(listed) == 4
    # The tab follows the batch: each step names its batch, each job's end moves the counts.
    assert {p["batch_id"] for p in backend.gateway.of_type(tab, "job.progress")} == {created["id"]}
    moves = [m["counts"] for m in backend.gateway.of_type(tab, "batch.progress")]
    assert [m["completed"] for m in moves] == [1, 2, 3]
    assert moves[-1]["pending"] == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"action": "teleport"}, "'publish', 'update', 'delete' or 'relist'"),
        ({"product_ids": []}, "product_ids"),
        ({"product_ids": [str(uuid.uuid4()) for _ in range(501)]}, "product_ids"),
        ({"product_ids": ["4f1c2b9e-8d4a-4c7e-9b2f-5a6d7e8f9a01"] * 2}, "only once"),
        ({"priority": 0}, "priority"),
        ({"priority": 10}, "priority"),
    ],
)
def test_a_malformed_batch_is_refused_whole(backend: Backend, sql: Any, change: dict[str, Any], reason: str) -> None:
    body = {"marketplace": "vinted", "action": "publish", "product_ids": [backend.create_product()["id"]], **change}
    reply = backend.http("POST", "/jobs/batch", body=body)
    assert reply.status == 422, reply.body
    assert reason in reply.body["message"]
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 0
    assert count(sql, "SELECT count(*) FROM marketplace_batches") == 0


def test_a_batch_where_no_product_can_get_a_job_is_a_422_listing_each_reason(backend: Backend, sql: Any) -> None:
    unknown = str(uuid.uuid4())
    reply = batch(backend, [unknown, backend.create_product(images=0)["id"]])
    assert (reply.status, reply.body["code"]) == (422, "batch_refused")
    assert {r["code"] for r in reply.body["refused"]} == {"not_found", "not_publishable"}
    assert count(sql, "SELECT count(*) FROM marketplace_batches") == 0


def test_another_users_batch_is_not_found(backend: Backend) -> None:
    created = batch(backend, [backend.create_product()["id"]]).body
    assert backend.http("GET", f"/batches/{created['id']}", user="bob").status == 404
    assert backend.http("GET", "/batches/not-a-uuid").status == 422
