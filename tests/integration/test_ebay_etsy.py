"""eBay and Etsy end to end (real PostgreSQL, moto's KMS and Secrets Manager, the real handlers, the one
fake eBay and the one fake Etsy over HTTP): connecting, seller settings, publish / update / delete /
orders on each, and what a retry, a 429, a 5xx, a 401 or a refused refresh token do."""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from sqlalchemy import text

from crosslist import runtime
from crosslist.marketplaces import image_fetch
from crosslist.marketplaces.image_fetch import FetchedImage, ImageFetchFailed
from devstack.fake_ebay import EBAY_SCOPES, FakeEbay
from devstack.fake_etsy import ETSY_SCOPES, FakeEtsy
from devstack.images import demo_png
from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO
from tests.integration.conftest import Backend, count

pytestmark = pytest.mark.integration

EBAY_RUNAME = "crosslist-test-RuName"


@dataclass
class Marketplaces:
    backend: Backend
    ebay: FakeEbay
    etsy: FakeEtsy
    photos: list[str]  # the product photo URLs downloaded for an upload, in order
    probed: list[str]  # the photo URLs checked before eBay downloads them itself
    broken_photos: dict[str, ImageFetchFailed]  # URL -> how its host fails

    def connect(self, marketplace: str, user: str = "alice") -> None:
        """The user authorizes crosslist in the marketplace's consent page, comes back through the callback to
        the web app, which completes the connection with the user's token."""
        started = self.backend.http("GET", f"/marketplaces/{marketplace}/connect", user=user)
        assert started.status == 200, started.body
        consent = httpx.get(started.body["authorization_url"] + f"&account={user}", follow_redirects=False)
        assert consent.status_code == 302, consent.text
        back = parse_qs(urlsplit(consent.headers["location"]).query)
        query = {"code": back["code"][0], "state": back["state"][0]}
        returned = self.backend.http("GET", f"/marketplaces/{marketplace}/callback", user=None, query=query)
        assert returned.status == 302, returned.body  # to the web app page, which completes it as the user
        done = self.backend.http("POST", f"/marketplaces/{marketplace}/connect", user=user, body=query)
        assert done.status == 200, done.body

    def ready(self, marketplace: str, user: str = "alice") -> None:
        """Connected, with the seller settings a publish needs (the first of each choice)."""
        self.connect(marketplace, user)
        choices = self.backend.http("GET", f"/marketplaces/{marketplace}/settings", user=user).body["choices"]
        first = {name: options[0]["id"] for name, options in choices.items()}
        reply = self.backend.http("PUT", f"/marketplaces/{marketplace}/settings", user=user, body=first)
        assert reply.status == 200, reply.body
        assert reply.body["missing_for_publish"] == []

    def product(self, user: str = "alice", images: int = 2, **fields: Any) -> str:
        attributes = {
            "vinted": {"brand_id": 53, "size_id": 207, "catalog_id": 1839, "status_id": 2, "package_size_id": 2},
            "ebay": {"category_id": "11483", "condition": "USED_VERY_GOOD", "aspects": {"Size": ["W32"]}},
            "etsy": {"taxonomy_id": 429, "who_made": "someone_else", "when_made": "2010_2019"},
        }
        fields.setdefault("currency", "GBP")  # what the fake eBay's UK site and the fake Etsy shop sell in
        return str(
            self.backend.create_product(user=user, images=images, marketplace_attributes=attributes, **fields)["id"]
        )

    def job(
        self, marketplace: str, action: str, product_id: str | None = None, user: str = "alice", **extra: Any
    ) -> str:
        body = {"marketplace": marketplace, "action": action, **extra}
        if product_id is not None:
            body["product_id"] = product_id
        reply = self.backend.http("POST", "/jobs", user=user, body=body)
        assert reply.status == 202, reply.body
        return str(reply.body["id"])

    def run(self, job_id: str, user: str = "alice", wait: float = 30.0) -> dict[str, Any]:
        self.backend.run_queue(wait_timers=wait)
        return self.backend.job(job_id, user=user)

    def published(self, marketplace: str, images: int = 2, **fields: Any) -> tuple[str, str]:
        product_id = self.product(images=images, **fields)
        job = self.run(self.job(marketplace, "publish", product_id))
        assert job["status"] == "completed", job
        return product_id, str(job["result"]["listing_id"])


