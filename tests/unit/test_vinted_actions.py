"""Vinted's update, delete and sync workflows: what they accept, the commands they send (paths, bodies,
order), how they read Vinted's replies, and what a sync concludes about the user's listings."""

from __future__ import annotations

from typing import Any

import pytest

from crosslist.errors import InvalidRequest
from crosslist.marketplaces.vinted.delete import VintedDelete
from crosslist.marketplaces.vinted.message import VintedMessage
from crosslist.marketplaces.vinted.sync import VintedSync, reconcile
from crosslist.marketplaces.vinted.update import VintedUpdate
from crosslist.workflows.base import (
    Again,
    JobContext,
    ListingChange,
    ListingRef,
    ProductSnapshot,
    Reply,
    StepFailed,
    Workflow,
)
from tests.support.products import vinted_product

LISTED = {"external_id": "4242", "url": "https://www.vinted.fr/items/4242", "status": "active"}


def listed(
    photos: int = 2, *, shown: list[str] | None = None, status: str = "active", **fields: Any
) -> ProductSnapshot:
    """A product listed on Vinted whose listing shows `shown` (default: the product's own photos)."""
    product = vinted_product(photos, **fields)
    listing = {**LISTED, "status": status, "image_urls": product.image_urls if shown is None else shown}
    return vinted_product(photos, listings={"vinted": listing}, **fields)


def ok(result: dict[str, Any] | None) -> Reply:
    return Reply(True, result, None, status=200)


def refused(status: int, text: str = "no") -> Reply:
    return Reply(False, None, text, status=status)


def context(
    workflow: Workflow, product: ProductSnapshot | None, accumulated: dict[str, Any] | None = None
) -> JobContext:
    return JobContext("job-1", "alice", workflow.prepare(product), accumulated or {}, 60_000, account_id="31337")


# ---------------------------------------------------------------------- delete
def test_delete_posts_to_the_items_delete_path_as_a_repeatable_delete() -> None:
    workflow = VintedDelete()
    job = context(workflow, listed())
    [step] = workflow.steps(job.input)
    call = workflow.plan(step, job)
    assert (call.command.method, call.command.path, call.command.payload) == ("POST", "/api/v2/items/4242/delete", None)
    assert (call.kind, call.repeatable) == ("delete", True)


def test_a_delete_answered_404_means_already_gone_and_still_completes_as_deleted() -> None:
    workflow = VintedDelete()
    job = context(workflow, listed())
    [step] = workflow.steps(job.input)
    job.accumulated = workflow.apply(step, job, refused(404, "not found"))
    completion = workflow.complete(job)
    assert completion.result == {"item_id": "4242", "already_gone": True}
    assert completion.listing is not None
    assert (completion.listing.external_id, completion.listing.status) == ("4242", "deleted")


def test_a_plain_403_on_delete_fails_the_job_with_vinteds_words() -> None:
    workflow = VintedDelete()
    job = context(workflow, listed())
    [step] = workflow.steps(job.input)
    with pytest.raises(StepFailed) as failed:
        workflow.apply(step, job, refused(403, "You cannot delete this item"))
    assert (failed.value.code, failed.value.kind, failed.value.message) == (
        "vinted_refused",
        "permanent",
        "You cannot delete this item",
    )


@pytest.mark.parametrize("workflow", [VintedDelete(), VintedUpdate()])
@pytest.mark.parametrize("product", [vinted_product(), listed(status="deleted")])
def test_a_product_without_a_live_vinted_listing_is_refused(workflow: Workflow, product: ProductSnapshot) -> None:
    with pytest.raises(InvalidRequest) as refused_request:
        workflow.prepare(product)
    assert refused_request.value.code == "not_listed"


# ---------------------------------------------------------------------- update
ON_VINTED = {
    "id": 4242,
    "title": "Old title",
    "description": "Straight fit",
    "price": "30.00",
    "currency": "EUR",
    "brand_id": 53,
    "size_id": None,
    "catalog_id": 1839,
    "status_id": 2,
    "package_size_id": 1,
    "color1_id": 12,
    "color2_id": None,
    "is_unisex": True,  # set on Vinted, not managed by crosslist: kept
    "item_attributes": [{"code": "condition", "ids": [2]}],
    "photos": [{"id": 501, "url": "https://images1.vinted.net/501.jpg"}, {"id": 502, "url": "x"}],
    "url": "https://www.vinted.fr/items/4242",
}


