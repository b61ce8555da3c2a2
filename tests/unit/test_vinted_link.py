"""Vinted's link_product workflow: what it accepts, the one read it sends, how it reads Vinted's reply, the
product it builds from an item, and what its completion records (through the in-memory lanes)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from crosslist.errors import InvalidRequest
from crosslist.jobs.lanes import LaneTransaction
from crosslist.marketplaces.vinted.link import VintedLink
from crosslist.workflows.base import (
    Completion,
    Duplicate,
    ImportedItem,
    JobContext,
    JsonDict,
    Listed,
    ListingChange,
    ListingRef,
    NewProduct,
    OrderRecord,
    ProductSnapshot,
    Reply,
    StepFailed,
)
from tests.support.lanes import InMemoryLaneStore
from tests.support.products import vinted_product

ITEM_URL = "https://www.vinted.fr/items/4242-levis-501"
ON_VINTED: JsonDict = {
    "id": 4242,
    "title": "  Levi's 501 W32  ",
    "description": "Straight fit, barely worn",
    "price": {"amount": "27.9", "currency_code": "EUR"},
    "brand": "Levi's",
    "brand_id": 53,
    "size_id": 207,
    "size_title": "W32 L32",
    "status": "Très bon état",  # not taken for the condition: its meaning in this read is not known
    "catalog_id": 1839,
    "status_id": 2,
    "package_size_id": 1,
    "color1_id": 12,
    "color2_id": 3,
    "is_unisex": False,
    "photos": [
        {
            "id": 501,
            "url": "https://images1.vinted.net/501-f800.jpg",
            "full_size_url": "https://images1.vinted.net/501.jpg",
        },
        {"id": 502, "url": "http://images1.vinted.net/502.jpg"},
        {"id": 503, "url": "javascript:alert(1)"},
        {"id": 504},
    ],
    "url": ITEM_URL,
}


def ok(result: JsonDict | None) -> Reply:
    return Reply(True, result, None, status=200)


def refused(status: int, text: str = "no") -> Reply:
    return Reply(False, None, text, status=status)


def job(product: ProductSnapshot | None, **params: Any) -> JobContext:
    return JobContext("job-1", "alice", VintedLink().prepare(product, params), {}, 60_000, account_id="31337")


def read(context: JobContext, item: JsonDict) -> JobContext:
    """The context once the read step applied `item` as Vinted's answer."""
    workflow = VintedLink()
    [step] = workflow.steps(context.input)
    context.accumulated = workflow.apply(step, context, ok({"item": item}))
    return context


def listed(status: str, photos: int = 2) -> ProductSnapshot:
    listing = {"external_id": "999", "url": "https://www.vinted.fr/items/999", "status": status, "image_urls": None}
    return vinted_product(photos, listings={"vinted": listing})