@pytest.fixture
def marketplaces(
    backend: Backend,
    fake_ebay: FakeEbay,
    fake_etsy: FakeEtsy,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Marketplaces]:
    kms_key = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    secrets = boto3.client("secretsmanager")
    fake_ebay.redirects[EBAY_RUNAME] = "https://app.example.com/marketplaces/ebay/callback"
    ebay_app = {
        "client_id": fake_ebay.client_id,
        "client_secret": fake_ebay.client_secret,
        "redirect_uri": EBAY_RUNAME,
        "scopes": " ".join(EBAY_SCOPES),
    }
    etsy_app = {
        "client_id": fake_etsy.client_id,
        "client_secret": fake_etsy.client_secret,
        "redirect_uri": "https://app.example.com/marketplaces/etsy/callback",
        "scopes": " ".join(ETSY_SCOPES),
    }
    environment = {
        "CREDENTIALS_KEY_ID": kms_key,
        "EBAY_OAUTH_SECRET_ARN": secrets.create_secret(Name="ebay-app", SecretString=json.dumps(ebay_app))["ARN"],
        "ETSY_OAUTH_SECRET_ARN": secrets.create_secret(Name="etsy-app", SecretString=json.dumps(etsy_app))["ARN"],
        "CROSSLIST_EBAY_API_BASE": fake_ebay.base_url,
        "CROSSLIST_EBAY_IDENTITY_API_BASE": fake_ebay.base_url,  # who a connected account is (apiz.ebay.com)
        "CROSSLIST_EBAY_OAUTH_TOKEN_URL": fake_ebay.base_url + "/identity/v1/oauth2/token",
        "CROSSLIST_EBAY_AUTHORIZE_URL": fake_ebay.base_url + "/oauth2/authorize",
        "CROSSLIST_ETSY_API_BASE": fake_etsy.base_url + "/v3",
        "CROSSLIST_ETSY_OAUTH_TOKEN_URL": fake_etsy.base_url + "/v3/public/oauth/token",
        "CROSSLIST_ETSY_AUTHORIZE_URL": fake_etsy.base_url + "/oauth/connect",
        "WEB_APP_ORIGINS": "https://app.example.com",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    photos: list[str] = []

    broken: dict[str, ImageFetchFailed] = {}

    def fetch(url: str, **_: Any) -> FetchedImage:  # the product photos' hosts, without the internet
        photos.append(url)
        if url in broken:
            raise broken[url]
        return FetchedImage(demo_png(len(photos)), "image/png")

    def probe(url: str, **_: Any) -> None:  # eBay's photos: checked, not downloaded
        probed.append(url)
        if url in broken:
            raise broken[url]

    probed: list[str] = []
    monkeypatch.setattr(image_fetch, "fetch_image", fetch)
    monkeypatch.setattr(image_fetch, "probe_image", probe)
    _forget_adapters()
    yield Marketplaces(backend, fake_ebay, fake_etsy, photos, probed, broken)
    _forget_adapters()


def _forget_adapters() -> None:
    for factory in (runtime.settings, runtime.credential_store, runtime.marketplace_api, runtime.lane_engine):
        factory.cache_clear()


def job_row(sql: Any, job_id: str) -> dict[str, Any]:
    with sql.connect() as connection:
        row = connection.execute(text("SELECT * FROM marketplace_jobs WHERE id = :id"), {"id": job_id}).mappings().one()
    return dict(row)


def listing_row(sql: Any, product_id: str, marketplace: str) -> dict[str, Any]:
    with sql.connect() as connection:
        row = (
            connection.execute(
                text("SELECT * FROM marketplace_listings WHERE product_id = :p AND marketplace = :m"),
                {"p": product_id, "m": marketplace},
            )
            .mappings()
            .one()
        )
    return dict(row)


# ---------------------------------------------------------------- seller settings and job checks
def test_seller_settings_offer_the_accounts_own_choices_and_refuse_others(marketplaces: Marketplaces) -> None:
    backend, ebay = marketplaces.backend, marketplaces.ebay
    assert backend.http("GET", "/marketplaces/ebay/settings").body["code"] == "marketplace_not_connected"
    marketplaces.connect("ebay")
    shown = backend.http("GET", "/marketplaces/ebay/settings").body
    assert shown["missing_for_publish"] == [
        "payment_policy_id",
        "fulfillment_policy_id",
        "return_policy_id",
        "merchant_location_key",
    ]
    policies = ebay.listing_policies("alice")
    assert policies["paymentPolicyId"] in [c["id"] for c in shown["choices"]["payment_policy_id"]]
    assert ebay.merchant_location_key("alice") in [c["id"] for c in shown["choices"]["merchant_location_key"]]

    wrong = backend.http("PUT", "/marketplaces/ebay/settings", body={"payment_policy_id": "not-mine"})
    assert wrong.status == 422
    assert "payment_policy_id" in wrong.body["message"]
    assert backend.http("PUT", "/marketplaces/ebay/settings", body={"colour": "red"}).status == 422

    reply = backend.http("PUT", "/marketplaces/ebay/settings", body={"payment_policy_id": policies["paymentPolicyId"]})
    assert reply.status == 200
    assert reply.body["settings"]["payment_policy_id"] == policies["paymentPolicyId"]
    assert "payment_policy_id" not in reply.body["missing_for_publish"]


def test_etsy_settings_find_the_shop_by_themselves(marketplaces: Marketplaces) -> None:
    marketplaces.connect("etsy")
    shown = marketplaces.backend.http("GET", "/marketplaces/etsy/settings").body
    assert shown["settings"]["shop_id"] == marketplaces.etsy.shop_id("alice")
    ids = [c["id"] for c in shown["choices"]["shipping_profile_id"]]
    assert marketplaces.etsy.shipping_profile_id("alice") in ids  # an integer, as the setting stores it
    chosen = marketplaces.backend.http("PUT", "/marketplaces/etsy/settings", body={"shipping_profile_id": ids[0]})
    assert chosen.body["settings"]["shipping_profile_id"] == ids[0]


def test_a_publish_without_settings_or_attributes_is_refused_naming_each(marketplaces: Marketplaces, sql: Any) -> None:
    backend = marketplaces.backend
    marketplaces.connect("ebay")
    product_id = marketplaces.product()
    reply = backend.http("POST", "/jobs", body={"marketplace": "ebay", "action": "publish", "product_id": product_id})
    assert reply.status == 422
    assert reply.body["code"] == "seller_settings_missing"
    assert reply.body["missing"] == [
        "payment_policy_id",
        "fulfillment_policy_id",
        "return_policy_id",
        "merchant_location_key",
    ]
    marketplaces.ready("ebay")
    bare = backend.create_product(title="x" * 90)["id"]  # too long for eBay, and no eBay attributes
    reply = backend.http("POST", "/jobs", body={"marketplace": "ebay", "action": "publish", "product_id": bare})
    assert reply.status == 422
    assert "title" in reply.body["message"]
    assert "marketplace_attributes.ebay" in reply.body["message"]
    assert "category_id" in reply.body["message"]
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 0


def test_the_etsy_shop_is_the_connected_accounts_own_never_the_clients(marketplaces: Marketplaces, sql: Any) -> None:
    """bob cannot point his settings (and so his syncs and jobs) at alice's shop: the shop is read from Etsy
    with bob's own token, and a shop_id in the request is refused."""
    backend, etsy = marketplaces.backend, marketplaces.etsy
    marketplaces.ready("etsy", user="alice")
    marketplaces.ready("etsy", user="bob")
    alices_shop = etsy.shop_id("alice")
    for smuggled in ({"shop_id": alices_shop}, {"currency": "USD"}, {"shop_id": int("9" * 4001)}):
        reply = backend.http("PUT", "/marketplaces/etsy/settings", user="bob", body=smuggled)
        assert (reply.status, reply.body["code"]) == (422, "invalid_request"), reply.body
        assert "read from your Etsy account" in reply.body["message"]
    too_large = backend.http("PUT", "/marketplaces/etsy/settings", user="bob", body={"shipping_profile_id": 2**60})
    assert (too_large.status, too_large.body["code"]) == (422, "invalid_request")
    alices_profile = str(etsy.shipping_profile_id("alice"))
    foreign = backend.http(
        "PUT", "/marketplaces/etsy/settings", user="bob", body={"shipping_profile_id": alices_profile}
    )
    assert foreign.status == 422

    settings = backend.http("GET", "/marketplaces/etsy/settings", user="bob").body["settings"]
    assert (settings["shop_id"], settings["currency"]) == (etsy.shop_id("bob"), "GBP")
    synced = marketplaces.run(marketplaces.job("etsy", "sync", user="bob"), user="bob")
    assert synced["status"] == "completed", synced
    bobs_calls = [call.path for call in etsy.calls_to("/v3/application/shops/") if call.account == "bob"]
    assert bobs_calls
    assert not [path for path in bobs_calls if f"/shops/{alices_shop}" in path]


def test_settings_of_a_disconnected_marketplace_are_refused_and_forgotten(marketplaces: Marketplaces) -> None:
    backend = marketplaces.backend
    marketplaces.ready("ebay")
    assert backend.http("DELETE", "/marketplaces/ebay").status == 204
    for method, body in (("GET", None), ("PUT", {"marketplace_id": "EBAY_GB"})):
        reply = backend.http(method, "/marketplaces/ebay/settings", body=body)
        assert (reply.status, reply.body["code"]) == (422, "marketplace_not_connected"), reply.body
    product_id = marketplaces.product()
    job = backend.http("POST", "/jobs", body={"marketplace": "ebay", "action": "publish", "product_id": product_id})
    assert (job.status, job.body["code"]) == (422, "marketplace_not_connected")
    marketplaces.connect("ebay")  # connected again: nothing chosen for the old connection is used
    shown = backend.http("GET", "/marketplaces/ebay/settings").body
    assert shown["settings"]["payment_policy_id"] is None


@pytest.mark.parametrize("marketplace", ["ebay", "etsy"])
def test_a_price_in_another_currency_than_the_marketplace_sells_in_is_refused(
    marketplaces: Marketplaces, sql: Any, marketplace: str
) -> None:
    marketplaces.ready(marketplace)
    for currency in ("XXX", "EUR"):
        product_id = marketplaces.product(currency=currency)
        body = {"marketplace": marketplace, "action": "publish", "product_id": product_id}
        reply = marketplaces.backend.http("POST", "/jobs", body=body)
        assert (reply.status, reply.body["code"]) == (422, "currency_mismatch"), reply.body
        assert "GBP" in reply.body["message"]
        assert currency in reply.body["message"]
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 0
    _, listing_id = marketplaces.published(marketplace, currency="GBP")
    assert listing_id


@pytest.mark.parametrize("marketplace", ["ebay", "etsy"])
def test_a_photo_that_cannot_be_fetched_fails_the_job_at_once_naming_it(
    marketplaces: Marketplaces, sql: Any, marketplace: str
) -> None:
    marketplaces.ready(marketplace)
    product_id = marketplaces.product(images=2)
    [_, missing] = marketplaces.backend.http("GET", f"/products/{product_id}").body["image_urls"]
    marketplaces.broken_photos[missing] = ImageFetchFailed(f"{missing} answered HTTP 404")
    job = marketplaces.run(marketplaces.job(marketplace, "publish", product_id))
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "image_unavailable"
    assert missing in job["error"]["message"]
    assert job["attempts"] == 1  # not retried: a 404 stays a 404
    if marketplace == "ebay":
        assert marketplaces.ebay.offers("alice") == []
    else:  # the draft exists, no photo was sent and nothing was activated (no listing fee)
        assert [listing["state"] for listing in marketplaces.etsy.listings("alice")] == ["draft"]


def test_a_photo_host_that_fails_for_now_is_tried_again_with_its_own_message(marketplaces: Marketplaces) -> None:
    marketplaces.ready("etsy")
    product_id = marketplaces.product(images=1)
    [photo] = marketplaces.backend.http("GET", f"/products/{product_id}").body["image_urls"]
    marketplaces.broken_photos[photo] = ImageFetchFailed(f"{photo} answered HTTP 503", retryable=True)
    job = marketplaces.run(marketplaces.job("etsy", "publish", product_id))
    assert (job["status"], job["attempts"]) == ("failed", 3), job  # tried again after each backoff
    assert job["error"]["code"] == "image_host_unavailable"
    assert photo in job["error"]["message"]
    assert marketplaces.photos.count(photo) == 3


# ---------------------------------------------------------------- eBay
def test_ebay_publish_update_delete_and_orders(marketplaces: Marketplaces, sql: Any) -> None:
    ebay = marketplaces.ebay
    marketplaces.ready("ebay")
    product_id, listing_id = marketplaces.published("ebay", quantity=2)

    [offer] = ebay.offers("alice")
    assert offer["sku"] == f"CL-{product_id}"
    assert offer["status"] == "PUBLISHED"
    assert offer["pricingSummary"]["price"]["value"] == "27.90"
    assert offer["listingPolicies"] == ebay.listing_policies("alice")
    item = ebay.inventory("alice")[offer["sku"]]
    assert item["product"]["title"] == "Levi's 501 jeans"
    assert item["product"]["aspects"]["Brand"] == ["Levi's"]
    listed = listing_row(sql, product_id, "ebay")
    assert (listed["external_id"], listed["status"]) == (listing_id, "active")
    assert listed["url"] == f"https://www.ebay.co.uk/itm/{listing_id}"

    marketplaces.backend.http("PATCH", f"/products/{product_id}", body={"price": "24.00", "title": "Levi's 501 W32"})
    assert marketplaces.run(marketplaces.job("ebay", "update", product_id))["status"] == "completed"
    [offer] = ebay.offers("alice")
    assert offer["pricingSummary"]["price"]["value"] == "24.00"
    assert ebay.inventory("alice")[offer["sku"]]["product"]["title"] == "Levi's 501 W32"

    order_id = ebay.sell(listing_id, quantity=1, buyer="bob")
    imported = marketplaces.run(marketplaces.job("ebay", "sync_orders"))
    assert imported["status"] == "completed", imported
    assert imported["result"]["orders_new"] == 1
    orders = marketplaces.backend.http("GET", "/orders", query={"marketplace": "ebay"}).body["items"]
    assert [(o["external_order_id"], o["product_id"], o["buyer"]) for o in orders] == [(order_id, product_id, "bob")]
    again = marketplaces.run(marketplaces.job("ebay", "sync_orders"))
    assert again["result"]["orders_new"] == 0  # stored once

    assert marketplaces.run(marketplaces.job("ebay", "delete", product_id))["status"] == "completed"
    [ended] = [listing for listing in ebay.listings("alice") if listing["listingId"] == listing_id]
    assert ended["listingStatus"] == "ENDED"
    assert ebay.offers("alice")[0]["status"] == "UNPUBLISHED"  # kept, for a relist
    assert listing_row(sql, product_id, "ebay")["status"] == "closed"

    relisted = marketplaces.run(marketplaces.job("ebay", "publish", product_id))
    assert relisted["status"] == "completed", relisted
    assert relisted["result"]["listing_id"] == listing_id  # the same offer published again
    assert len(ebay.offers("alice")) == 1


def test_ebay_sync_sees_what_changed_on_ebay(marketplaces: Marketplaces, sql: Any) -> None:
    marketplaces.ready("ebay")
    sold_id, sold_listing = marketplaces.published("ebay")
    ended_id, _ended_listing = marketplaces.published("ebay")
    kept_id, _ = marketplaces.published("ebay")
    marketplaces.ebay.sell(sold_listing)
    offer = next(o for o in marketplaces.ebay.offers("alice") if o["sku"] == f"CL-{ended_id}")
    withdrawn = httpx.post(
        f"{marketplaces.ebay.base_url}/sell/inventory/v1/offer/{offer['offerId']}/withdraw",
        headers={"Authorization": f"Bearer {marketplaces.ebay.issue_tokens('alice')['access_token']}"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    synced = marketplaces.run(marketplaces.job("ebay", "sync"))
    assert synced["status"] == "completed", synced
    assert synced["result"]["changed"] == {"closed": 1, "sold": 1}
    assert listing_row(sql, sold_id, "ebay")["status"] == "sold"
    assert listing_row(sql, ended_id, "ebay")["status"] == "closed"
    assert listing_row(sql, kept_id, "ebay")["status"] == "active"


@pytest.mark.parametrize("step", ["inventory_item", r"/offer$", r"/offer/[^/]+$", r"/publish$"])
def test_an_ebay_step_failing_once_is_retried_without_a_second_offer(
    marketplaces: Marketplaces, sql: Any, step: str
) -> None:
    marketplaces.ready("ebay")
    product_id = marketplaces.product()
    if step == r"/offer/[^/]+$":  # the refresh of an offer that already existed
        marketplaces.run(marketplaces.job("ebay", "publish", product_id))
        marketplaces.run(marketplaces.job("ebay", "delete", product_id))
    marketplaces.ebay.fail(step, 503, method=None)
    job = marketplaces.run(marketplaces.job("ebay", "publish", product_id))
    assert job["status"] == "completed", job
    assert len(marketplaces.ebay.offers("alice")) == 1
    assert len([item for item in marketplaces.ebay.listings("alice") if item["listingStatus"] == "ACTIVE"]) == 1
    assert job_row(sql, job["id"])["attempts"] == 2  # one retry, after a backoff


def test_an_ebay_offer_whose_answer_was_lost_is_found_not_created_twice(marketplaces: Marketplaces) -> None:
    """createOffer lands but a gateway answers 504: the retry reads the SKU's offers before writing."""
    marketplaces.ready("ebay")
    product_id = marketplaces.product()
    marketplaces.ebay.fail(r"/sell/inventory/v1/offer$", 504, method="POST", after_landing=True)
    job = marketplaces.run(marketplaces.job("ebay", "publish", product_id))
    assert job["status"] == "completed", job
    [offer] = marketplaces.ebay.offers("alice")
    assert offer["status"] == "PUBLISHED"
    lookups = [c for c in marketplaces.ebay.calls if c.method == "GET" and c.path.endswith("/offer")]
    assert len(lookups) == 1


def test_a_429_storm_pauses_the_lane_for_retry_after_without_using_attempts(
    marketplaces: Marketplaces, sql: Any
) -> None:
    marketplaces.ready("ebay")
    tab = marketplaces.backend.connect()[1]
    product_id = marketplaces.product()
    marketplaces.ebay.fail(r"/sell/", 429, times=4, retry_after=1)
    job = marketplaces.run(marketplaces.job("ebay", "publish", product_id), wait=60)
    assert job["status"] == "completed", job
    assert job_row(sql, job["id"])["attempts"] == 1
    waits = marketplaces.backend.gateway.of_type(tab, "job.waiting")
    assert waits
    assert {w["reason"] for w in waits} == {"rate_limited"}
    assert len(marketplaces.ebay.offers("alice")) == 1


def test_a_401_refreshes_the_token_once_and_the_call_succeeds(marketplaces: Marketplaces) -> None:
    marketplaces.ready("ebay")
    product_id = marketplaces.product()
    marketplaces.ebay.expire_access_tokens()
    job = marketplaces.run(marketplaces.job("ebay", "publish", product_id))
    assert job["status"] == "completed", job
    assert marketplaces.ebay.token_calls["refresh_token"] == 1


def test_a_refused_refresh_token_makes_jobs_wait_until_the_account_is_connected_again(
    marketplaces: Marketplaces, sql: Any
) -> None:
    backend, ebay = marketplaces.backend, marketplaces.ebay
    marketplaces.ready("ebay")
    tab = backend.connect()[1]
    first, second = marketplaces.product(), marketplaces.product()
    ebay.expire_access_tokens()
    ebay.revoke_refresh_tokens()
    jobs = [marketplaces.job("ebay", "publish", first), marketplaces.job("ebay", "publish", second)]
    backend.run_queue()
    for job_id in jobs:
        row = job_row(sql, job_id)
        assert (row["status"], row["wait_reason"]) == ("waiting", "reauth_required"), row
    assert backend.gateway.of_type(tab, "marketplace.reauth_required") == [
        {"type": "marketplace.reauth_required", "marketplace": "ebay"}
    ]
    statuses = {m["marketplace"]: m["status"] for m in backend.http("GET", "/marketplaces").body}
    assert statuses["ebay"] == "reauth_required"
    assert ebay.offers("alice") == []

    marketplaces.connect("ebay")
    backend.run_queue(wait_timers=30)
    assert [backend.job(job_id)["status"] for job_id in jobs] == ["completed", "completed"]
    assert len(ebay.offers("alice")) == 2
    assert len(backend.gateway.of_type(tab, "marketplace.reauth_required")) == 1


# ---------------------------------------------------------------- Etsy
def test_etsy_publish_update_delete_and_orders(marketplaces: Marketplaces, sql: Any) -> None:
    etsy = marketplaces.etsy
    marketplaces.ready("etsy")
    product_id, listing_id = marketplaces.published("etsy", images=3, quantity=3)

    [listing] = etsy.listings("alice")
    assert str(listing["listing_id"]) == listing_id
    assert listing["state"] == "active"
    assert [image["rank"] for image in etsy.images(listing_id)] == [1, 2, 3]
    assert etsy.activation_fees[int(listing_id)] == 1
    assert len(marketplaces.photos) == 3
    assert listing_row(sql, product_id, "etsy")["status"] == "active"

    marketplaces.backend.http("PATCH", f"/products/{product_id}", body={"price": "30.00", "quantity": 2})
    updated = marketplaces.run(marketplaces.job("etsy", "update", product_id))
    assert updated["status"] == "completed", updated
    offering = etsy.inventory(listing_id)["products"][0]["offerings"][0]
    assert Decimal(str(offering["price"]["amount"])) / offering["price"]["divisor"] == Decimal("30")
    assert offering["quantity"] == 2

    receipt_id = etsy.sell(listing_id, quantity=1, buyer="carol")
    imported = marketplaces.run(marketplaces.job("etsy", "sync_orders"))
    assert imported["status"] == "completed", imported
    orders = marketplaces.backend.http("GET", "/orders", query={"marketplace": "etsy"}).body["items"]
    assert [(o["external_order_id"], o["product_id"]) for o in orders] == [(str(receipt_id), product_id)]

    assert marketplaces.run(marketplaces.job("etsy", "delete", product_id))["status"] == "completed"
    assert etsy.listings("alice")[0]["state"] == "inactive"
    assert listing_row(sql, product_id, "etsy")["status"] == "closed"
    assert etsy.activation_fees[int(listing_id)] == 1


@pytest.mark.parametrize("step", [r"/listings$", r"/images$", r"/listings/\d+$"])
def test_an_etsy_write_lost_after_landing_is_never_made_twice(marketplaces: Marketplaces, step: str) -> None:
    """A 504 from a gateway: the write may have landed; here it did. The retry looks before it writes."""
    etsy = marketplaces.etsy
    marketplaces.ready("etsy")
    product_id = marketplaces.product(images=2)
    etsy.fail(step, 504, method="PATCH" if step.endswith(r"\d+$") else "POST", after_landing=True)
    job = marketplaces.run(marketplaces.job("etsy", "publish", product_id))
    assert job["status"] == "completed", job
    [listing] = etsy.listings("alice")
    assert sorted(image["rank"] for image in etsy.images(listing["listing_id"])) == [1, 2]
    assert etsy.activation_fees[int(listing["listing_id"])] == 1


def test_ten_concurrent_etsy_refreshes_make_one_call_and_all_get_the_new_token(marketplaces: Marketplaces) -> None:
    etsy = marketplaces.etsy
    marketplaces.connect("etsy")
    etsy.expire_access_tokens()
    etsy.refresh_delay_seconds = 0.3  # the refreshes would overlap, if they could
    api = runtime.marketplace_api()
    answers: list[Any] = []

    def read() -> None:
        answers.append(api.read("alice", "etsy", "/application/users/me"))

    threads = [threading.Thread(target=read) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert etsy.token_calls["refresh_token"] == 1
    assert [answer["shop_id"] for answer in answers] == [etsy.shop_id("alice")] * 10


def test_ebays_authorization_ending_within_14_days_is_flagged(marketplaces: Marketplaces, sql: Any) -> None:
    marketplaces.connect("ebay")
    [ebay] = [m for m in marketplaces.backend.http("GET", "/marketplaces").body if m["marketplace"] == "ebay"]
    assert (ebay["status"], ebay["reconnect_soon"]) == ("connected", False)
    assert ebay["refresh_expires_at"] is not None  # 18 months ahead
    with sql.begin() as connection:
        connection.execute(text("UPDATE oauth_credentials SET refresh_expires_at = now() + interval '13 days'"))
    [ebay] = [m for m in marketplaces.backend.http("GET", "/marketplaces").body if m["marketplace"] == "ebay"]
    assert ebay["reconnect_soon"] is True


def test_the_scheduled_refresh_tells_the_user_when_an_account_must_be_connected_again(
    marketplaces: Marketplaces, sql: Any
) -> None:
    marketplaces.connect("etsy")
    tab = marketplaces.backend.connect()[1]
    marketplaces.etsy.revoke_refresh_tokens()
    with sql.begin() as connection:  # the access token expires within the refresh window
        connection.execute(text("UPDATE oauth_credentials SET expires_at = now() + interval '5 minutes'"))
    refresh = load_handler(REPO / "functions" / "oauth_refresh")
    report = refresh({"schedule": "oauth_refresh"}, LambdaContext("oauth_refresh"))
    assert report["reauth_required"] == 1
    assert marketplaces.backend.gateway.of_type(tab, "marketplace.reauth_required") == [
        {"type": "marketplace.reauth_required", "marketplace": "etsy"}
    ]
    statuses = {m["marketplace"]: m["status"] for m in marketplaces.backend.http("GET", "/marketplaces").body}
    assert statuses["etsy"] == "reauth_required"


# ---------------------------------------------------------------- auto-delist, for real
def test_a_sale_on_ebay_delists_the_product_on_vinted_and_etsy_first_and_logs_it(
    marketplaces: Marketplaces, sql: Any
) -> None:
    backend, ebay, etsy = marketplaces.backend, marketplaces.ebay, marketplaces.etsy
    marketplaces.ready("ebay")
    marketplaces.ready("etsy")
    _, vinted = backend.open_tab()
    product_id = marketplaces.product()
    listings = {}
    for marketplace in ("ebay", "etsy", "vinted"):
        job = marketplaces.run(marketplaces.job(marketplace, "publish", product_id))
        assert job["status"] == "completed", job
        listings[marketplace] = str(job["result"].get("listing_id") or job["result"].get("item_id"))
    other = marketplaces.product()  # an older job already waiting in the Etsy lane: the delist goes first
    with sql.begin() as connection:
        connection.execute(
            text("UPDATE job_lanes SET paused_until = now() + interval '1 hour' WHERE marketplace = 'etsy'")
        )
    waiting = marketplaces.job("etsy", "publish", other)
    backend.run_queue()

    ebay.sell(listings["ebay"], buyer="dave")
    imported = marketplaces.job("ebay", "sync_orders")
    backend.run_queue()
    delists = {
        row["marketplace"]: row
        for row in backend.http("GET", f"/products/{product_id}/sales").body["items"][0]["actions"]
    }
    assert set(delists) == {"vinted", "etsy"}
    assert {m: (a["action"], job_row(sql, a["job_id"])["priority"]) for m, a in delists.items()} == {
        "vinted": ("delete", 1),
        "etsy": ("delete", 1),
    }
    with sql.begin() as connection:  # the pause ends: the Etsy lane runs its jobs by priority
        connection.execute(text("UPDATE job_lanes SET paused_until = NULL WHERE marketplace = 'etsy'"))
    runtime.job_queue().wake("alice", "etsy", cause="pause-lifted")
    backend.run_queue(wait_timers=30)

    assert backend.job(imported)["status"] == "completed"
    [sale] = backend.http("GET", f"/products/{product_id}/sales").body["items"]
    assert sale["marketplace"] == "ebay"
    assert sale["detection_delay_seconds"] >= 0
    done = {a["marketplace"]: a for a in sale["actions"]}
    assert {m: a["status"] for m, a in done.items()} == {"vinted": "completed", "etsy": "completed"}
    assert all(a["delisted_after_sale_seconds"] is not None for a in done.values())
    assert etsy.listings("alice")[0]["state"] == "inactive"
    assert listing_row(sql, product_id, "vinted")["status"] == "deleted"
    assert int(listings["vinted"]) not in vinted.simulator.items  # gone from the fake Vinted
    delete_done = job_row(sql, done["etsy"]["job_id"])["completed_at"]
    assert delete_done < job_row(sql, waiting)["started_at"]  # the delist went before the older job


def test_no_token_or_app_secret_reaches_the_logs_of_a_full_run(
    marketplaces: Marketplaces, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting, publishing, a 401 and its refresh, a failing call, an import: every token the fakes
    handed out, and the apps' secrets, are looked for in every log record made meanwhile, at any level, by
    crosslist logger and any library's INFO or above (httpx, botocore): its message, extra keys, traceback."""
    records: list[str] = []
    handle = logging.Logger.handle

    def keep(self: logging.Logger, record: logging.LogRecord) -> None:
        trace = "".join(traceback.format_exception(*record.exc_info)) if record.exc_info else ""
        records.append(f"{record.getMessage()} {vars(record)} {trace}")
        handle(self, record)

    # crosslist's own loggers at every level; the libraries at INFO, as a function's log level allows them
    # (botocore's DEBUG prints whole responses: Secrets Manager's too).
    monkeypatch.setattr(
        logging.Logger, "isEnabledFor", lambda self, level: self.name.startswith("crosslist") or level >= logging.INFO
    )
    monkeypatch.setattr(logging.Logger, "handle", keep)
    ebay, etsy = marketplaces.ebay, marketplaces.etsy
    for marketplace in ("ebay", "etsy"):
        marketplaces.ready(marketplace)
    product_id = marketplaces.product()
    ebay.expire_access_tokens()
    etsy.fail(r"/images$", 500)
    for marketplace in ("ebay", "etsy"):
        published = marketplaces.run(marketplaces.job(marketplace, "publish", product_id))
        assert published["status"] == "completed", published
        imported = marketplaces.run(marketplaces.job(marketplace, "sync_orders"))
        assert imported["status"] == "completed", imported
    monkeypatch.undo()
    assert ebay.token_calls["refresh_token"] == 1
    logged = "\n".join(records)
    assert "step failed" in logged  # the engine's own lines are in
    secrets = [*ebay.issued_tokens(), *etsy.issued_tokens(), ebay.client_secret, etsy.client_secret]
    assert len(secrets) >= 6
    leaked = [secret for secret in secrets if secret in logged]
    assert leaked == [], [logged[max(0, logged.index(s) - 300) : logged.index(s) + 50] for s in leaked]


def test_etsys_rate_limit_headers_space_the_calls_before_etsy_refuses_one(marketplaces: Marketplaces) -> None:
    etsy = marketplaces.etsy
    marketplaces.ready("etsy")
    etsy.rate_limit_per_second = 2
    etsy.enforce_rate_limits = True  # a third call within a second would be a 429
    product_id = marketplaces.product(images=3)
    time.sleep(1.1)  # the settings' own reads (just made) leave this second's budget to the job
    job = marketplaces.run(marketplaces.job("etsy", "publish", product_id))
    assert job["status"] == "completed", job
    publish_calls = [call for call in etsy.calls if "/listings" in call.path]
    assert len(publish_calls) == 5  # draft, 3 photos, activation
    assert [call.status for call in publish_calls if call.status == 429] == []
