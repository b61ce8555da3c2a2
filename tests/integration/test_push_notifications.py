"""Push notifications from eBay and Etsy end to end (real PostgreSQL, moto, the real handlers, the one fake eBay
and the one fake Etsy over HTTP): the notifications function is served over HTTP as API Gateway puts it on the
internet, and the fakes push to it as eBay and Etsy do. Connecting eBay subscribes the account to its orders; a
sale on a fake queues a priority-1 import at once, which records the sale and delists elsewhere; an account
deletion erases that seller's eBay data; a forged, replayed or re-signed notification changes nothing."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import text
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from crosslist import runtime
from devstack.lambdas import Handler, LambdaContext, load_handler
from tests.conftest import REPO
from tests.integration.conftest import Reply, count
from tests.integration.test_ebay_etsy import Marketplaces, job_row, marketplaces  # noqa: F401 - its fixture
from tests.support.events import http_event
from tests.unit.test_push_signatures import ebay_header

pytestmark = pytest.mark.integration

TOKEN = "crosslist-test-verification-token-0123456789"


class NotificationsOverHttp:
    """functions/notifications behind an HTTP server, as API Gateway serves it: what the fakes push to."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        event = http_event(
            request.method,
            request.path,
            body=request.get_data(as_text=True) or None,
            headers=dict(request.headers),
            query=dict(request.args) or None,
        )
        answer = self._handler(event, LambdaContext("notifications"))
        response = Response(answer.get("body") or "", status=answer["statusCode"], headers=answer.get("headers"))
        return response(environ, start_response)


