"""A product says where it is listed, is never deleted while live somewhere (unless delisted first), and one
marketplace item is the listing of one product at most (real PostgreSQL, moto, the handlers, the fake Vinted)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.integration.conftest import Backend, count
from tests.integration.test_vinted_actions import job_for, published

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------- a product's listings
def test_a_product_shows_where_it_is_listed_in_the_list_and_alone(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    unlisted = backend.create_product(title="Wool coat")["id"]

    shown = backend.http("GET", f"/products/{product_id}").body
    [listing] = shown["listings"]
    assert (listing["marketplace"], listing["status"], listing["external_id"]) == ("vinted", "active", str(item_id))
    assert listing["url"].startswith("https://")
    assert listing["last_synced_at"] is not None
    page = {p["id"]: p["listings"] for p in backend.http("GET", "/products").body["items"]}
    assert page == {product_id: [listing], unlisted: []}

    assert backend.run_job(job_for(backend, "delete", product_id))["status"] == "completed"
    assert [
        (one["marketplace"], one["status"]) for one in backend.http("GET", f"/products/{product_id}").body["listings"]
    ] == [("vinted", "deleted")]


def test_jobs_are_filtered_by_product_marketplace_action_and_status(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    first, _ = published(backend, vinted)
    second, _ = published(backend, vinted)
    sync = job_for(backend, "sync")

    def ids(**query: str) -> list[str]:
        reply = backend.http("GET", "/jobs", query=query)
        assert reply.status == 200, reply.body
        return [job["product_id"] or job["action"] for job in reply.body["items"]]

    assert ids(product_id=first) == [first]
    assert ids(action="publish") == [second, first]
    assert ids(action="sync", status="pending", marketplace="vinted") == ["sync"]
    assert ids(action="publish", product_id=second, status="completed") == [second]
    assert ids(marketplace="ebay") == []
    assert sync


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/jobs", {"statuss": "completed"}),
        ("/jobs", {"status": "completed", "product": "x", "page": "2"}),
        ("/products", {"cursor": "abc"}),
        ("/orders", {"limit": "5", "offset": "5"}),
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(backend: Backend, path: str, query: dict[str, str]) -> None:
    reply = backend.http("GET", path, query=query)
    assert (reply.status, reply.body["code"]) == (400, "unknown_parameters"), reply.body
    known = {"status", "limit", "marketplace"}
    assert reply.body["unknown"] == sorted(set(query) - known)
    for name in reply.body["unknown"]:
        assert name in reply.body["message"]


# ---------------------------------------------------------------------- deleting a listed product
def test_a_product_live_somewhere_is_not_deleted_unless_delisted_first(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)

    refused = backend.http("DELETE", f"/products/{product_id}")
    assert (refused.status, refused.body["code"]) == (409, "product_listed"), refused.body
    assert refused.body["listings"] == [
        {"marketplace": "vinted", "external_id": str(item_id), "url": vinted.simulator.items[item_id]["url"]}
    ]
    assert "Vinted" in refused.body["message"]
    assert backend.http("GET", f"/products/{product_id}").status == 200

    delisting = backend.http("DELETE", f"/products/{product_id}", query={"delist": "true"})
    assert delisting.status == 202, delisting.body
    [delete_job] = delisting.body["jobs"]
    assert (delete_job["marketplace"], delete_job["action"]) == ("vinted", "delete")
    again = backend.http("DELETE", f"/products/{product_id}", query={"delist": "true"})
    assert [job["id"] for job in again.body["jobs"]] == [delete_job["id"]]  # asked twice: one delist
    assert backend.http("GET", f"/products/{product_id}").body["delete_requested_at"] is not None
    publish = backend.publish(product_id)
    assert (publish.status, publish.body["code"]) == (409, "product_being_deleted")

    backend.run_queue()
    assert backend.job(delete_job["id"])["status"] == "completed"
    assert item_id not in vinted.simulator.items or vinted.simulator.items[item_id].get("is_deleted")
    assert backend.http("GET", f"/products/{product_id}").status == 404
    assert count(sql, "SELECT count(*) FROM marketplace_listings") == 0


def test_a_product_not_live_anywhere_is_deleted_at_once(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product_id, _ = published(backend, vinted)
    assert backend.run_job(job_for(backend, "delete", product_id))["status"] == "completed"
    assert backend.http("DELETE", f"/products/{product_id}").status == 204
    assert backend.http("GET", f"/products/{product_id}").status == 404


def test_a_delist_that_fails_keeps_the_product_and_says_why(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product_id, _ = published(backend, vinted)
    vinted.fail_always.add("delete_item")  # Vinted answers 503 to every try
    [delete_job] = backend.http("DELETE", f"/products/{product_id}", query={"delist": "true"}).body["jobs"]
    assert backend.run_job(delete_job["id"])["status"] == "failed"
    product = backend.http("GET", f"/products/{product_id}").body
    assert [listing["status"] for listing in product["listings"]] == ["active"]
    assert product["delete_requested_at"] is not None


# ---------------------------------------------------------------------- one item, one product
def test_one_marketplace_item_is_live_on_one_product_at_most_in_the_schema(backend: Backend, sql: Any) -> None:
    first = backend.create_product()["id"]
    second = backend.create_product()["id"]
    insert = text(
        "INSERT INTO marketplace_listings (id, user_id, product_id, marketplace, external_id, status, created_at,"
        " updated_at) VALUES (gen_random_uuid(), 'alice', :product, 'vinted', '4248', :status, now(), now())"
    )
    with sql.begin() as connection:
        connection.execute(insert, {"product": first, "status": "active"})
    with pytest.raises(IntegrityError), sql.begin() as connection:
        connection.execute(insert, {"product": second, "status": "active"})
    with sql.begin() as connection:  # a deleted listing of the same item does not count
        connection.execute(insert, {"product": second, "status": "deleted"})


def test_an_item_live_on_one_product_is_never_linked_to_another(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    _, item_id = published(backend, vinted)
    other = backend.create_product(title="Another product")["id"]
    body = {"marketplace": "vinted", "action": "link_product", "params": {"vinted_item_id": str(item_id)}}
    reply = backend.http("POST", "/jobs", body={**body, "product_id": other})
    assert reply.status == 202, reply.body
    job = backend.run_job(reply.body["id"])
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "listing_taken"
    assert str(item_id) in job["error"]["message"]
    assert backend.http("GET", f"/products/{other}").body["listings"] == []


def test_a_sync_never_ties_an_item_to_a_product_whose_listing_was_deleted(backend: Backend, sql: Any) -> None:
    """A fake whose ids started over: the wardrobe shows a new item under a deleted listing's id."""
    _, vinted = backend.open_tab()
    old_product, item_id = published(backend, vinted)
    assert backend.run_job(job_for(backend, "delete", old_product))["status"] == "completed"
    new_product, new_item = published(backend, vinted, title="A new item")
    with sql.begin() as connection:  # the new item reuses the deleted one's id, as a restarted fake did
        connection.execute(
            text("UPDATE marketplace_listings SET external_id = :old WHERE product_id = :product"),
            {"old": str(item_id), "product": new_product},
        )
    vinted.simulator.items[item_id] = {**vinted.simulator.items.pop(new_item), "id": item_id}

    assert backend.run_job(job_for(backend, "sync"))["status"] == "completed"
    statuses = {
        product: [listing["status"] for listing in backend.http("GET", f"/products/{product}").body["listings"]]
        for product in (old_product, new_product)
    }
    assert statuses == {old_product: ["deleted"], new_product: ["active"]}