def test_an_update_reads_the_item_then_puts_it_back_with_only_the_products_changes() -> None:
    workflow = VintedUpdate()
    job = context(workflow, listed(title="New title", price="25.00"))
    read, put = workflow.steps(job.input)  # the photos did not change: no upload
    read_call = workflow.plan(read, job)
    assert (read_call.command.method, read_call.command.path) == ("GET", "/api/v2/item_upload/items/4242")
    assert (read_call.kind, read_call.repeatable) == ("read", True)

    job.accumulated = workflow.apply(read, job, ok({"item": ON_VINTED}))
    put_call = workflow.plan(put, job)
    assert (put_call.command.method, put_call.command.path, put_call.kind) == (
        "PUT",
        "/api/v2/item_upload/items/4242",
        "write",
    )
    assert put_call.repeatable  # the same full object again changes nothing
    body = (put_call.command.payload or {})["item"]
    assert (body["id"], body["title"], body["price"]) == (4242, "New title", "25.00")
    assert body["is_unisex"] is True
    assert body["color_ids"] == [12]  # the product has no colour: Vinted's stays
    assert body["assigned_photos"] == [{"id": 501, "orientation": 0}, {"id": 502, "orientation": 0}]
    assert {"photos", "url", "color1_id", "color2_id"}.isdisjoint(body)
    assert body["item_attributes"] == [{"code": "condition", "ids": [2]}]

    job.accumulated = workflow.apply(put, job, ok({"item": {"id": 4242, "url": ON_VINTED["url"]}}))
    completion = workflow.complete(job)
    assert completion.result["changed"] == ["price", "title"]
    assert completion.listing is not None
    assert completion.listing.image_urls == vinted_product().image_urls


def test_changed_photos_are_uploaded_again_and_assigned_instead_of_the_old_ones() -> None:
    workflow = VintedUpdate()
    job = context(workflow, listed(shown=["https://images.example.com/old.jpg"]))
    steps = workflow.steps(job.input)
    assert [s.name for s in steps] == ["read_item", "upload_photo_1", "upload_photo_2", "put_item"]
    job.accumulated = workflow.apply(steps[0], job, ok({"item": ON_VINTED}))
    for n, photo_step in enumerate(steps[1:3]):
        call = workflow.plan(photo_step, job)
        assert (call.command.path, call.repeatable) == ("/api/v2/photos", True)
        job.accumulated = workflow.apply(photo_step, job, ok({"id": 900 + n}))
    body = (workflow.plan(steps[3], job).command.payload or {})["item"]
    assert body["assigned_photos"] == [{"id": 900, "orientation": 0}, {"id": 901, "orientation": 0}]


def test_an_item_vinted_no_longer_lets_edit_fails_the_update_saying_why() -> None:
    workflow = VintedUpdate()
    job = context(workflow, listed())
    read = workflow.steps(job.input)[0]
    with pytest.raises(StepFailed) as failed:
        workflow.apply(read, job, refused(404, "not found"))
    assert (failed.value.code, failed.value.kind) == ("item_unavailable", "permanent")
    assert "sold, reserved or gone" in failed.value.message


def test_an_item_reply_in_an_unknown_shape_fails_loudly_with_the_path_and_the_start_of_the_body() -> None:
    workflow = VintedUpdate()
    job = context(workflow, listed())
    read = workflow.steps(job.input)[0]
    body = {"listing": {"identifier": "4242", "blob": "x" * 2000}}
    with pytest.raises(StepFailed) as failed:
        workflow.apply(read, job, ok(body))
    assert (failed.value.code, failed.value.kind) == ("vinted_reply_unrecognised", "permanent")
    detail = failed.value.error["detail"]
    assert detail["path"] == "/api/v2/item_upload/items/4242"
    assert detail["body"].startswith('{"listing": {"identifier": "4242"')
    assert len(detail["body"]) == 500


# ---------------------------------------------------------------------- sync
def page(number: int, total: int, items: list[dict[str, Any]]) -> Reply:
    return ok({"items": items, "pagination": {"current_page": number, "total_pages": total, "total_entries": 0}})


def item(item_id: int, **state: Any) -> dict[str, Any]:
    return {"id": item_id, "title": f"Item {item_id}", "price": {"amount": "10.00", "currency_code": "EUR"}, **state}


def test_a_sync_reads_the_wardrobe_page_by_page_checkpointing_each_page() -> None:
    workflow = VintedSync()
    job = context(workflow, None)
    [step] = workflow.steps(job.input)
    paths = []
    for number in (1, 2, 3):
        call = workflow.plan(step, job)
        paths.append(call.command.path)
        assert (call.kind, call.repeatable) == ("read", True)
        applied = workflow.apply(step, job, page(number, 3, [item(number * 10), item(number * 10 + 1)]))
        if number < 3:
            assert isinstance(applied, Again)
            assert applied.note == f"page {number} of 3 read"
            job.accumulated = applied.data
        else:
            assert not isinstance(applied, Again)
            job.accumulated = applied
    assert paths == [f"/api/v2/wardrobe/31337/items?page={n}&per_page=96&order=relevance" for n in (1, 2, 3)]
    assert sorted(job.accumulated["seen"]) == ["10", "11", "20", "21", "30", "31"]


