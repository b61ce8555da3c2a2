"""Vinted's update, delete and sync end to end (real PostgreSQL, moto, the real handlers, the one fake
Vinted): the exact commands sent, and what the listings, products and jobs end up as."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from crosslist.jobs.engine import LaneEngine
from tests.integration.conftest import Backend
from tests.support.fakes import FakeVinted

pytestmark = pytest.mark.integration


def job_for(backend: Backend, action: str, product_id: str | None = None, user: str = "alice") -> str:
    body: dict[str, Any] = {"marketplace": "vinted", "action": action}
    if product_id is not None:
        body["product_id"] = product_id
    reply = backend.http("POST", "/jobs", user=user, body=body)
    assert reply.status == 202, reply.body
    return str(reply.body["id"])


def published(backend: Backend, vinted: FakeVinted, images: int = 2, **fields: Any) -> tuple[str, int]:
    """A product published on Vinted: (product id, Vinted item id)."""
    product = backend.create_product(images=images, **fields)
    job_id = backend.publish(product["id"]).body["id"]
    backend.run_queue()
    job = backend.job(job_id)
    assert job["status"] == "completed", job
    return product["id"], int(job["result"]["item_id"])


def listing(sql: Any, product_id: str) -> dict[str, Any]:
    with sql.connect() as connection:
        row = connection.execute(
            text("SELECT external_id, status, image_urls FROM marketplace_listings WHERE product_id = :id"),
            {"id": product_id},
        ).one()
    return dict(row._mapping)


def calls(vinted: FakeVinted, since: int = 0) -> list[tuple[str, str]]:
    return [(c["method"], c["path"]) for c in vinted.commands[since:]]


# ---------------------------------------------------------------------- update
def test_an_update_changes_only_what_changed_and_keeps_the_items_photos(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    vinted.simulator.items[item_id]["is_unisex"] = True  # set by the user on Vinted itself
    photos_before = list(vinted.simulator.items[item_id]["photo_ids"])
    before = len(vinted.commands)
    assert (
        backend.http("PATCH", f"/products/{product_id}", body={"title": "Levi's 501, hemmed", "price": "24.50"}).status
        == 200
    )

    job_id = job_for(backend, "update", product_id)
    backend.run_queue()

    job = backend.job(job_id)
    assert job["status"] == "completed", job
    assert job["result"]["changed"] == ["price", "title"]
    path = f"/api/v2/item_upload/items/{item_id}"
    assert calls(vinted, before) == [("GET", path), ("PUT", path)]  # no photo uploaded again
    item = vinted.simulator.items[item_id]
    assert (item["title"], item["price"], item["is_unisex"]) == ("Levi's 501, hemmed", "24.50", True)
    assert item["photo_ids"] == photos_before
    assert listing(sql, product_id)["external_id"] == str(item_id)


def test_an_update_after_the_photos_changed_uploads_and_assigns_the_new_ones(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    new_photos = ["https://images.example.com/new-front.jpg"]
    assert backend.http("PATCH", f"/products/{product_id}", body={"image_urls": new_photos}).status == 200
    before = len(vinted.commands)

    job_id = job_for(backend, "update", product_id)
    backend.run_queue()

    assert backend.job(job_id)["status"] == "completed"
    assert [c["step"] for c in vinted.commands[before:]] == ["read_item", "upload_photo_1", "put_item"]
    [photo_id] = vinted.simulator.items[item_id]["photo_ids"]
    assert vinted.simulator.photos[photo_id] == new_photos[0]
    assert listing(sql, product_id)["image_urls"] == new_photos


def test_updating_an_item_sold_on_vinted_fails_saying_so(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    vinted.simulator.sell(item_id)

    job_id = job_for(backend, "update", product_id)
    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["error"]["code"]) == ("failed", "item_unavailable")


# ---------------------------------------------------------------------- delete
def test_a_delete_removes_the_item_and_marks_the_listing_deleted(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    before = len(vinted.commands)

    job_id = job_for(backend, "delete", product_id)
    backend.run_queue()

    job = backend.job(job_id)
    assert job["status"] == "completed"
    assert job["result"] == {"item_id": str(item_id), "already_gone": False}
    assert calls(vinted, before) == [("POST", f"/api/v2/items/{item_id}/delete")]
    assert item_id not in vinted.simulator.items
    assert listing(sql, product_id)["status"] == "deleted"
    # Deleted: the product can be published again.
    assert backend.publish(product_id).status == 202


def test_deleting_an_item_already_gone_from_vinted_succeeds(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    vinted.simulator.remove(item_id)  # deleted on the site

    job_id = job_for(backend, "delete", product_id)
    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["result"]["already_gone"]) == ("completed", True)
    assert listing(sql, product_id)["status"] == "deleted"
    # Nothing left to delete: a second delete is refused before it reaches Vinted.
    reply = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "delete", "product_id": product_id})
    assert (reply.status, reply.body["code"]) == (422, "not_listed")


# ---------------------------------------------------------------------- sync
class Killed(BaseException):
    """process_job killed (a timeout, an out-of-memory): no handler code runs after it."""


def test_a_sync_of_250_items_interrupted_after_page_2_resumes_at_page_3_and_reconciles(
    backend: Backend, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, vinted = backend.open_tab()
    products = [published(backend, vinted, images=1, title=f"Listed {n}") for n in range(4)]
    (sold_product, sold_item), (hidden_product, hidden_item), (gone_product, gone_item), (kept_product, _) = products
    for n in range(247):
        vinted.simulator.add_item(f"Only on Vinted {n}", "12.00")
    vinted.simulator.sell(sold_item)
    vinted.simulator.hide(hidden_item)
    vinted.simulator.remove(gone_item)  # 250 items left: pages of 96, 96 and 58
    before = len(vinted.commands)

    carry_out = LaneEngine._carry_out
    killed: list[str] = []

    def die_once_after_page_2(self: LaneEngine, user_id: str, marketplace: str, turn: Any) -> bool:
        if not killed and any("page 2 of 3 read" in str(m.get("message")) for m in turn.messages):
            killed.append("after page 2")  # page 2 is saved; page 3's call is committed, not sent
            raise Killed
        return carry_out(self, user_id, marketplace, turn)

    monkeypatch.setattr(LaneEngine, "_carry_out", die_once_after_page_2)
    job_id = job_for(backend, "sync")
    for _ in range(5):
        try:
            backend.run_queue()
        except Killed:
            for message in backend.delivering:  # its message comes back (after its visibility timeout)
                backend.sqs.change_message_visibility(
                    QueueUrl=backend.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            continue
        break

    job = backend.job(job_id)
    assert killed == ["after page 2"]
    assert job["status"] == "completed", job
    pages = [c["path"].split("?")[1].split("&")[0] for c in vinted.commands[before:]]
    assert pages == ["page=1", "page=2", "page=3"]  # page 3 once: never pages 1 and 2 again
    statuses = {product: listing(sql, product)["status"] for product, _ in products}
    assert statuses == {sold_product: "sold", hidden_product: "hidden", gone_product: "deleted", kept_product: "active"}
    assert job["result"]["changed"] == {"deleted": 1, "hidden": 1, "sold": 1}
    assert job["result"]["unlinked_total"] == 247
    unlinked = backend.http("GET", "/marketplaces/vinted/unlinked")
    assert unlinked.status == 200
    assert unlinked.body["total"] == 247
    assert unlinked.body["sync_job_id"] == job_id
    assert {item["title"] for item in unlinked.body["items"]} == {f"Only on Vinted {n}" for n in range(247)}


def test_a_429_in_the_middle_of_a_sync_pauses_the_lane_and_the_sync_completes_after_it(
    backend: Backend, settings: Callable[..., None]
) -> None:
    settings(throttle_pause="1")
    tab, vinted = backend.open_tab()
    for n in range(100):
        vinted.simulator.add_item(f"Item {n}")

    def throttle_page_2(message: dict[str, Any]) -> None:
        if message.get("type") == "plugin.command" and "page=2" in message["path"] and not vinted.simulator.faults:
            vinted.simulator.faults["read_wardrobe"] = ["throttled"]
        vinted(message)

    backend.gateway.listeners[tab] = throttle_page_2
    job_id = job_for(backend, "sync")
    backend.run_queue()
    job = backend.job(job_id)
    assert (job["status"], job["wait_reason"]) == ("waiting", "rate_limited")

    backend.run_queue(wait_timers=30)

    job = backend.job(job_id)
    assert job["status"] == "completed", job
    assert job["attempts"] == 1  # a pause uses no attempt
    pages = [c["path"].split("?")[1].split("&")[0] for c in vinted.commands]
    assert pages == ["page=1", "page=2", "page=2"]
    assert job["result"]["unlinked_total"] == 100


def test_a_wardrobe_page_vinted_changed_fails_the_sync_loudly(backend: Backend) -> None:
    tab, vinted = backend.open_tab()

    def changed_shape(message: dict[str, Any]) -> None:
        if message.get("type") == "plugin.command":
            answer = {"items_v3": [], "meta": {"page": 1}}
            backend.send(
                tab, {"action": "plugin_result", "request_id": message["request_id"], "success": True, "result": answer}
            )

    backend.gateway.listeners[tab] = changed_shape
    job_id = job_for(backend, "sync")
    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["error"]["code"]) == ("failed", "vinted_reply_unrecognised")
    assert job["error"]["detail"]["path"].startswith("/api/v2/wardrobe/")
    assert "items_v3" in job["error"]["detail"]["body"]
    assert vinted.commands == []


# ---------------------------------------------------------------------- orders
def test_orders_are_imported_once_even_when_imported_twice_and_a_sale_marks_its_listing_sold(
    backend: Backend, sql: Any
) -> None:
    tab, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, images=1)
    other = vinted.simulator.add_item("Sold before crosslist", "8.00")
    vinted.simulator.sell(other, buyer="marie")
    sale = vinted.simulator.sell(item_id, buyer="lea")
    for n in range(120):  # two pages of 100
        vinted.simulator.sell(vinted.simulator.add_item(f"Old sale {n}", "5.00"))

    first = job_for(backend, "orders")
    backend.run_queue()
    second = job_for(backend, "orders")
    backend.run_queue()

    results = [backend.job(job_id)["result"] for job_id in (first, second)]
    assert [(r["orders_seen"], r["orders_new"]) for r in results] == [(122, 122), (122, 0)]
    assert results[0]["listings_sold"] == [product_id]
    assert listing(sql, product_id)["status"] == "sold"
    [sold] = backend.gateway.of_type(tab, "listing.sold")
    assert (sold["product_id"], sold["external_id"], sold["order_id"]) == (product_id, str(item_id), str(sale))

    page = backend.http("GET", "/orders", query={"marketplace": "vinted", "limit": "100"})
    assert page.status == 200
    assert len(page.body["items"]) == 100
    rest = backend.http("GET", "/orders", query={"cursor": page.body["next_cursor"]})
    assert len(rest.body["items"]) == 22
    assert rest.body["next_cursor"] is None
    orders = {o["external_order_id"]: o for o in page.body["items"] + rest.body["items"]}
    assert len(orders) == 122
    ours = orders[str(sale)]
    assert (ours["product_id"], ours["item_ids"], ours["buyer"], ours["currency"]) == (
        product_id,
        [str(item_id)],
        "lea",
        "EUR",
    )
    # Another user sees none of them.
    assert backend.http("GET", "/orders", user="bob").body["items"] == []


# ---------------------------------------------------------------------- message
def test_a_message_reaches_the_conversation_once_even_when_its_answer_is_lost(
    backend: Backend, short_plugin_timeout: int
) -> None:
    _, vinted = backend.open_tab(lose_reply={"send_reply"})
    vinted.simulator.open_conversation("777")
    body = {
        "marketplace": "vinted",
        "action": "message",
        "params": {"conversation_id": "777", "body": "Yes, still here"},
    }
    lost = backend.http("POST", "/jobs", body=body).body["id"]
    backend.run_queue(wait_timers=30)

    job = backend.job(lost)
    assert (job["status"], job["error"]["code"]) == ("failed", "message_unconfirmed")
    assert [reply["body"] for reply in vinted.simulator.conversations["777"]] == ["Yes, still here"]  # once

    vinted.lose_reply.clear()
    sent = backend.http("POST", "/jobs", body={**body, "params": {"conversation_id": "777", "body": "Shipped!"}})
    backend.run_queue()
    job = backend.job(sent.body["id"])
    assert job["status"] == "completed"
    assert job["result"]["conversation_id"] == "777"
    assert [reply["body"] for reply in vinted.simulator.conversations["777"]] == ["Yes, still here", "Shipped!"]


def test_a_message_without_its_text_is_refused_before_any_job_exists(backend: Backend) -> None:
    body = {"marketplace": "vinted", "action": "message", "params": {"conversation_id": "777", "body": " "}}
    reply = backend.http("POST", "/jobs", body=body)
    assert (reply.status, reply.body["code"]) == (422, "invalid_params")
    assert "the message is empty" in reply.body["message"]
    assert backend.http("GET", "/jobs").body["items"] == []


# ---------------------------------------------------------------------- relist
def test_a_relist_creates_the_new_listing_sees_it_then_deletes_the_old_and_moves_the_listing(
    backend: Backend, sql: Any
) -> None:
    _, vinted = backend.open_tab()
    product_id, old_item = published(backend, vinted, images=2)
    vinted.simulator.items[old_item]["is_unisex"] = True  # set on Vinted: the new listing keeps it
    before = len(vinted.commands)

    job_id = job_for(backend, "relist", product_id)
    backend.run_queue()

    job = backend.job(job_id)
    assert job["status"] == "completed", job
    new_item = int(job["result"]["item_id"])
    assert job["result"]["old_item_id"] == str(old_item)
    assert [(c["step"], c["method"]) for c in vinted.commands[before:]] == [
        ("read_item", "GET"),
        ("upload_photo_1", "POST"),
        ("upload_photo_2", "POST"),
        ("create_item", "POST"),
        ("confirm_item", "GET"),
        ("delete_old", "POST"),
    ]
    assert list(vinted.simulator.items) == [new_item]  # one live copy: the new one
    assert vinted.simulator.items[new_item]["is_unisex"] is True
    assert listing(sql, product_id)["external_id"] == str(new_item)


def test_a_relist_whose_create_reply_was_lost_still_ends_with_exactly_one_live_listing(
    backend: Backend, sql: Any, short_plugin_timeout: int
) -> None:
    _, vinted = backend.open_tab()
    product_id, old_item = published(backend, vinted, images=1)
    vinted.lose_reply.add("create_item")  # the new listing is created on Vinted, its answer never comes

    job_id = job_for(backend, "relist", product_id)
    backend.run_queue(wait_timers=30)

    job = backend.job(job_id)
    assert job["status"] == "completed", job
    [new_item] = vinted.simulator.items  # the old one deleted, the new one created once
    assert new_item != old_item
    assert job["result"]["item_id"] == str(new_item)
    creates = [c for c in vinted.commands if c["step"] == "create_item" and c["method"] == "POST"]
    assert len(creates) == 2  # the publish's and the relist's: the lost one was looked for, not sent again
    assert listing(sql, product_id)["external_id"] == str(new_item)


def test_a_sold_out_product_cannot_be_relisted(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, images=1)
    assert backend.http("PATCH", f"/products/{product_id}", body={"quantity": 0}).status == 200
    before = len(vinted.commands)

    reply = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "relist", "product_id": product_id})
    backend.run_queue()

    assert (reply.status, reply.body["code"]) == (422, "not_publishable")
    assert "quantity: nothing left to sell" in reply.body["message"]
    assert vinted.commands[before:] == []
    assert list(vinted.simulator.items) == [item_id]  # the listing stays as it was


def test_a_sold_listing_cannot_be_relisted(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, images=1)
    vinted.simulator.sell(item_id)

    job_id = job_for(backend, "relist", product_id)
    backend.run_queue()

    job = backend.job(job_id)
    assert (job["status"], job["error"]["code"]) == ("failed", "item_unavailable")
    assert item_id in vinted.simulator.items  # nothing created, nothing deleted
    assert len(vinted.simulator.items) == 1


def test_a_batch_of_deletes_is_a_batch_like_any_other(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    products = [published(backend, vinted, images=1)[0] for _ in range(3)]
    never_listed = backend.create_product(images=1)["id"]

    created = backend.http(
        "POST",
        "/jobs/batch",
        body={"marketplace": "vinted", "action": "delete", "product_ids": [*products, never_listed]},
    )
    assert created.status == 202, created.body
    assert [(r["product_id"], r["code"]) for r in created.body["refused"]] == [(never_listed, "not_listed")]
    backend.run_queue()

    batch = backend.http("GET", f"/batches/{created.body['id']}").body
    assert batch["counts"]["completed"] == 3
    assert vinted.simulator.items == {}
    assert {listing(sql, product)["status"] for product in products} == {"deleted"}
