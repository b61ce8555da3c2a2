"""The product catalogue over HTTP: validated, and each reseller sees only their own products."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration


def test_a_product_is_created_read_changed_and_deleted(backend: Backend) -> None:
    created = backend.create_product(images=2, sku="LEV-501-32")
    assert created["price"] == "27.90"
    assert created["currency"] == "EUR"
    assert created["marketplace_attributes"]["vinted"]["catalog_id"] == 1839

    read = backend.http("GET", f"/products/{created['id']}")
    assert read.status == 200
    assert read.body == created

    changed = backend.http("PATCH", f"/products/{created['id']}", body={"price": 24.5, "color": "blue"})
    assert changed.status == 200
    assert (changed.body["price"], changed.body["color"], changed.body["title"]) == ("24.50", "blue", created["title"])

    deleted = backend.http("DELETE", f"/products/{created['id']}")
    assert deleted.status == 204
    assert backend.http("GET", f"/products/{created['id']}").status == 404


def test_listing_shows_only_the_callers_products_newest_first(backend: Backend) -> None:
    first = backend.create_product(title="First")
    second = backend.create_product(title="Second")
    backend.create_product(user="bob", title="Bob's")

    page = backend.http("GET", "/products", query={"limit": "1"})
    assert page.status == 200
    assert (page.body["total"], [p["id"] for p in page.body["items"]]) == (2, [second["id"]])
    rest = backend.http("GET", "/products", query={"limit": "1", "offset": "1"})
    assert [p["id"] for p in rest.body["items"]] == [first["id"]]
    assert backend.http("GET", "/products", query={"limit": "0"}).status == 422


def test_another_users_product_cannot_be_read_changed_or_deleted(backend: Backend, sql: Any) -> None:
    alices = backend.create_product()
    for method, body in (("GET", None), ("PATCH", {"title": "mine now"}), ("DELETE", None)):
        assert backend.http(method, f"/products/{alices['id']}", user="bob", body=body).status == 404
    assert backend.http("GET", f"/products/{alices['id']}").body["title"] == alices["title"]


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"price": 0}, "price"),
        ({"price": "12.345"}, "price"),
        ({"title": ""}, "title"),
        ({"currency": "euro"}, "currency"),
        ({"image_urls": ["not a url"]}, "image_urls"),
        ({"image_urls": [f"https://images.example.com/{n}.jpg" for n in range(21)]}, "image_urls"),
        ({"marketplace_attributes": {"shopify": {}}}, "marketplace_attributes"),
        ({"owner": "bob"}, "owner"),
    ],
)
def test_invalid_products_are_refused_and_not_stored(
    backend: Backend, sql: Any, fields: dict[str, Any], complaint: str
) -> None:
    body = {"title": "Jeans", "price": "10.00", **fields}
    reply = backend.http("POST", "/products", body=body)
    assert reply.status == 422
    assert complaint in reply.body["message"]
    assert count(sql, "SELECT count(*) FROM products") == 0


def test_a_required_field_cannot_be_cleared(backend: Backend) -> None:
    product = backend.create_product()
    reply = backend.http("PATCH", f"/products/{product['id']}", body={"title": None})
    assert reply.status == 422
    assert "title" in reply.body["message"]


def test_a_product_with_a_job_in_progress_cannot_be_deleted(backend: Backend) -> None:
    product = backend.create_product()
    job_id = backend.publish(product["id"]).body["id"]
    reply = backend.http("DELETE", f"/products/{product['id']}")
    assert reply.status == 409
    assert reply.body["job_id"] == job_id
