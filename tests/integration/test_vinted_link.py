"""Vinted's link_product end to end (real PostgreSQL, moto, the real handlers, the one fake Vinted): a
listing already on Vinted linked to a product, or made into a new one, and what later jobs make of it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.conftest import Backend
from tests.support.fakes import FakeVinted

pytestmark = pytest.mark.integration

VINTED_ATTRIBUTES: dict[str, Any] = {
    "brand_id": 53,
    "size_id": 207,
    "catalog_id": 1839,
    "status_id": 2,
    "color_ids": [12, 3],
    "package_size_id": 2,
}
PHOTOS = ["https://images.vinted.test/levis-front.jpg", "https://images.vinted.test/levis-back.jpg"]


def link(backend: Backend, params: dict[str, Any] | None, product_id: str | None = None) -> Any:
    body: dict[str, Any] = {"marketplace": "vinted", "action": "link_product"}
    if params is not None:
        body["params"] = params
    if product_id is not None:
        body["product_id"] = product_id
    return backend.http("POST", "/jobs", body=body)


def on_vinted(vinted: FakeVinted, title: str = "Levi's 501, only on Vinted") -> int:
    """An item the user listed on Vinted without crosslist."""
    return vinted.simulator.add_item(
        title,
        "31.50",
        description="Straight fit",
        photo_urls=PHOTOS,
        item_attributes=[{"code": "condition", "ids": [2]}, {"code": "size", "ids": [207]}],
        **VINTED_ATTRIBUTES,
    )


def listings(sql: Any) -> list[dict[str, Any]]:
    with sql.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT product_id::text, external_id, url, status, image_urls FROM marketplace_listings"
                " ORDER BY created_at"
            )
        ).all()
    return [dict(row._mapping) for row in rows]


def completed(backend: Backend, job_id: str) -> dict[str, Any]:
    job = backend.job(job_id)
    assert job["status"] == "completed", job
    return job


def test_an_item_linked_to_a_product_is_its_active_listing_and_a_sync_finds_it_linked(
    backend: Backend, sql: Any
) -> None:
    _, vinted = backend.open_tab()
    product = backend.create_product(images=2)
    item_id = on_vinted(vinted)

    reply = link(backend, {"vinted_item_id": str(item_id)}, product["id"])
    assert reply.status == 202, reply.body
    backend.run_queue()

    job = completed(backend, reply.body["id"])
    url = f"https://www.vinted.fr/items/{item_id}"
    assert job["result"] == {
        "item_id": str(item_id),
        "url": url,
        "product_id": product["id"],
        "created_product": False,
    }
    assert [(c["method"], c["path"]) for c in vinted.commands] == [("GET", f"/api/v2/item_upload/items/{item_id}")]
    # The item shows its own photos, not the product's: none of the product's are recorded as shown.
    assert listings(sql) == [
        {"product_id": product["id"], "external_id": str(item_id), "url": url, "status": "active", "image_urls": []}
    ]

    sync = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "sync"})
    backend.run_queue()

    result = completed(backend, sync.body["id"])["result"]
    assert (result["unlinked"], result["unlinked_total"], result["changed"]) == ([], 0, {})
    assert listings(sql)[0]["status"] == "active"
    assert backend.http("GET", "/marketplaces/vinted/unlinked").body["total"] == 0
    # Linked: the product cannot be published a second time.
    assert backend.publish(product["id"]).body["code"] == "already_listed"


def test_create_product_builds_the_product_from_the_item_and_an_update_keeps_its_photos(
    backend: Backend, sql: Any
) -> None:
    _, vinted = backend.open_tab()
    item_id = on_vinted(vinted)
    photo_ids = list(vinted.simulator.items[item_id]["photo_ids"])

    reply = link(backend, {"vinted_item_id": item_id, "create_product": True})
    assert reply.status == 202, reply.body
    backend.run_queue()

    job = completed(backend, reply.body["id"])
    product_id = job["result"]["product_id"]
    assert job["result"] == {
        "item_id": str(item_id),
        "url": f"https://www.vinted.fr/items/{item_id}",
        "product_id": product_id,
        "created_product": True,
    }
    product = backend.http("GET", f"/products/{product_id}")
    assert product.status == 200
    shown = product.body
    assert (shown["title"], shown["description"], shown["price"], shown["currency"]) == (
        "Levi's 501, only on Vinted",
        "Straight fit",
        "31.50",
        "EUR",
    )
    assert (shown["brand"], shown["size"], shown["condition"], shown["quantity"]) == (None, None, None, 1)
    assert shown["image_urls"] == PHOTOS
    assert shown["marketplace_attributes"] == {"vinted": VINTED_ATTRIBUTES}
    [linked] = listings(sql)
    assert (linked["product_id"], linked["external_id"], linked["status"]) == (product_id, str(item_id), "active")
    assert linked["image_urls"] == PHOTOS  # the listing shows the product's photos: an update keeps them

    assert backend.http("PATCH", f"/products/{product_id}", body={"price": "29.00"}).status == 200
    before = len(vinted.commands)
    update = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "update", "product_id": product_id})
    assert update.status == 202, update.body
    backend.run_queue()

    assert completed(backend, update.body["id"])["result"]["changed"] == ["price"]
    path = f"/api/v2/item_upload/items/{item_id}"
    assert [(c["method"], c["path"]) for c in vinted.commands[before:]] == [("GET", path), ("PUT", path)]
    item = vinted.simulator.items[item_id]
    assert (item["price"], item["photo_ids"], item["color_ids"]) == ("29.00", photo_ids, [12, 3])


def test_an_item_imported_twice_is_one_product(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    item_id = on_vinted(vinted)
    first = link(backend, {"vinted_item_id": item_id, "create_product": True}).body["id"]
    backend.run_queue()
    second = link(backend, {"vinted_item_id": item_id, "create_product": True}).body["id"]
    backend.run_queue()

    product_id = completed(backend, first)["result"]["product_id"]
    assert completed(backend, second)["result"] == {
        "item_id": str(item_id),
        "url": f"https://www.vinted.fr/items/{item_id}",
        "product_id": product_id,
        "created_product": False,
        "already_linked": True,
    }
    assert backend.http("GET", "/products").body["total"] == 1
    assert len(listings(sql)) == 1


def test_an_item_sold_on_vinted_cannot_be_linked(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    item_id = on_vinted(vinted)
    vinted.simulator.sell(item_id)

    reply = link(backend, {"vinted_item_id": item_id, "create_product": True})
    backend.run_queue()

    job = backend.job(reply.body["id"])
    assert (job["status"], job["error"]["code"]) == ("failed", "item_unavailable")
    assert "sold, reserved or gone" in job["error"]["message"]
    assert listings(sql) == []
    assert backend.http("GET", "/products").body["total"] == 0


@pytest.mark.parametrize(
    ("with_product", "params", "code", "reason"),
    [
        (True, None, "invalid_params", "params.vinted_item_id: Field required"),
        (True, {"vinted_item_id": "12ab"}, "invalid_params", "params.vinted_item_id"),
        (True, {"vinted_item_id": "4242", "create_product": "true"}, "invalid_params", "params.create_product"),
        (True, {"vinted_item_id": "4242", "create_product": True}, "invalid_params", "not both"),
        (False, {"vinted_item_id": "4242"}, "invalid_params", "either a product_id"),
        (False, {"vinted_item_id": "4242", "create_product": False}, "invalid_params", "either a product_id"),
    ],
)
def test_bad_params_are_refused_with_the_reason_before_any_job_exists(
    backend: Backend, with_product: bool, params: dict[str, Any] | None, code: str, reason: str
) -> None:
    product_id = backend.create_product(images=1)["id"] if with_product else None

    reply = link(backend, params, product_id)

    assert (reply.status, reply.body["code"]) == (422, code)
    assert reason in reply.body["message"]
    assert backend.http("GET", "/jobs").body["items"] == []


def test_a_product_already_listed_on_vinted_is_refused(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product = backend.create_product(images=1)
    published = backend.publish(product["id"]).body["id"]
    backend.run_queue()
    item_id = completed(backend, published)["result"]["item_id"]

    reply = link(backend, {"vinted_item_id": on_vinted(vinted)}, product["id"])

    assert (reply.status, reply.body["code"], reply.body["external_id"]) == (422, "already_listed", item_id)


def test_another_users_product_cannot_be_linked(backend: Backend) -> None:
    product = backend.create_product(user="bob", images=1)
    reply = link(backend, {"vinted_item_id": "4242"}, product["id"])
    assert reply.status == 404


def test_a_product_whose_listing_was_deleted_is_linked_to_another_item_in_its_place(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product = backend.create_product(images=1)
    published = backend.publish(product["id"]).body["id"]
    backend.run_queue()
    old_item = completed(backend, published)["result"]["item_id"]
    deleted = backend.http(
        "POST", "/jobs", body={"marketplace": "vinted", "action": "delete", "product_id": product["id"]}
    )
    backend.run_queue()
    completed(backend, deleted.body["id"])
    item_id = on_vinted(vinted)

    reply = link(backend, {"vinted_item_id": item_id}, product["id"])
    backend.run_queue()

    completed(backend, reply.body["id"])
    [row] = listings(sql)
    assert (row["external_id"], row["url"], row["status"]) == (
        str(item_id),
        f"https://www.vinted.fr/items/{item_id}",
        "active",
    )
    assert row["external_id"] != old_item
    assert row["image_urls"] == []  # not the photos published to the deleted item: an update uploads them
