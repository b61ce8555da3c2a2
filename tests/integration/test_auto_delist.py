"""Auto-delist end to end (real PostgreSQL, moto, the real handlers, the one fake Vinted): a sale an orders import
finds deletes the product's listings on its other marketplaces at once (or lowers their quantity while stock
remains), and `GET /products/{id}/sales` shows what became of each.

eBay's and Etsy's own workflows are replaced here by instant ones (a job is done in one step, no call), so what
is checked is auto-delist's part: which jobs exist, in what order they run, and what the log says.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from crosslist import runtime
from crosslist.marketplaces import Marketplace
from crosslist.workflows.base import (
    Completion,
    Done,
    HttpCall,
    JobContext,
    JsonDict,
    Listed,
    OrderRecord,
    ProductSnapshot,
    Records,
    Reply,
    Step,
    StepAction,
)
from crosslist.workflows.registry import WORKFLOWS
from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO
from tests.integration.conftest import Backend
from tests.integration.conftest import Reply as HttpReply
from tests.support.events import http_event
from tests.support.fakes import FakeVinted
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------- instant eBay and Etsy
@dataclass
class InstantListingAction:
    """An eBay or Etsy update or delete, done in one step without a call; its input is what it was given."""

    marketplace: Marketplace
    action: str

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        assert product is not None
        return {"listing_id": product.listings[self.marketplace]["external_id"], "quantity": product.quantity}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("call", f"{self.action} on {self.marketplace}", kind="call")]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        return Done({})

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        return {}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return None

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None

    def complete(self, context: JobContext) -> Completion:
        listing_id = str(context.input["listing_id"])
        listing = Listed(listing_id, None, "deleted") if self.action == "delete" else Listed(listing_id, None)
        return Completion(result={"listing_id": listing_id}, listing=listing)


@dataclass
class OrdersImport:
    """An eBay or Etsy orders import that finds `orders`, as the real ones record them: after one API call (a
    stub answers it), so it completes where theirs do, in the engine's HTTP path."""

    marketplace: Marketplace
    orders: list[OrderRecord] = field(default_factory=list)
    calls: int = 0  # made to the API
    action: str = "sync_orders"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return {}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("read_orders", "Reading your sales", kind="read_orders")]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        return HttpCall(method="GET", path="/orders", kind="read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        assert reply.success
        return {}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return None

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None

    def complete(self, context: JobContext) -> Completion:
        return Completion(result={}, effects=self._record)

    def _record(self, records: Records) -> JsonDict:
        return {"orders_new": len(records.add_orders(self.orders))}


@pytest.fixture
def marketplaces(sql: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, OrdersImport]]:
    """Alice's eBay and Etsy accounts, connected, with instant workflows; the orders imports by marketplace."""
    imports: dict[str, OrdersImport] = {}

    def api(user_id: str, marketplace: str, call: HttpCall, timeout_seconds: float) -> Reply:
        imports[marketplace].calls += 1
        return Reply(True, {}, None, status=200)

    monkeypatch.setattr(runtime, "marketplace_api", lambda: api)
    for marketplace in ("ebay", "etsy"):
        for action in ("update", "delete"):
            monkeypatch.setitem(WORKFLOWS, f"{action}_{marketplace}", InstantListingAction(marketplace, action))
        imports[marketplace] = OrdersImport(marketplace)
        monkeypatch.setitem(WORKFLOWS, f"sync_orders_{marketplace}", imports[marketplace])
        with sql.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO oauth_credentials (id, user_id, marketplace, access_token_encrypted, scopes,"
                    " expires_at, status) VALUES (:id, 'alice', :marketplace, :token, '', now() + interval '1 hour',"
                    " 'active')"
                ),
                {"id": uuid.uuid4(), "marketplace": marketplace, "token": b"sealed"},
            )
    with sql.begin() as connection:  # the shop Etsy's jobs need
        connection.execute(
            text(
                "INSERT INTO seller_settings (user_id, marketplace, settings) VALUES ('alice', 'etsy', :s)"
                " ON CONFLICT (user_id, marketplace) DO UPDATE SET settings = EXCLUDED.settings"
            ),
            {"s": '{"shop_id": 1}'},
        )
    yield imports
    with sql.begin() as connection:  # not a table the tests empty between them
        connection.execute(text("DELETE FROM seller_settings WHERE user_id = 'alice'"))