def test_reconciling_marks_sold_hidden_reserved_and_vanished_listings_and_reports_drift_and_unlinked() -> None:
    seen: dict[str, dict[str, Any]] = {
        "1": {"state": "sold", "title": "Jeans", "price": "20.00", "url": None},
        "2": {"state": "hidden", "title": "Shirt", "price": "15.00", "url": None},
        "3": {"state": "active", "title": "Coat (new title on Vinted)", "price": "99.00", "url": None},
        "4": {"state": "active", "title": "Dress", "price": "30.00", "url": None},
        "9": {"state": "active", "title": "Nobody's", "price": "5.00", "url": "https://www.vinted.fr/items/9"},
    }
    listings = [
        ListingRef("p1", "1", None, "active", "Jeans", "20.00"),
        ListingRef("p2", "2", None, "active", "Shirt", "15"),
        ListingRef("p3", "3", None, "hidden", "Coat", "80.00"),
        ListingRef("p4", "4", None, "active", "Dress", "30.00"),
        ListingRef("p5", "5", None, "active", "Gone", "10.00"),
        ListingRef("p6", "6", None, "deleted", "Long gone", "10.00"),
    ]
    reconciled = reconcile(seen, listings)
    assert reconciled.changes == [
        ListingChange("p1", "sold"),
        ListingChange("p2", "hidden"),
        ListingChange("p3", "active"),
        ListingChange("p5", "deleted"),
    ]
    assert reconciled.result["changed"] == {"active": 1, "deleted": 1, "hidden": 1, "sold": 1}
    assert reconciled.result["drift"] == [
        {"product_id": "p3", "field": "title", "vinted": "Coat (new title on Vinted)"},
        {"product_id": "p3", "field": "price", "vinted": "99.00"},
    ]
    assert [u["item_id"] for u in reconciled.result["unlinked"]] == ["9"]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"is_closed": True, "item_closing_action": "sold"}, "sold"),
        ({"is_closed": True, "item_closing_action": None}, "closed"),
        ({"is_reserved": True}, "reserved"),
        ({"is_hidden": True}, "hidden"),
        ({"is_draft": True}, "hidden"),
        ({}, "active"),
    ],
)
def test_a_wardrobe_item_state_is_read_from_vinteds_flags(state: dict[str, Any], expected: str) -> None:
    workflow = VintedSync()
    job = context(workflow, None)
    [step] = workflow.steps(job.input)
    data = workflow.apply(step, job, page(1, 1, [item(7, **state)]))
    assert not isinstance(data, Again)
    assert data["seen"]["7"]["state"] == expected


def test_a_wardrobe_page_in_an_unknown_shape_fails_the_sync_loudly() -> None:
    workflow = VintedSync()
    job = context(workflow, None)
    [step] = workflow.steps(job.input)
    with pytest.raises(StepFailed) as failed:
        workflow.apply(step, job, ok({"catalog_items": []}))
    assert failed.value.code == "vinted_reply_unrecognised"
    assert failed.value.error["detail"]["path"].startswith("/api/v2/wardrobe/31337/items?page=1")


# ---------------------------------------------------------------------- message
def test_a_message_is_posted_to_the_conversations_replies_and_never_sent_twice_blindly() -> None:
    workflow = VintedMessage()
    job = JobContext(
        "job-1", "alice", workflow.prepare(None, {"conversation_id": 123, "body": "Still available!"}), {}, 60_000
    )
    [step] = workflow.steps(job.input)
    call = workflow.plan(step, job)
    assert (call.command.method, call.command.path, call.kind, call.repeatable) == (
        "POST",
        "/api/v2/conversations/123/replies",
        "write",
        False,
    )
    assert call.command.payload == {
        "reply": {"body": "Still available!", "photo_temp_uuids": None, "is_personal_data_sharing_check_skipped": False}
    }
    job.accumulated = workflow.apply(step, job, ok({"reply": {"id": 50001, "body": "Still available!"}}))
    assert workflow.complete(job).result == {"conversation_id": "123", "reply_id": "50001"}
    # Its answer lost: it may have been sent, so it is not sent again.
    with pytest.raises(StepFailed) as unconfirmed:
        workflow.verify(step, job)
    assert (unconfirmed.value.code, unconfirmed.value.kind) == ("message_unconfirmed", "permanent")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "params.conversation_id: Field required"),
        ({"conversation_id": "12a", "body": "hi"}, "params.conversation_id: String should match pattern"),
        ({"conversation_id": "12", "body": "   "}, "the message is empty"),
        ({"conversation_id": "12", "body": "x" * 2001}, "at most 2000 characters"),
        ({"conversation_id": "12", "body": "hi", "photo": "x"}, "params.photo: Extra inputs are not permitted"),
    ],
)
def test_a_message_that_cannot_be_sent_is_refused_saying_why(params: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused_request:
        VintedMessage().prepare(None, params)
    assert refused_request.value.code == "invalid_params"
    assert reason in str(refused_request.value)