@pytest.fixture(scope="module")
def notifications_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, NotificationsOverHttp(load_handler(REPO / "functions" / "notifications")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()


@dataclass
class Push:
    marketplaces: Marketplaces
    url: str

    def ebay(self, body: bytes, signature: str | None) -> Reply:
        headers = {"x-ebay-signature": signature} if signature is not None else {}
        return self.marketplaces.backend.http(
            "POST", "/notifications/ebay", user=None, body=body.decode(), headers=headers
        )

    def etsy(self, body: bytes, headers: dict[str, str]) -> Reply:
        return self.marketplaces.backend.http(
            "POST", "/notifications/etsy", user=None, body=body.decode(), headers=headers
        )


@pytest.fixture
def push(marketplaces: Marketplaces, notifications_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Push]:  # noqa: F811
    """The notifications configured as an operator does: eBay's endpoint and verification token, Etsy's webhooks."""
    ebay, etsy = marketplaces.ebay, marketplaces.etsy
    endpoint = f"{notifications_url}/notifications/ebay"
    for name, value in {
        "EBAY_NOTIFICATION_ENDPOINT": endpoint,
        "EBAY_VERIFICATION_TOKEN": TOKEN,
        "ETSY_WEBHOOKS": "on",
        "ETSY_WEBHOOK_SECRET": etsy.webhook_secret,
    }.items():
        monkeypatch.setenv(name, value)
    _forget_push_adapters()
    ebay.account_deletion_endpoint = endpoint  # as registered in eBay's developer portal
    etsy.webhook_url = f"{notifications_url}/notifications/etsy"  # as registered with the Etsy app
    for fake in (ebay, etsy):
        fake.push.retry_seconds = (0.05, 0.1)
    yield Push(marketplaces, notifications_url)
    for fake in (ebay, etsy):
        fake.push.wait()
        fake.push.retry_seconds = (1.0, 3.0)
    ebay.account_deletion_endpoint = etsy.webhook_url = None
    _forget_push_adapters()


def _forget_push_adapters() -> None:
    for factory in (runtime.settings, runtime.push_notifications, runtime.ebay_app_api):
        factory.cache_clear()


def rows(sql: Any, query: str, **params: Any) -> list[dict[str, Any]]:
    with sql.connect() as connection:
        return [dict(row) for row in connection.execute(text(query), params).mappings()]


def imports(sql: Any, marketplace: str, user: str = "alice") -> list[dict[str, Any]]:
    return rows(
        sql,
        "SELECT * FROM marketplace_jobs WHERE user_id = :u AND marketplace = :m AND action_code = 'sync_orders'"
        " ORDER BY created_at",
        u=user,
        m=marketplace,
    )


def ebay_message(topic: str, data: dict[str, Any], *, published: datetime | None = None) -> bytes:
    moment = (published or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    message = {
        "metadata": {"topic": topic, "schemaVersion": "1.0", "deprecated": False},
        "notification": {
            "notificationId": f"{uuid.uuid4()}_{uuid.uuid4()}",
            "eventDate": moment,
            "publishDate": moment,
            "publishAttemptCount": 1,
            "data": data,
        },
    }
    return json.dumps(message, separators=(",", ":")).encode()


def what_a_notification_could_change(sql: Any) -> dict[str, Any]:
    return {
        "jobs": rows(sql, "SELECT id, priority, status FROM marketplace_jobs ORDER BY id"),
        "notifications": count(sql, "SELECT count(*) FROM received_notifications"),
        "credentials": rows(sql, "SELECT user_id, marketplace, version, status FROM oauth_credentials ORDER BY 1, 2"),
        "accounts": rows(sql, "SELECT user_id, marketplace, account_id FROM marketplace_accounts ORDER BY 1, 2"),
        "settings": rows(sql, "SELECT user_id, marketplace, settings FROM seller_settings ORDER BY 1, 2"),
        "listings": rows(sql, "SELECT id, status FROM marketplace_listings ORDER BY id"),
        "orders": rows(sql, "SELECT id, buyer, item_ids FROM orders ORDER BY id"),
    }


# ---------------------------------------------------------------- a sale, pushed
def test_an_ebay_sale_is_pushed_imported_at_once_and_delists_the_product_on_etsy(push: Push, sql: Any) -> None:
    world = push.marketplaces
    backend, ebay, etsy = world.backend, world.ebay, world.etsy
    world.ready("ebay")
    world.ready("etsy")
    [subscription] = ebay.subscriptions("alice")  # subscribed at connection, on crosslist's destination
    [destination] = ebay.destinations()
    assert destination["deliveryConfig"]["endpoint"] == f"{push.url}/notifications/ebay"
    assert subscription["destinationId"] == destination["destinationId"]
    [account] = rows(sql, "SELECT * FROM marketplace_accounts WHERE user_id = 'alice'")
    assert (account["account_id"], account["push_status"]) == (ebay.user_id("alice"), "subscribed")
    statuses = {m["marketplace"]: m for m in backend.http("GET", "/marketplaces").body}
    assert (statuses["ebay"]["push"], statuses["ebay"]["push_error"]) == ("subscribed", None)
    product_id = world.product()
    listings = {}
    for marketplace in ("ebay", "etsy"):
        published = world.run(world.job(marketplace, "publish", product_id))
        assert published["status"] == "completed", published
        listings[marketplace] = str(published["result"]["listing_id"])

    sold = time.perf_counter()
    order_id = ebay.sell(listings["ebay"], buyer="dave")
    queued = _first_queued_import(sql, "ebay")
    print(f"sale on the fake eBay -> priority-1 import queued: {(queued - sold) * 1000:.0f} ms")
    [delivered] = ebay.push.wait()
    assert (delivered.topic, delivered.status, delivered.attempts) == ("ORDER_CONFIRMATION", 204, 1)
    [pushed] = imports(sql, "ebay")
    assert (pushed["priority"], pushed["status"]) == (1, "pending")
    assert pushed["idempotency_key"].startswith("push:ebay:")
    assert pushed["enqueued_at"] is not None

    backend.run_queue(wait_timers=30)
    assert backend.job(str(pushed["id"]))["status"] == "completed"
    [sale] = backend.http("GET", f"/products/{product_id}/sales").body["items"]
    assert (sale["marketplace"], sale["external_order_id"]) == ("ebay", order_id)
    [delist] = sale["actions"]
    assert (delist["marketplace"], delist["action"], delist["status"]) == ("etsy", "delete", "completed")
    assert job_row(sql, delist["job_id"])["priority"] == 1
    assert etsy.listings("alice")[0]["state"] == "inactive"


def _first_queued_import(sql: Any, marketplace: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(job["enqueued_at"] is not None for job in imports(sql, marketplace)):
            return time.perf_counter()
        time.sleep(0.005)
    raise AssertionError(f"no {marketplace} import was queued within {timeout} s")


def test_an_etsy_order_paid_imports_the_shops_orders_at_once_and_delists_on_ebay(push: Push, sql: Any) -> None:
    world = push.marketplaces
    backend, ebay, etsy = world.backend, world.ebay, world.etsy
    world.ready("ebay")
    world.ready("etsy")
    world.ready("etsy", user="bob")  # another shop: not his sale
    product_id = world.product()
    listings = {}
    for marketplace in ("etsy", "ebay"):
        published = world.run(world.job(marketplace, "publish", product_id))
        assert published["status"] == "completed", published
        listings[marketplace] = str(published["result"]["listing_id"])

    receipt_id = etsy.sell(listings["etsy"], buyer="erin")
    [delivered] = etsy.push.wait()
    assert (delivered.topic, delivered.status) == ("order.paid", 204)
    assert json.loads(delivered.body)["shop_id"] == etsy.shop_id("alice")
    [pushed] = imports(sql, "etsy")
    assert (pushed["priority"], pushed["idempotency_key"]) == (1, f"push:etsy:{delivered.headers['webhook-id']}")
    assert imports(sql, "etsy", user="bob") == []

    backend.run_queue(wait_timers=30)
    [sale] = backend.http("GET", f"/products/{product_id}/sales").body["items"]
    assert (sale["marketplace"], sale["external_order_id"]) == ("etsy", receipt_id)
    assert [(a["marketplace"], a["status"]) for a in sale["actions"]] == [("ebay", "completed")]
    [ended] = [listing for listing in ebay.listings("alice") if listing["listingId"] == listings["ebay"]]
    assert ended["listingStatus"] == "ENDED"


def test_a_waiting_import_is_raised_to_the_top_and_a_started_one_gets_another_after_it(push: Push, sql: Any) -> None:
    world = push.marketplaces
    ebay = world.ebay
    world.ready("ebay")
    product_id = world.product(quantity=3)
    published = world.run(world.job("ebay", "publish", product_id))
    listing_id = str(published["result"]["listing_id"])
    scheduled = world.job("ebay", "sync_orders", priority=8)  # a sync rule's, still waiting in its lane

    ebay.sell(listing_id)
    ebay.push.wait()
    [raised] = imports(sql, "ebay")
    assert (str(raised["id"]), raised["priority"], raised["status"]) == (scheduled, 1, "pending")

    with sql.begin() as connection:  # it has started: it may have read the orders before the next sale
        connection.execute(
            text("UPDATE marketplace_jobs SET status = 'running', started_at = now() WHERE id = :id"), {"id": scheduled}
        )
    ebay.sell(listing_id)
    ebay.sell(listing_id)  # two sales at once: one more import, not two
    ebay.push.wait()
    found = imports(sql, "ebay")
    assert [(str(job["id"]) == scheduled, job["priority"], job["status"]) for job in found] == [
        (True, 1, "running"),
        (False, 1, "pending"),
    ]
    assert count(sql, "SELECT count(*) FROM received_notifications") == 3  # each acted on, once


# ---------------------------------------------------------------- nothing for what is not eBay's or Etsy's
def test_forged_replayed_or_re_signed_ebay_notifications_change_nothing(push: Push, sql: Any) -> None:
    world = push.marketplaces
    ebay = world.ebay
    world.ready("ebay")
    world.ready("ebay", user="bob")
    _, listing_id = world.published("ebay")
    ebay.sell(listing_id)
    [captured] = ebay.push.wait()  # a real one, acted on: alice's import
    assert captured.status == 204
    before = what_a_notification_could_change(sql)

    assert push.ebay(captured.body, captured.headers["X-EBAY-SIGNATURE"]).status == 204  # replayed: nothing again
    message = json.loads(captured.body)
    bobs = {**message["notification"]["data"], "sellerId": ebay.user_id("bob")}
    for_bob = json.dumps({**message, "notification": {**message["notification"], "data": bobs}}).encode()
    deletion = ebay_message("MARKETPLACE_ACCOUNT_DELETION", {"userId": ebay.user_id("alice"), "username": "alice"})
    other_key = ec.generate_private_key(ec.SECP256R1())
    unknown_kid = str(uuid.uuid4())
    refused = {
        "unsigned": push.ebay(deletion, None),
        "not base64": push.ebay(deletion, "%%% not a signature %%%"),
        "signature of another message": push.ebay(deletion, captured.headers["X-EBAY-SIGNATURE"]),
        "body changed": push.ebay(for_bob, captured.headers["X-EBAY-SIGNATURE"]),
        "another key, unknown kid": push.ebay(deletion, ebay_header(other_key, deletion, kid=unknown_kid)),
        "another key, unknown kid again": push.ebay(deletion, ebay_header(other_key, deletion, kid=unknown_kid)),
        "another key, eBay's kid": push.ebay(deletion, ebay_header(other_key, deletion, kid=ebay.signing_key_id)),
        "body changed, re-signed": push.ebay(for_bob, ebay_header(other_key, for_bob, kid=ebay.signing_key_id)),
    }
    assert {why: (reply.status, reply.body["code"]) for why, reply in refused.items()} == dict.fromkeys(
        refused, (412, "signature_invalid")
    )
    assert len(ebay.calls_to(f"/public_key/{unknown_kid}")) == 1  # an unknown key id is not asked about again
    stale = ebay_message(
        "MARKETPLACE_ACCOUNT_DELETION",
        {"userId": ebay.user_id("alice"), "username": "alice"},
        published=datetime.now(UTC) - timedelta(days=4),
    )
    assert push.ebay(stale, ebay.sign(stale)).status == 204  # eBay's, but too old to be acted on: a replay
    assert what_a_notification_could_change(sql) == before


def test_forged_replayed_or_stale_etsy_webhooks_change_nothing(push: Push, sql: Any) -> None:
    world = push.marketplaces
    etsy = world.etsy
    world.ready("etsy")
    _, listing_id = world.published("etsy")
    etsy.sell(listing_id)
    [captured] = etsy.push.wait()
    assert captured.status == 204
    before = what_a_notification_could_change(sql)

    assert push.etsy(captured.body, captured.headers).status == 204  # the same webhook-id again: nothing
    body = json.dumps({"event_type": "order.paid", "shop_id": etsy.shop_id("alice")}).encode()
    signed = etsy.signed_webhook(body)
    hour_ago = etsy.signed_webhook(body, timestamp=int(time.time()) - 3600)
    refused = {
        "unsigned": push.etsy(body, {}),
        "signature of another body": push.etsy(
            body, {**signed, "webhook-signature": captured.headers["webhook-signature"]}
        ),
        "another id": push.etsy(body, {**signed, "webhook-id": "msg_forged"}),
        "an hour old": push.etsy(body, hour_ago),
    }
    assert {why: (reply.status, reply.body["code"]) for why, reply in refused.items()} == dict.fromkeys(
        refused, (412, "signature_invalid")
    )
    assert what_a_notification_could_change(sql) == before


# ---------------------------------------------------------------- account deletion
def test_an_account_deletion_erases_that_sellers_ebay_data_and_nothing_else(push: Push, sql: Any) -> None:
    world = push.marketplaces
    backend, ebay, etsy = world.backend, world.ebay, world.etsy
    world.ready("ebay")
    world.ready("etsy")
    world.ready("ebay", user="bob")
    product_id = world.product()
    listings = {}
    for marketplace in ("ebay", "etsy"):
        published = world.run(world.job(marketplace, "publish", product_id))
        listings[marketplace] = str(published["result"]["listing_id"])
    bobs = world.product(user="bob")
    bobs_listing = str(world.run(world.job("ebay", "publish", bobs, user="bob"), user="bob")["result"]["listing_id"])
    ebay.sell(bobs_listing, buyer="alice")  # the eBay user about to go, as a buyer of bob's
    ebay.push.wait()
    backend.run_queue(wait_timers=30)
    waiting = world.job("ebay", "sync")  # not started yet when the deletion comes
    etsy_before = rows(sql, "SELECT user_id, marketplace FROM oauth_credentials WHERE marketplace = 'etsy'")

    ebay.delete_account("alice")
    [deletion] = [p for p in ebay.push.wait() if p.topic == "MARKETPLACE_ACCOUNT_DELETION"]
    assert deletion.status == 204

    def of(table: str, user: str, marketplace: str) -> int:
        return count(
            sql, f"SELECT count(*) FROM {table} WHERE user_id = :u AND marketplace = :m", u=user, m=marketplace
        )

    for table in (
        "oauth_credentials",
        "seller_settings",
        "marketplace_accounts",
        "marketplace_listings",
        "marketplace_jobs",
    ):
        assert of(table, "alice", "ebay") == 0, table
        assert of(table, "alice", "etsy") == 1 or table in ("marketplace_accounts", "marketplace_jobs"), table
        assert of(table, "bob", "ebay") >= 1, table
    assert rows(sql, "SELECT user_id, marketplace FROM oauth_credentials WHERE marketplace = 'etsy'") == etsy_before
    [cancelled] = rows(sql, "SELECT payload FROM outbox WHERE type = 'job.cancelled'")
    assert cancelled["payload"]["job_id"] == waiting  # what waited for it was told, through the one end of a job
    [bobs_order] = rows(sql, "SELECT buyer, item_ids FROM orders WHERE user_id = 'bob'")
    assert bobs_order == {"buyer": None, "item_ids": [bobs_listing]}  # no more the deleted user's name
    statuses = {m["marketplace"]: m["status"] for m in backend.http("GET", "/marketplaces").body}
    assert statuses == {"ebay": "not_connected", "etsy": "connected"}
    assert etsy.listings("alice")[0]["state"] == "active"
    assert push.ebay(deletion.body, deletion.headers["X-EBAY-SIGNATURE"]).status == 204  # again: nothing more


def test_an_account_deletion_anonymises_the_sellers_ebay_orders_and_keeps_the_sales(push: Push, sql: Any) -> None:
    world = push.marketplaces
    backend, ebay = world.backend, world.ebay
    world.ready("ebay")
    product_id, listing_id = world.published("ebay", quantity=2)
    order_id = ebay.sell(listing_id, buyer="zoe")
    ebay.push.wait()
    backend.run_queue(wait_timers=30)
    [before] = rows(sql, "SELECT * FROM orders WHERE user_id = 'alice'")
    assert (before["external_order_id"], before["buyer"], before["item_ids"]) == (order_id, "zoe", [listing_id])

    ebay.delete_account("alice")
    ebay.push.wait()
    [after] = rows(sql, "SELECT * FROM orders WHERE user_id = 'alice'")
    assert (after["buyer"], after["item_ids"]) == (None, [])  # the buyer's name and eBay's item ids go
    assert {k: after[k] for k in ("external_order_id", "price", "currency", "sold_at", "product_id")} == {
        k: before[k] for k in ("external_order_id", "price", "currency", "sold_at", "product_id")
    }
    assert count(sql, "SELECT count(*) FROM sales WHERE user_id = 'alice'") == 1  # the seller's accounting stays
    assert backend.http("GET", f"/products/{product_id}").status == 200


# ---------------------------------------------------------------- the subscription's life
def test_a_refused_subscription_leaves_the_account_connected_and_says_why(push: Push, sql: Any) -> None:
    world = push.marketplaces
    world.ebay.fail(r"/commerce/notification/v1/subscription$", 500, method="POST")
    world.connect("ebay")
    [status] = [m for m in world.backend.http("GET", "/marketplaces").body if m["marketplace"] == "ebay"]
    assert (status["status"], status["push"]) == ("connected", "failed")
    assert "500" in status["push_error"]
    assert world.ebay.subscriptions("alice") == []
    world.connect("ebay")  # connecting again subscribes it
    [status] = [m for m in world.backend.http("GET", "/marketplaces").body if m["marketplace"] == "ebay"]
    assert (status["push"], len(world.ebay.subscriptions("alice"))) == ("subscribed", 1)
    assert world.backend.http("DELETE", "/marketplaces/ebay").status == 204
    assert world.ebay.subscriptions("alice") == []  # deleted with the user's token, before it went
    assert count(sql, "SELECT count(*) FROM marketplace_accounts") == 0


def test_without_configuration_the_endpoints_answer_404_and_accounts_are_not_subscribed(
    marketplaces: Marketplaces,  # noqa: F811
) -> None:
    backend = marketplaces.backend
    marketplaces.connect("ebay")
    [status] = [m for m in backend.http("GET", "/marketplaces").body if m["marketplace"] == "ebay"]
    assert (status["status"], status["push"]) == ("connected", "off")  # polling alone
    assert marketplaces.ebay.subscriptions("alice") == []
    for method, path, query in (
        ("GET", "/notifications/ebay", {"challenge_code": "x"}),
        ("POST", "/notifications/ebay", None),
        ("POST", "/notifications/etsy", None),
    ):
        reply = backend.http(method, path, user=None, query=query, body="{}")
        assert (reply.status, reply.body["code"]) == (404, "not_configured"), (path, reply.body)


def test_the_challenge_is_answered_with_the_configured_token_and_url(push: Push) -> None:
    reply = push.marketplaces.backend.http(
        "GET", "/notifications/ebay", user=None, query={"challenge_code": "a8628072-3d33-45ee-9004-bee86830a22d"}
    )
    expected = hashlib.sha256(
        f"a8628072-3d33-45ee-9004-bee86830a22d{TOKEN}{push.url}/notifications/ebay".encode()
    ).hexdigest()
    assert (reply.status, reply.body) == (200, {"challengeResponse": expected})
