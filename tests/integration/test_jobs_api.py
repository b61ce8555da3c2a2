"""POST /jobs and GET /jobs/{id}: clear errors for bad requests, nothing stored or queued for them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.conftest import Backend, count
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration


def nothing_stored(backend: Backend, sql: Any) -> bool:
    return count(sql, "SELECT count(*) FROM marketplace_jobs") == 0 and backend.queued() == 0


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "unauthorized"),
        ("Bearer not-a-jwt", "unauthorized"),
        ("Basic YWxpY2U6c2VjcmV0", "unauthorized"),
        (f"Bearer {token_for('alice', expires_in=-3600)}", "token_expired"),
        (f"Bearer {token_for('alice', secret='another-secret-of-enough-length-123')}", "unauthorized"),
    ],
)
def test_requests_without_a_valid_token_are_refused(
    backend: Backend, sql: Any, authorization: str | None, code: str
) -> None:
    product_id = backend.create_product()["id"]
    headers = {"authorization": authorization} if authorization else {}
    reply = backend.http(
        "POST",
        "/jobs",
        user=None,
        headers=headers,
        body={"marketplace": "vinted", "action": "publish", "product_id": product_id},
    )
    assert reply.status == 401
    assert reply.body["code"] == code
    assert nothing_stored(backend, sql)


def test_an_unknown_marketplace_is_refused_naming_the_valid_ones(backend: Backend, sql: Any) -> None:
    reply = backend.http("POST", "/jobs", body={"marketplace": "shopify", "action": "publish"})
    assert reply.status == 422
    assert "'vinted', 'ebay', 'etsy'" in reply.body["message"]
    assert nothing_stored(backend, sql)


def test_an_unknown_action_is_refused_naming_the_valid_ones(backend: Backend, sql: Any) -> None:
    product_id = backend.create_product()["id"]
    reply = backend.http("POST", "/jobs", body={"marketplace": "ebay", "action": "orders", "product_id": product_id})
    assert (reply.status, reply.body["code"]) == (422, "invalid_request")
    # The document's enum of eBay's actions, named in the refusal.
    assert "'publish', 'update', 'delete', 'sync', 'sync_orders' or 'import'" in reply.body["message"]
    assert nothing_stored(backend, sql)


@pytest.mark.parametrize("marketplace", ["ebay", "etsy"])
def test_a_job_on_an_account_never_connected_is_refused_rather_than_queued_to_wait(
    backend: Backend, sql: Any, marketplace: str
) -> None:
    product_id = backend.create_product()["id"]
    body = {"marketplace": marketplace, "action": "publish", "product_id": product_id}
    reply = backend.http("POST", "/jobs", body=body)
    assert reply.status == 422
    assert reply.body["code"] == "marketplace_not_connected"
    assert f"/marketplaces/{marketplace}/connect" in reply.body["message"]
    assert nothing_stored(backend, sql)


@pytest.mark.parametrize(
    "body",
    [
        '{"marketplace": "vinted", "action": ',
        {"marketplace": "vinted", "action": "publish", "product_id": "not-a-uuid"},
        {
            "marketplace": "vinted",
            "action": "publish",
            "product_id": "3f1c2b9e-8d4a-4c7e-9b2f-5a6d7e8f9a01",
            "priority": 99,
        },
        {"marketplace": "vinted", "action": "publish", "colour": "red"},
        {"marketplace": "vinted"},
    ],
)
def test_malformed_job_requests_get_422(backend: Backend, sql: Any, body: Any) -> None:
    reply = backend.http("POST", "/jobs", body=body)
    assert reply.status == 422
    assert reply.body["code"] == "invalid_request"
    assert reply.body["message"]
    assert nothing_stored(backend, sql)


def test_publishing_needs_a_product(backend: Backend, sql: Any) -> None:
    reply = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "publish"})
    assert reply.status == 422
    assert "product_id" in reply.body["message"]
    assert nothing_stored(backend, sql)


def test_another_users_product_is_not_found(backend: Backend, sql: Any) -> None:
    bobs = backend.create_product(user="bob")
    reply = backend.publish(bobs["id"], user="alice")
    assert reply.status == 404
    assert nothing_stored(backend, sql)


def test_a_product_vinted_cannot_take_is_refused_with_what_is_missing(backend: Backend, sql: Any) -> None:
    product = backend.create_product(images=0, marketplace_attributes={"vinted": {"brand_id": 53}})
    reply = backend.publish(product["id"])
    assert reply.status == 422
    assert reply.body["code"] == "not_publishable"
    assert "at least one photo" in reply.body["message"]
    assert "catalog_id" in reply.body["message"]
    assert "status_id" in reply.body["message"]
    assert nothing_stored(backend, sql)


def test_a_product_sold_out_since_it_was_created_cannot_be_published_on_vinted(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product = backend.create_product(images=0)
    assert backend.http("PATCH", f"/products/{product['id']}", body={"quantity": 0}).status == 200

    reply = backend.publish(product["id"])
    backend.run_queue()

    assert reply.status == 422
    assert reply.body["code"] == "not_publishable"  # what eBay and Etsy say of the same product
    assert "quantity: nothing left to sell" in reply.body["message"]
    assert "at least one photo" in reply.body["message"]  # every problem at once
    assert vinted.commands == []
    assert nothing_stored(backend, sql)


def test_a_repeated_idempotency_key_returns_the_same_job(backend: Backend, sql: Any) -> None:
    product_id = backend.create_product()["id"]
    first = backend.publish(product_id, idempotency_key="click-1")
    again = backend.publish(product_id, idempotency_key="click-1")
    assert (first.status, again.status) == (202, 200)
    assert again.body["id"] == first.body["id"]
    assert first.headers["Location"] == f"/jobs/{first.body['id']}"
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 1
    assert backend.queued() == 1


def test_an_idempotency_key_reused_for_another_job_is_a_conflict(backend: Backend, sql: Any) -> None:
    first = backend.publish(backend.create_product()["id"], idempotency_key="k")
    other = backend.publish(backend.create_product()["id"], idempotency_key="k")
    assert other.status == 409
    assert (other.body["code"], other.body["job_id"]) == ("idempotency_key_reused", first.body["id"])
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 1


def test_idempotency_keys_belong_to_their_user(backend: Backend) -> None:
    alice = backend.publish(backend.create_product(user="alice")["id"], user="alice", idempotency_key="k")
    bob = backend.publish(backend.create_product(user="bob")["id"], user="bob", idempotency_key="k")
    assert (alice.status, bob.status) == (202, 202)
    assert alice.body["id"] != bob.body["id"]


def test_a_double_click_cannot_publish_the_same_product_twice(backend: Backend) -> None:
    backend.open_tab()
    product_id = backend.create_product()["id"]
    first = backend.publish(product_id)
    second = backend.publish(product_id)
    assert second.status == 409
    assert (second.body["code"], second.body["job_id"]) == ("job_in_progress", first.body["id"])

    backend.run_queue()
    again = backend.publish(product_id)
    assert again.status == 409
    assert again.body["code"] == "already_listed"
    assert again.body["url"] == "https://www.vinted.fr/items/4242"


def test_a_job_can_be_read_back_by_its_owner_only(backend: Backend) -> None:
    job_id = backend.publish(backend.create_product()["id"]).body["id"]
    job = backend.job(job_id)
    assert (job["status"], job["marketplace"], job["action"], job["current_step"]) == (
        "pending",
        "vinted",
        "publish",
        0,
    )
    assert backend.http("GET", f"/jobs/{job_id}", user="bob").status == 404
    assert backend.http("GET", "/jobs/3f1c2b9e-8d4a-4c7e-9b2f-5a6d7e8f9a01").status == 404
    assert backend.http("GET", "/jobs/not-a-uuid").status == 422


def test_a_job_whose_queueing_failed_is_queued_when_the_request_is_retried(
    backend: Backend, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crosslist import runtime

    product_id = backend.create_product()["id"]
    queue = runtime.job_queue()

    def sqs_down(*_: Any, **__: Any) -> None:
        raise ConnectionError("SQS unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(queue, "wake", sqs_down)
        failed = backend.publish(product_id, idempotency_key="retry-me")
    assert failed.status == 503
    assert backend.queued() == 0

    retried = backend.publish(product_id, idempotency_key="retry-me")
    assert retried.status == 200
    assert retried.body["id"] == failed.body["job_id"]
    assert backend.queued() == 1
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 1


def test_a_job_whose_queueing_failed_and_was_never_retried_is_queued_by_the_sweeper(
    backend: Backend, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crosslist import runtime
    from devstack.lambdas import LambdaContext, load_handler
    from tests.conftest import REPO

    product_id = backend.create_product()["id"]

    def sqs_down(*_: Any, **__: Any) -> None:
        raise ConnectionError("SQS unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(runtime.job_queue(), "wake", sqs_down)
        stranded = backend.publish(product_id)
    assert stranded.status == 503
    sweeper = load_handler(REPO / "functions" / "sweeper")

    # Too recent: its own request may still be retried.
    assert sweeper({"schedule": "sweep"}, LambdaContext("sweeper")) == {"overdue_lanes": 0, "unqueued_jobs": 0}
    with sql.begin() as connection:
        connection.execute(text("UPDATE marketplace_jobs SET created_at = now() - interval '3 minutes'"))
    assert sweeper({"schedule": "sweep"}, LambdaContext("sweeper")) == {"overdue_lanes": 0, "unqueued_jobs": 1}
    assert sweeper({"schedule": "sweep"}, LambdaContext("sweeper")) == {"overdue_lanes": 0, "unqueued_jobs": 0}
    assert backend.queued() == 1

    backend.open_tab()
    backend.run_queue()
    assert backend.job(stranded.body["job_id"])["status"] == "completed"