# ---------------------------------------------------------------------- helpers
def published(backend: Backend, vinted: FakeVinted, **fields: Any) -> tuple[str, int]:
    """A product published on Vinted through crosslist: (product id, Vinted item id)."""
    product = backend.create_product(images=1, **fields)
    job_id = backend.publish(product["id"]).body["id"]
    backend.run_queue()
    job = backend.job(job_id)
    assert job["status"] == "completed", job
    return product["id"], int(job["result"]["item_id"])


def list_on(sql: Any, product_id: str, marketplace: str, external_id: str, status: str = "active") -> None:
    """The product's listing on eBay or Etsy, as a publish through crosslist leaves it."""
    with sql.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO marketplace_listings (id, user_id, product_id, marketplace, external_id, status)"
                " VALUES (:id, 'alice', :product, :marketplace, :external_id, :status)"
            ),
            {"id": uuid.uuid4(), "product": product_id, "marketplace": marketplace, "external_id": external_id}
            | {"status": status},
        )


def create_job(backend: Backend, marketplace: str, action: str, product_id: str | None = None) -> str:
    body: dict[str, Any] = {"marketplace": marketplace, "action": action}
    if product_id is not None:
        body["product_id"] = product_id
    reply = backend.http("POST", "/jobs", body=body)
    assert reply.status == 202, reply.body
    return str(reply.body["id"])


def jobs_of(sql: Any, product_id: str) -> list[dict[str, Any]]:
    """The product's jobs, oldest first."""
    with sql.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id::text, marketplace, action_code AS action, status::text, priority, input, error,"
                " started_at, cancel_requested_at FROM marketplace_jobs WHERE product_id = :product"
                " ORDER BY created_at"
            ),
            {"product": product_id},
        ).all()
    return [dict(row._mapping) for row in rows]


def listing_status(sql: Any, product_id: str, marketplace: str) -> str:
    with sql.connect() as connection:
        return str(
            connection.execute(
                text("SELECT status FROM marketplace_listings WHERE product_id = :p AND marketplace = :m"),
                {"p": product_id, "m": marketplace},
            ).scalar_one()
        )


def sale_of(product_id: str, external_order_id: str, quantity: int = 1) -> OrderRecord:
    return OrderRecord(
        external_order_id=external_order_id,
        item_ids=[f"item-{external_order_id}"],
        title="Levi's 501 jeans",
        price="27.90",
        currency="EUR",
        buyer="lea",
        status="paid",
        sold_at=datetime.now(UTC).isoformat(),
        product_id=product_id,
        quantity=quantity,
    )


def products_api(method: str, path: str, user: str = "alice", body: Any = None) -> HttpReply:
    """The products function (GET /products/{id}/sales, /settings), as the HTTP API routes to it."""
    handler = load_handler(REPO / "functions" / "products")
    event = http_event(method, path, body=body, headers={"authorization": f"Bearer {token_for(user)}"})
    response = handler(event, LambdaContext("http"))
    raw = response.get("body")
    return HttpReply(response["statusCode"], json.loads(raw) if raw else None, response.get("headers", {}))


def sales(product_id: str) -> list[dict[str, Any]]:
    reply = products_api("GET", f"/products/{product_id}/sales")
    assert reply.status == 200, reply.body
    return list(reply.body["items"])


def drop_wake_ups(backend: Backend) -> None:
    """Lose every lane wake-up queued so far (the sweeper would find their jobs later)."""
    while messages := backend.receive():
        for message in messages:
            backend.sqs.delete_message(QueueUrl=backend.queue_url, ReceiptHandle=message["ReceiptHandle"])