# ---------------------------------------------------------------------- what it accepts
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({}, "params.vinted_item_id: Field required"),
        ({"vinted_item_id": "abc"}, "params.vinted_item_id"),
        ({"vinted_item_id": ""}, "params.vinted_item_id"),
        ({"vinted_item_id": "12 34"}, "params.vinted_item_id"),
        ({"vinted_item_id": "0"}, "not a Vinted item id"),
        ({"vinted_item_id": -5}, "params.vinted_item_id"),
        ({"vinted_item_id": 2**63}, "params.vinted_item_id"),
        ({"vinted_item_id": True}, "params.vinted_item_id"),
        ({"vinted_item_id": 42.0}, "params.vinted_item_id"),
        ({"vinted_item_id": "42", "create_product": "yes"}, "params.create_product"),
        ({"vinted_item_id": "42", "create_product": 1}, "params.create_product"),
        ({"vinted_item_id": "42", "item": "42"}, "params.item: Extra inputs are not permitted"),
    ],
)
def test_bad_params_are_refused_saying_which_and_why(params: JsonDict, reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused_request:
        VintedLink().prepare(vinted_product(), params)
    assert refused_request.value.code == "invalid_params"
    assert reason in refused_request.value.message


def test_without_params_at_all_the_item_id_is_asked_for() -> None:
    with pytest.raises(InvalidRequest) as refused_request:
        VintedLink().prepare(vinted_product())
    assert (refused_request.value.code, "vinted_item_id" in refused_request.value.message) == ("invalid_params", True)


def test_neither_a_product_nor_create_product_is_refused() -> None:
    with pytest.raises(InvalidRequest) as refused_request:
        VintedLink().prepare(None, {"vinted_item_id": "4242"})
    assert refused_request.value.code == "invalid_params"
    assert "product_id" in refused_request.value.message
    assert "create_product" in refused_request.value.message


def test_a_product_and_create_product_together_are_refused() -> None:
    with pytest.raises(InvalidRequest) as refused_request:
        VintedLink().prepare(vinted_product(), {"vinted_item_id": "4242", "create_product": True})
    assert refused_request.value.code == "invalid_params"
    assert "not both" in refused_request.value.message


@pytest.mark.parametrize("status", ["active", "sold", "hidden", "reserved", "closed"])
def test_a_product_already_listed_on_vinted_is_refused(status: str) -> None:
    with pytest.raises(InvalidRequest) as refused_request:
        VintedLink().prepare(listed(status), {"vinted_item_id": "4242"})
    assert refused_request.value.code == "already_listed"
    assert refused_request.value.details["external_id"] == "999"


def test_a_product_whose_vinted_listing_was_deleted_can_be_linked_again() -> None:
    assert VintedLink().prepare(listed("deleted"), {"vinted_item_id": 4242})["item_id"] == "4242"


def test_the_item_id_may_be_a_number_or_digits_and_is_kept_in_one_spelling() -> None:
    workflow = VintedLink()
    assert workflow.prepare(vinted_product(), {"vinted_item_id": 4242})["item_id"] == "4242"
    assert workflow.prepare(vinted_product(), {"vinted_item_id": "004242"})["item_id"] == "4242"
    created = workflow.prepare(None, {"vinted_item_id": "4242", "create_product": True})
    assert (created["create_product"], created["product_id"]) == (True, None)


# ---------------------------------------------------------------------- the read
def test_one_repeatable_read_of_the_item_is_sent() -> None:
    workflow = VintedLink()
    context = job(vinted_product(), vinted_item_id="4242")
    [step] = workflow.steps(context.input)
    call = workflow.plan(step, context)
    assert (call.command.method, call.command.path, call.command.payload) == (
        "GET",
        "/api/v2/item_upload/items/4242",
        None,
    )
    assert (call.kind, call.repeatable) == ("read", True)
    assert workflow.verify(step, context) is None


@pytest.mark.parametrize("create_product", [False, True])
def test_an_item_vinted_answers_404_for_fails_the_job_as_unavailable(create_product: bool) -> None:
    workflow = VintedLink()
    product = None if create_product else vinted_product()
    context = job(product, vinted_item_id="4242", create_product=create_product)
    [step] = workflow.steps(context.input)
    with pytest.raises(StepFailed) as failed:
        workflow.apply(step, context, refused(404, "Vinted answered 404 Not Found"))
    assert (failed.value.code, failed.value.kind) == ("item_unavailable", "permanent")
    assert "4242" in failed.value.message
    assert "sold, reserved or gone" in failed.value.message


def test_a_429_on_the_read_pauses_the_lane_as_every_vinted_call() -> None:
    workflow = VintedLink()
    context = job(vinted_product(), vinted_item_id="4242")
    [step] = workflow.steps(context.input)
    with pytest.raises(StepFailed) as failed:
        workflow.apply(step, context, refused(429, "Too many requests"))
    assert (failed.value.code, failed.value.kind) == ("rate_limited", "throttled")


@pytest.mark.parametrize(
    ("create_product", "body", "at"),
    [
        (False, {"items": []}, "item"),
        (False, {"item": {"title": "no id"}}, "item.id"),
        (True, {"item": {"id": 4242, "price": "10.00"}}, "item.title"),
        (True, {"item": {"id": 4242, "title": "   ", "price": "10.00"}}, "item.title"),
        (True, {"item": {"id": 4242, "title": "No price"}}, "item.price"),
        (True, {"item": {**ON_VINTED, "price": {"amount": "27.90", "currency_code": "euro"}}}, "item.price"),
    ],
)
def test_a_reply_in_an_unknown_shape_fails_loudly(create_product: bool, body: JsonDict, at: str) -> None:
    workflow = VintedLink()
    context = job(None if create_product else vinted_product(), vinted_item_id="4242", create_product=create_product)
    [step] = workflow.steps(context.input)
    with pytest.raises(StepFailed) as failed:
        workflow.apply(step, context, ok(body))
    assert (failed.value.code, failed.value.kind) == ("vinted_reply_unrecognised", "permanent")
    assert at in failed.value.message
    assert (failed.value.detail or {})["path"] == "/api/v2/item_upload/items/4242"


# ---------------------------------------------------------------------- the product an item makes
def test_the_product_is_built_from_the_read_item() -> None:
    context = read(job(None, vinted_item_id="4242", create_product=True), ON_VINTED)
    assert context.accumulated["product"] == {
        "title": "Levi's 501 W32",
        "description": "Straight fit, barely worn",
        "price": "27.90",
        "currency": "EUR",
        "brand": "Levi's",
        "size": "W32 L32",
        "condition": None,
        # the largest of each photo, http(s) only
        "image_urls": ["https://images1.vinted.net/501.jpg", "http://images1.vinted.net/502.jpg"],
        "quantity": 1,
        "marketplace_attributes": {
            "vinted": {
                "catalog_id": 1839,
                "status_id": 2,
                "package_size_id": 1,
                "brand_id": 53,
                "size_id": 207,
                "color_ids": [12, 3],
            }
        },
    }
    NewProduct(**context.accumulated["product"])  # exactly the fields a product is created from


def test_an_item_without_names_or_optional_ids_makes_a_product_with_none_of_them() -> None:
    bare = {
        "id": 4242,
        "title": "T" * 250,
        "description": None,
        "price": "12.345",
        "currency": "GBP",
        "brand": 53,  # an id is not a name
        "brand_dto": {"title": "  "},
        "size": "207",
        "catalog_id": "1839",
        "photos": [],
    }
    product = read(job(None, vinted_item_id="4242", create_product=True), bare).accumulated["product"]
    assert (product["title"], product["description"], product["price"], product["currency"]) == (
        "T" * 200,
        "",
        "12.35",
        "GBP",
    )
    assert (product["brand"], product["size"], product["condition"], product["image_urls"]) == (None, None, None, [])
    assert product["marketplace_attributes"]["vinted"] == {
        "catalog_id": 1839,
        "status_id": None,
        "package_size_id": None,
        "brand_id": None,
        "size_id": None,
        "color_ids": [],
    }


def test_a_brand_may_come_as_vinteds_brand_object() -> None:
    item = {**ON_VINTED, "brand": None, "brand_dto": {"id": 53, "title": "Levi's"}}
    assert read(job(None, vinted_item_id="4242", create_product=True), item).accumulated["product"]["brand"] == "Levi's"


@pytest.mark.parametrize("price", ["0", "0.001", "-3", "99999999999"])
def test_an_item_whose_price_a_product_cannot_hold_is_not_imported(price: str) -> None:
    workflow = VintedLink()
    context = job(None, vinted_item_id="4242", create_product=True)
    [step] = workflow.steps(context.input)
    with pytest.raises(StepFailed) as failed:
        workflow.apply(step, context, ok({"item": {**ON_VINTED, "price": price}}))
    assert (failed.value.code, failed.value.kind) == ("item_not_importable", "permanent")


# ---------------------------------------------------------------------- what completing records
class TxRecords:
    """workflows.base.Records over a lane transaction, as the engine's completing turn gives it."""

    def __init__(self, tx: LaneTransaction) -> None:
        self.tx = tx
        self.announced: list[JsonDict] = []

    def listings(self) -> list[ListingRef]:
        return self.tx.listings()

    def update_listings(self, changes: list[ListingChange]) -> None:
        self.tx.update_listings(changes)

    def add_orders(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        return self.tx.add_orders(orders)

    def announce(self, message: JsonDict) -> None:
        self.announced.append(message)

    def create_product(self, fields: NewProduct) -> str:
        return self.tx.create_product(fields)

    def reconcile_catalogue(self, duplicates: list[Duplicate]) -> JsonDict:
        return self.tx.reconcile_catalogue(duplicates)

    def import_listings(self, import_id: str, items: list[ImportedItem]) -> JsonDict:
        return self.tx.import_listings(import_id, items)

    def annotate_listings(self, attributes: dict[str, JsonDict]) -> None:
        self.tx.annotate_listings(attributes)

    def link(self, product_id: str, external_id: str, url: str | None, image_urls: list[str] | None) -> None:
        self.tx.link(product_id, external_id, url, image_urls)


def effects(store: InMemoryLaneStore, completion: Completion) -> JsonDict:
    assert completion.effects is not None
    with store.locked("alice", "vinted") as tx:
        return completion.effects(TxRecords(tx))


def test_linking_a_product_records_its_listing_active_with_the_items_id_and_url() -> None:
    product = vinted_product(id=str(uuid.uuid4()))
    context = read(job(product, vinted_item_id="4242"), ON_VINTED)
    completion = VintedLink().complete(context)
    assert completion.result == {"item_id": "4242", "url": ITEM_URL, "product_id": product.id, "created_product": False}
    # The item's photos are not the product's: none of the product's are shown, so an update uploads them.
    assert completion.listing == Listed(external_id="4242", url=ITEM_URL, status="active", image_urls=[])
    assert effects(InMemoryLaneStore(), completion) == {}


def test_a_product_whose_photos_are_the_items_own_is_linked_showing_them() -> None:
    photos = ["https://images1.vinted.net/501.jpg", "http://images1.vinted.net/502.jpg"]
    product = vinted_product(id=str(uuid.uuid4()), image_urls=photos)
    completion = VintedLink().complete(read(job(product, vinted_item_id="4242"), ON_VINTED))
    assert completion.listing is not None
    assert completion.listing.image_urls == photos


def test_an_item_already_linked_to_another_product_is_reported() -> None:
    store = InMemoryLaneStore()
    other = uuid.uuid4()
    store.listings[("alice", other, "vinted")] = Listed("4242", ITEM_URL)
    product = vinted_product(id=str(uuid.uuid4()))
    completion = VintedLink().complete(read(job(product, vinted_item_id="4242"), ON_VINTED))
    assert effects(store, completion) == {"also_linked_to": [str(other)]}


def test_create_product_creates_the_product_and_links_it_showing_the_items_photos() -> None:
    store = InMemoryLaneStore()
    context = read(job(None, vinted_item_id="4242", create_product=True), ON_VINTED)
    completion = VintedLink().complete(context)
    assert completion.listing is None  # the job has no product: the effects create and link it

    result = {**completion.result, **effects(store, completion)}

    [(product_id, (user, fields))] = store.products.items()
    assert result == {"item_id": "4242", "url": ITEM_URL, "product_id": str(product_id), "created_product": True}
    assert user == "alice"
    assert fields == NewProduct(**context.accumulated["product"])
    assert store.listings[("alice", product_id, "vinted")] == Listed(
        external_id="4242", url=ITEM_URL, status="active", image_urls=fields.image_urls
    )


def test_an_item_imported_twice_makes_one_product() -> None:
    store = InMemoryLaneStore()
    first = VintedLink().complete(read(job(None, vinted_item_id="4242", create_product=True), ON_VINTED))
    second = VintedLink().complete(read(job(None, vinted_item_id="4242", create_product=True), ON_VINTED))
    product_id = effects(store, first)["product_id"]
    assert effects(store, second) == {"product_id": product_id, "created_product": False, "already_linked": True}
    assert len(store.products) == 1