# ---------------------------------------------------------------------- a sale with no stock left
def test_a_vinted_sale_deletes_the_ebay_and_etsy_listings_first_in_their_lanes_logs_each_and_happens_once(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    list_on(sql, product_id, "ebay", "ebay-111")
    list_on(sql, product_id, "etsy", "etsy-222")
    # Another product's eBay update has waited in its lane for a while (its wake-up was lost).
    other = backend.create_product(title="Other jeans")
    list_on(sql, other["id"], "ebay", "ebay-999")
    older = create_job(backend, "ebay", "update", other["id"])
    drop_wake_ups(backend)

    transaction_id = vinted.simulator.sell(item_id, buyer="lea")
    create_job(backend, "vinted", "orders")
    backend.run_queue()

    jobs = {(job["marketplace"], job["action"]): job for job in jobs_of(sql, product_id)}
    assert set(jobs) == {("vinted", "publish"), ("ebay", "delete"), ("etsy", "delete")}
    for marketplace, listing_id in (("ebay", "ebay-111"), ("etsy", "etsy-222")):
        delete = jobs[(marketplace, "delete")]
        assert (delete["status"], delete["priority"], delete["input"]["listing_id"]) == ("completed", 1, listing_id)
        assert listing_status(sql, product_id, marketplace) == "deleted"
    [older_job] = [job for job in jobs_of(sql, other["id"]) if job["id"] == older]
    assert older_job["status"] == "completed"
    assert jobs[("ebay", "delete")]["started_at"] < older_job["started_at"]  # next in its lane, ahead of it
    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 0

    [sale] = sales(product_id)
    assert set(sale) == {
        "sale_id",
        "marketplace",
        "external_order_id",
        "quantity",
        "sold_at",
        "detected_at",
        "detection_delay_seconds",
        "actions",
    }
    assert (sale["marketplace"], sale["external_order_id"], sale["quantity"]) == ("vinted", str(transaction_id), 1)
    assert 0 <= sale["detection_delay_seconds"] < 60
    assert [(a["marketplace"], a["action"], a["status"], a["job_id"]) for a in sale["actions"]] == [
        ("ebay", "delete", "completed", jobs[("ebay", "delete")]["id"]),
        ("etsy", "delete", "completed", jobs[("etsy", "delete")]["id"]),
    ]
    for action in sale["actions"]:
        assert (action["reason"], action["error"]) == (None, None)
        assert None not in (action["started_at"], action["completed_at"])
        assert 0 <= action["delisted_after_sale_seconds"] < 60

    # Imported again: the order is known, nothing is sold or deleted twice.
    again = create_job(backend, "vinted", "orders")
    backend.run_queue()
    assert backend.job(again)["result"]["orders_new"] == 0
    assert len(jobs_of(sql, product_id)) == 3
    assert len(sales(product_id)) == 1
    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 0


# ---------------------------------------------------------------------- stock left
def test_selling_one_of_three_on_vinted_updates_the_quantity_on_ebay_and_etsy(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, quantity=3)
    list_on(sql, product_id, "ebay", "ebay-111")
    list_on(sql, product_id, "etsy", "etsy-222")

    vinted.simulator.sell(item_id)
    create_job(backend, "vinted", "orders")
    backend.run_queue()

    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 2
    updates = [job for job in jobs_of(sql, product_id) if job["action"] == "update"]
    assert [(j["marketplace"], j["status"], j["priority"], j["input"]["quantity"]) for j in updates] == [
        ("ebay", "completed", 1, 2),
        ("etsy", "completed", 1, 2),
    ]
    assert {listing_status(sql, product_id, m) for m in ("ebay", "etsy")} == {"active"}
    [sale] = sales(product_id)
    assert [(a["marketplace"], a["action"], a["status"]) for a in sale["actions"]] == [
        ("ebay", "update_quantity", "completed"),
        ("etsy", "update_quantity", "completed"),
        ("vinted", "republish", "completed"),  # the stock left back on Vinted (issue 20; tested below)
    ]


def test_an_etsy_sale_leaving_stock_leaves_the_single_item_vinted_listing_and_updates_ebay(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    product = backend.create_product(quantity=3)
    list_on(sql, product["id"], "vinted", "4242")
    list_on(sql, product["id"], "ebay", "ebay-111")
    list_on(sql, product["id"], "etsy", "etsy-222")

    marketplaces["etsy"].orders = [sale_of(product["id"], "etsy-receipt-1")]
    create_job(backend, "etsy", "sync_orders")
    backend.run_queue()

    assert marketplaces["etsy"].calls == 1  # it completed as eBay's and Etsy's imports do, after an API call
    assert backend.http("GET", f"/products/{product['id']}").body["quantity"] == 2
    assert [(j["marketplace"], j["action"]) for j in jobs_of(sql, product["id"])] == [("ebay", "update")]
    [sale] = sales(product["id"])
    assert sale["marketplace"] == "etsy"
    assert [(a["marketplace"], a["action"], a["reason"], a["status"]) for a in sale["actions"]] == [
        ("ebay", "update_quantity", None, "completed"),
        ("vinted", "none", "single_item_listing", "skipped"),
    ]


# ---------------------------------------------------------------------- the quantity after a sale (issue 20)
def listing_of(sql: Any, product_id: str, marketplace: str) -> tuple[str, str]:
    """The product's listing there: (external id, status)."""
    with sql.connect() as connection:
        row = connection.execute(
            text("SELECT external_id, status FROM marketplace_listings WHERE product_id = :p AND marketplace = :m"),
            {"p": product_id, "m": marketplace},
        ).one()
    return str(row.external_id), str(row.status)


def drift_events(sql: Any) -> list[dict[str, Any]]:
    with sql.connect() as connection:
        rows = connection.execute(
            text("SELECT payload FROM outbox WHERE user_id = 'alice' AND type = 'listing.drift' ORDER BY created_at")
        ).all()
    return [dict(row.payload) for row in rows]


def test_etsy_sales_push_the_stock_left_to_ebay_leave_vinted_alone_and_the_last_ones_delist_everywhere(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, quantity=3)
    list_on(sql, product_id, "ebay", "ebay-111")
    list_on(sql, product_id, "etsy", "etsy-222")

    marketplaces["etsy"].orders = [sale_of(product_id, "etsy-receipt-1")]
    create_job(backend, "etsy", "sync_orders")
    backend.run_queue()

    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 2
    [update] = jobs_of(sql, product_id)[1:]
    assert (update["marketplace"], update["action"], update["status"], update["input"]["quantity"]) == (
        "ebay",
        "update",
        "completed",
        2,
    )
    assert listing_of(sql, product_id, "vinted") == (str(item_id), "active")  # one item, still for sale
    assert not vinted.simulator.items[item_id]["is_closed"]
    [first] = sales(product_id)
    assert [(a["marketplace"], a["action"], a["reason"], a["status"]) for a in first["actions"]] == [
        ("ebay", "update_quantity", None, "completed"),
        ("vinted", "none", "single_item_listing", "skipped"),
    ]

    marketplaces["etsy"].orders = [sale_of(product_id, "etsy-receipt-2", quantity=2)]  # the last two
    create_job(backend, "etsy", "sync_orders")
    backend.run_queue()

    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 0
    deletes = jobs_of(sql, product_id)[2:]
    assert [(j["marketplace"], j["action"], j["status"], j["priority"]) for j in deletes] == [
        ("ebay", "delete", "completed", 1),
        ("vinted", "delete", "completed", 1),
    ]
    assert item_id not in vinted.simulator.items
    assert {m: listing_status(sql, product_id, m) for m in ("ebay", "etsy", "vinted")} == {
        "ebay": "deleted",
        "etsy": "active",  # where it sold: Etsy ends a sold-out listing itself
        "vinted": "deleted",
    }
    last, _ = sales(product_id)
    assert [(a["marketplace"], a["action"], a["status"]) for a in last["actions"]] == [
        ("ebay", "delete", "completed"),
        ("vinted", "delete", "completed"),
    ]


def test_a_vinted_sale_leaving_stock_publishes_a_new_vinted_item_once_and_the_last_one_sold_publishes_none(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, quantity=2)
    list_on(sql, product_id, "ebay", "ebay-111")

    vinted.simulator.sell(item_id, buyer="lea")
    orders = create_job(backend, "vinted", "orders")
    backend.run_queue()

    assert backend.job(orders)["result"]["orders_new"] == 1
    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 1
    jobs = jobs_of(sql, product_id)
    assert [(j["marketplace"], j["action"], j["status"]) for j in jobs] == [
        ("vinted", "publish", "completed"),
        ("ebay", "update", "completed"),
        ("vinted", "publish", "completed"),  # the new item, queued by the sale
    ]
    update, republish = jobs[1], jobs[2]
    assert (update["priority"], update["input"]["quantity"]) == (1, 1)
    assert republish["priority"] == 1
    new_item = int(backend.job(republish["id"])["result"]["item_id"])
    old, new = vinted.simulator.items[item_id], vinted.simulator.items[new_item]
    assert (old["is_closed"], old["item_closing_action"]) == (True, "sold")  # the sold item: never deleted
    assert (new["title"], new["price"], new["is_closed"]) == (old["title"], old["price"], False)
    assert listing_of(sql, product_id, "vinted") == (str(new_item), "active")
    [sale] = sales(product_id)
    assert [(a["marketplace"], a["action"], a["reason"], a["status"], a["job_id"]) for a in sale["actions"]] == [
        ("ebay", "update_quantity", None, "completed", update["id"]),
        ("vinted", "republish", None, "completed", republish["id"]),
    ]
    # The sold item's change is told once, as the import tells it (the sale recorded it first).
    assert drift_events(sql) == [
        {
            "product_id": product_id,
            "marketplace": "vinted",
            "external_id": str(item_id),
            "previous_status": "active",
            "status": "sold",
        }
    ]

    # Imported again: the sale is known, nothing is published twice.
    again = create_job(backend, "vinted", "orders")
    backend.run_queue()
    assert backend.job(again)["result"]["orders_new"] == 0
    assert len(jobs_of(sql, product_id)) == 3
    assert len(sales(product_id)) == 1

    # The new item sells too: that was the last one. Nothing is published; eBay is delisted, as any sale does.
    vinted.simulator.sell(new_item)
    create_job(backend, "vinted", "orders")
    backend.run_queue()

    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 0
    [delete] = jobs_of(sql, product_id)[3:]
    assert (delete["marketplace"], delete["action"], delete["status"]) == ("ebay", "delete", "completed")
    assert listing_of(sql, product_id, "vinted") == (str(new_item), "sold")
    # The two sales may share their second on the fake Vinted: the new one is the one that is not the first.
    [last] = [other for other in sales(product_id) if other["sale_id"] != sale["sale_id"]]
    assert [(a["marketplace"], a["action"], a["status"]) for a in last["actions"]] == [("ebay", "delete", "completed")]


def test_with_auto_delist_off_a_vinted_sale_leaving_stock_publishes_nothing_and_says_why(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    assert products_api("PUT", "/settings", body={"auto_delist": False}).status == 200
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, quantity=2)
    list_on(sql, product_id, "ebay", "ebay-111")

    vinted.simulator.sell(item_id)
    create_job(backend, "vinted", "orders")
    backend.run_queue()

    assert [(j["marketplace"], j["action"]) for j in jobs_of(sql, product_id)] == [("vinted", "publish")]
    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 2  # the user's to keep
    assert listing_of(sql, product_id, "vinted") == (str(item_id), "sold")
    [sale] = sales(product_id)
    assert [(a["marketplace"], a["action"], a["reason"], a["status"], a["job_id"]) for a in sale["actions"]] == [
        ("ebay", "none", "auto_delist_off", "skipped", None),
        ("vinted", "none", "auto_delist_off", "skipped", None),
    ]


def test_a_vinted_sale_waits_for_the_products_vinted_relist_and_publishes_once_it_failed_on_the_sold_item(
    backend: Backend, sql: Any
) -> None:
    tab, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, quantity=2)
    backend.disconnect(tab)  # the extension is closed: the relist waits for it, not started
    relist = create_job(backend, "vinted", "relist", product_id)
    backend.run_queue()
    assert backend.job(relist)["status"] == "waiting_for_plugin"

    transaction_id = vinted.simulator.sell(item_id)
    order = replace(sale_of(product_id, str(transaction_id)), item_ids=[str(item_id)])
    with runtime.lane_store().locked("alice", "vinted") as tx:  # what the Vinted orders import stores
        assert tx.add_orders([order]) == [order]

    assert [job["action"] for job in jobs_of(sql, product_id)] == ["publish", "relist"]  # no second one
    [waiting] = sales(product_id)[0]["actions"]
    assert (waiting["marketplace"], waiting["action"], waiting["reason"], waiting["status"]) == (
        "vinted",
        "republish",
        "waiting_for_job",
        "waiting",
    )
    assert (waiting["job_id"], waiting["waiting_for_job_id"]) == (None, relist)

    _, vinted = backend.open_tab()  # the extension is back: the relist runs, and finds the item sold
    backend.run_queue()

    failed = backend.job(relist)
    assert (failed["status"], failed["error"]["code"]) == ("failed", "item_unavailable")
    [republish] = jobs_of(sql, product_id)[2:]
    assert (republish["marketplace"], republish["action"], republish["status"], republish["priority"]) == (
        "vinted",
        "publish",
        "completed",
        1,
    )
    new_item = backend.job(republish["id"])["result"]["item_id"]
    assert listing_of(sql, product_id, "vinted") == (new_item, "active")
    assert item_id in vinted.simulator.items  # sold, left as it is
    [action] = sales(product_id)[0]["actions"]
    assert (action["action"], action["reason"], action["status"]) == ("republish", None, "completed")
    assert (action["job_id"], action["waiting_for_job_id"]) == (republish["id"], relist)


# ---------------------------------------------------------------------- the setting
def test_with_auto_delist_off_a_sale_is_logged_saying_why_and_nothing_is_delisted(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    assert products_api("GET", "/settings").body == {"auto_delist": True, "remove_duplicates": False}
    assert products_api("PUT", "/settings", body={"auto_delist": "no"}).status == 422
    assert products_api("PUT", "/settings", body={"auto_delist": False, "other": 1}).status == 422
    turned_off = products_api("PUT", "/settings", body={"auto_delist": False})
    assert (turned_off.status, turned_off.body) == (200, {"auto_delist": False, "remove_duplicates": False})
    assert products_api("GET", "/settings").body == {"auto_delist": False, "remove_duplicates": False}
    assert products_api("GET", "/settings", user="bob").body == {
        "auto_delist": True,
        "remove_duplicates": False,
    }  # each user's own
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    list_on(sql, product_id, "ebay", "ebay-111")
    list_on(sql, product_id, "etsy", "etsy-222")

    vinted.simulator.sell(item_id)
    create_job(backend, "vinted", "orders")
    backend.run_queue()

    assert [(j["marketplace"], j["action"]) for j in jobs_of(sql, product_id)] == [("vinted", "publish")]
    assert backend.http("GET", f"/products/{product_id}").body["quantity"] == 1
    assert {listing_status(sql, product_id, m) for m in ("ebay", "etsy")} == {"active"}
    [sale] = sales(product_id)
    assert [(a["marketplace"], a["action"], a["reason"], a["status"], a["job_id"]) for a in sale["actions"]] == [
        ("ebay", "none", "auto_delist_off", "skipped", None),
        ("etsy", "none", "auto_delist_off", "skipped", None),
    ]


# ---------------------------------------------------------------------- the product's jobs already there
def test_an_etsy_sale_cancels_a_pending_vinted_update_and_deletes_the_vinted_listing_instead(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    tab, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    list_on(sql, product_id, "etsy", "etsy-222")
    backend.disconnect(tab)  # the extension is closed: the update waits for it, not started
    update = create_job(backend, "vinted", "update", product_id)
    backend.run_queue()
    assert backend.job(update)["status"] == "waiting_for_plugin"

    marketplaces["etsy"].orders = [sale_of(product_id, "etsy-receipt-1")]
    create_job(backend, "etsy", "sync_orders")
    backend.run_queue()

    cancelled = backend.job(update)
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"]["code"] == "superseded_by_sale"
    assert "sale of this product on etsy (order etsy-receipt-1)" in cancelled["error"]["message"]
    [delete] = [job for job in jobs_of(sql, product_id) if job["action"] == "delete"]
    assert (delete["marketplace"], delete["status"], delete["priority"]) == ("vinted", "waiting_for_plugin", 1)

    _, vinted = backend.open_tab()  # the extension is back: the delete runs
    backend.run_queue()

    assert item_id not in vinted.simulator.items
    assert listing_status(sql, product_id, "vinted") == "deleted"
    [sale] = sales(product_id)
    [action] = sale["actions"]
    assert (action["marketplace"], action["action"], action["job_id"], action["status"]) == (
        "vinted",
        "delete",
        delete["id"],
        "completed",
    )
    assert action["delisted_after_sale_seconds"] >= 0


def test_an_etsy_sale_takes_a_vinted_delete_already_queued_as_its_own_at_the_highest_priority(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    tab, vinted = backend.open_tab()
    product_id, _ = published(backend, vinted)
    list_on(sql, product_id, "etsy", "etsy-222")
    backend.disconnect(tab)
    delete = create_job(backend, "vinted", "delete", product_id)
    backend.run_queue()
    assert (backend.job(delete)["status"], backend.job(delete)["priority"]) == ("waiting_for_plugin", 5)

    marketplaces["etsy"].orders = [sale_of(product_id, "etsy-receipt-1")]
    create_job(backend, "etsy", "sync_orders")
    backend.run_queue()

    assert [job["action"] for job in jobs_of(sql, product_id)] == ["publish", "delete"]  # no second delete
    assert backend.job(delete)["priority"] == 1
    [action] = sales(product_id)[0]["actions"]
    assert (action["action"], action["job_id"], action["status"]) == ("delete", delete, "waiting_for_plugin")


def test_an_etsy_sale_stops_a_running_vinted_update_and_deletes_the_listing_once_it_has_stopped(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport]
) -> None:
    _, vinted = backend.open_tab(silent={"read_item"})
    product_id, item_id = published(backend, vinted)
    list_on(sql, product_id, "etsy", "etsy-222")
    update = create_job(backend, "vinted", "update", product_id)
    backend.run_queue()
    assert backend.job(update)["status"] == "running"  # its first call is out, unanswered

    marketplaces["etsy"].orders = [sale_of(product_id, "etsy-receipt-1")]
    create_job(backend, "etsy", "sync_orders")
    backend.run_queue()

    [running] = [job for job in jobs_of(sql, product_id) if job["id"] == update]
    assert running["status"] == "running"
    assert running["cancel_requested_at"] is not None
    assert [job["action"] for job in jobs_of(sql, product_id)] == ["publish", "update"]  # no delete yet
    [waiting] = sales(product_id)[0]["actions"]
    assert (waiting["action"], waiting["status"], waiting["reason"]) == ("delete", "waiting", "waiting_for_job")
    assert (waiting["job_id"], waiting["waiting_for_job_id"]) == (None, update)

    vinted.silent.clear()
    vinted(next(c for c in reversed(vinted.commands) if c["step"] == "read_item"))  # its answer comes, late
    backend.run_queue()

    assert backend.job(update)["status"] == "cancelled"  # at its step boundary
    [delete] = [job for job in jobs_of(sql, product_id) if job["action"] == "delete"]
    assert (delete["status"], delete["priority"]) == ("completed", 1)
    assert item_id not in vinted.simulator.items
    [action] = sales(product_id)[0]["actions"]
    assert (action["action"], action["job_id"], action["waiting_for_job_id"], action["status"]) == (
        "delete",
        delete["id"],
        update,
        "completed",
    )


# ---------------------------------------------------------------------- with the import, or not at all
def test_a_sale_is_stored_with_its_import_or_not_at_all_and_an_action_without_a_workflow_says_so(
    backend: Backend, sql: Any, marketplaces: dict[str, OrdersImport], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(WORKFLOWS, "delete_ebay")  # as before eBay's delete existed
    product = backend.create_product()
    list_on(sql, product["id"], "vinted", "4242")
    list_on(sql, product["id"], "ebay", "ebay-111")
    store = runtime.lane_store()
    order = sale_of(product["id"], "etsy-receipt-1")

    class ImportFailed(Exception):
        pass

    def import_that_fails() -> None:
        with store.locked("alice", "etsy") as tx:
            assert tx.add_orders([order]) == [order]
            raise ImportFailed  # e.g. the rest of the import's completion failed

    with pytest.raises(ImportFailed):
        import_that_fails()
    assert jobs_of(sql, product["id"]) == []
    assert sales(product["id"]) == []
    assert backend.http("GET", f"/products/{product['id']}").body["quantity"] == 1

    with store.locked("alice", "etsy") as tx:
        assert tx.add_orders([order]) == [order]
        after = tx.after_commit()
    with store.locked("alice", "etsy") as tx:
        assert tx.add_orders([order]) == []  # stored once: acted on once

    [delete] = jobs_of(sql, product["id"])
    assert (delete["marketplace"], delete["action"], delete["status"], delete["priority"]) == (
        "vinted",
        "delete",
        "pending",
        1,
    )
    # The engine wakes the Vinted lane once the import commits (here, nobody did: the sweeper would).
    assert [(lane.marketplace, lane.job_ids) for lane in after.lanes] == [("vinted", (uuid.UUID(delete["id"]),))]
    [sale] = sales(product["id"])
    assert [(a["marketplace"], a["action"], a["reason"], a["status"]) for a in sale["actions"]] == [
        ("ebay", "delete", "action_not_available", "failed"),
        ("vinted", "delete", None, "pending"),
    ]


def test_a_products_sales_are_shown_to_its_owner_only(backend: Backend) -> None:
    product = backend.create_product()
    assert sales(product["id"]) == []
    for user, product_id in (("bob", product["id"]), ("alice", str(uuid.uuid4()))):
        reply = products_api("GET", f"/products/{product_id}/sales", user=user)
        assert (reply.status, reply.body["code"]) == (404, "not_found")
