"""The fake eBay (devstack.fake_ebay) over real HTTP: OAuth as eBay does it, the publish path's rules, orders,
and the controls tests rely on (faults, expiry, revocation, counters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devstack.fake_ebay import AUTHORIZE_PATH, EBAY_SCOPES, TOKEN_PATH, FakeEbay
from devstack.fake_http import SELL_PATH

INVENTORY = "/sell/inventory/v1"
RUNAME = "crosslist-test-RuName"


@pytest.fixture
def seller(fake_ebay: FakeEbay) -> Iterator[httpx.Client]:
    """A client with the "dev" account's user token and Content-Language, as crosslist sends them."""
    token = fake_ebay.issue_tokens("dev")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Language": "en-GB"}
    with httpx.Client(base_url=fake_ebay.base_url, headers=headers) as client:
        yield client


def app_auth(fake: FakeEbay, secret: str | None = None) -> httpx.BasicAuth:
    return httpx.BasicAuth(fake.client_id, secret or fake.client_secret)


def item(quantity: int = 2) -> dict[str, Any]:
    return {
        "availability": {"shipToLocationAvailability": {"quantity": quantity}},
        "condition": "USED_VERY_GOOD",
        "product": {"title": "Levi's 501 jeans", "description": "Barely worn", "imageUrls": ["https://i.test/1.jpg"]},
    }


def offer(fake: FakeEbay, sku: str = "sku-1") -> dict[str, Any]:
    return {
        "sku": sku,
        "marketplaceId": "EBAY_GB",
        "format": "FIXED_PRICE",
        "availableQuantity": 2,
        "categoryId": "11483",
        "pricingSummary": {"price": {"value": "27.90", "currency": "GBP"}},
        "listingPolicies": fake.listing_policies("dev"),
        "merchantLocationKey": fake.merchant_location_key("dev"),
    }


def published(fake: FakeEbay, seller: httpx.Client, sku: str = "sku-1") -> tuple[str, str]:
    assert seller.put(f"{INVENTORY}/inventory_item/{sku}", json=item()).status_code == 204
    offer_id = seller.post(f"{INVENTORY}/offer", json=offer(fake, sku)).json()["offerId"]
    return offer_id, seller.post(f"{INVENTORY}/offer/{offer_id}/publish").json()["listingId"]


def error_ids(response: httpx.Response) -> list[int]:
    return [error["errorId"] for error in response.json()["errors"]]


def test_consent_redirects_to_the_runame_url_and_a_code_is_exchanged_once(fake_ebay: FakeEbay) -> None:
    fake_ebay.redirects[RUNAME] = "https://app.example.com/marketplaces/ebay/callback"
    query = {"client_id": fake_ebay.client_id, "redirect_uri": RUNAME, "response_type": "code"}
    with httpx.Client(base_url=fake_ebay.base_url) as client:
        consent = client.get(AUTHORIZE_PATH, params={**query, "scope": " ".join(EBAY_SCOPES), "state": "s1"})
        assert consent.status_code == 302
        back = urlsplit(consent.headers["Location"])
        assert back.netloc == "app.example.com"
        code = parse_qs(back.query)["code"][0]
        assert parse_qs(back.query)["state"] == ["s1"]

        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": RUNAME}
        refused = client.post(TOKEN_PATH, data=form, auth=app_auth(fake_ebay, "wrong"))
        tokens = client.post(TOKEN_PATH, data=form, auth=app_auth(fake_ebay))
        again = client.post(TOKEN_PATH, data=form, auth=app_auth(fake_ebay))

    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert tokens.status_code == 200
    assert tokens.json()["token_type"] == "User Access Token"
    assert (tokens.json()["expires_in"], tokens.json()["refresh_token_expires_in"]) == (7200, 47_304_000)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")  # codes are single use
    assert fake_ebay.token_calls["authorization_code"] == 3
    assert all("Authorization" not in call.headers for call in fake_ebay.calls)


def test_refresh_keeps_the_refresh_token_until_it_is_revoked(fake_ebay: FakeEbay) -> None:
    tokens = fake_ebay.issue_tokens("dev")
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": EBAY_SCOPES[1]}
    with httpx.Client(base_url=fake_ebay.base_url) as client:
        fake_ebay.expire_access_tokens()
        expired = client.get(f"{INVENTORY}/location", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        first = client.post(TOKEN_PATH, data=refresh, auth=app_auth(fake_ebay))
        second = client.post(TOKEN_PATH, data=refresh, auth=app_auth(fake_ebay))  # not rotated: still good
        fresh = client.get(
            f"{INVENTORY}/location", headers={"Authorization": f"Bearer {second.json()['access_token']}"}
        )
        fake_ebay.revoke_refresh_tokens()
        revoked = client.post(TOKEN_PATH, data=refresh, auth=app_auth(fake_ebay))

    assert (expired.status_code, error_ids(expired)) == (401, [1001])
    assert first.status_code == second.status_code == 200
    assert "refresh_token" not in first.json()
    assert fresh.status_code == 200
    assert fresh.json()["locations"][0]["merchantLocationKey"] == "home"
    assert (revoked.status_code, revoked.json()["error"]) == (400, "invalid_grant")
    assert fake_ebay.token_calls["refresh_token"] == 3


def test_one_offer_per_sku_and_republishing_brings_the_same_listing_back(
    fake_ebay: FakeEbay, seller: httpx.Client
) -> None:
    no_language = seller.put(f"{INVENTORY}/inventory_item/sku-1", json=item(), headers={"Content-Language": ""})
    assert (no_language.status_code, error_ids(no_language)) == (400, [25709])
    offer_id, listing_id = published(fake_ebay, seller)

    duplicate = seller.post(f"{INVENTORY}/offer", json=offer(fake_ebay))
    assert (duplicate.status_code, error_ids(duplicate)) == (400, [25002])
    assert duplicate.json()["errors"][0]["parameters"] == [{"name": "offerId", "value": offer_id}]
    live = seller.get(f"{INVENTORY}/offer", params={"sku": "sku-1"}).json()["offers"][0]
    assert (live["status"], live["listing"]) == (
        "PUBLISHED",
        {"listingId": listing_id, "listingStatus": "ACTIVE", "soldQuantity": 0},
    )

    assert seller.post(f"{INVENTORY}/offer/{offer_id}/withdraw").json()["listingId"] == listing_id
    assert seller.get(f"{INVENTORY}/offer/{offer_id}").json()["status"] == "UNPUBLISHED"
    assert [one["listingStatus"] for one in fake_ebay.listings("dev")] == ["ENDED"]
    assert seller.post(f"{INVENTORY}/offer/{offer_id}/publish").json()["listingId"] == listing_id
    assert [one["listingStatus"] for one in fake_ebay.listings("dev")] == ["ACTIVE"]

    no_offer = seller.get(f"{INVENTORY}/offer", params={"sku": "sku-unknown"})
    assert (no_offer.status_code, error_ids(no_offer)) == (404, [25713])


def test_publishing_an_incomplete_offer_names_every_problem(fake_ebay: FakeEbay, seller: httpx.Client) -> None:
    seller.put(f"{INVENTORY}/inventory_item/sku-1", json=item())
    bare = {"sku": "sku-1", "marketplaceId": "EBAY_GB", "format": "FIXED_PRICE"}
    offer_id = seller.post(f"{INVENTORY}/offer", json=bare).json()["offerId"]

    refused = seller.post(f"{INVENTORY}/offer/{offer_id}/publish")

    assert refused.status_code == 400
    assert sorted(error_ids(refused)) == [25002, 25005, 25007, 25008, 25009, 25020]
    assert fake_ebay.listings("dev") == []


def test_a_price_change_is_a_revision_and_a_sale_is_an_order_found_by_last_modified_date(
    fake_ebay: FakeEbay, seller: httpx.Client
) -> None:
    offer_id, listing_id = published(fake_ebay, seller)
    change = {
        "sku": "sku-1",
        "offers": [{"offerId": offer_id, "availableQuantity": 1, "price": {"value": "25.00", "currency": "GBP"}}],
    }
    updated = seller.post(f"{INVENTORY}/bulk_update_price_quantity", json={"requests": [change]})
    assert updated.json()["responses"] == [
        {"statusCode": 200, "sku": "sku-1", "offerId": offer_id, "errors": [], "warnings": []}
    ]
    assert fake_ebay.revisions[listing_id] == 1

    order_id = fake_ebay.sell(listing_id, buyer="jane")

    assert fake_ebay.listings("dev")[0]["listingStatus"] == "OUT_OF_STOCK"
    assert fake_ebay.inventory("dev")["sku-1"]["availability"]["shipToLocationAvailability"]["quantity"] == 1
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    orders = seller.get("/sell/fulfillment/v1/order", params={"filter": f"lastmodifieddate:[{since}..]"}).json()
    assert [o["orderId"] for o in orders["orders"]] == [order_id]
    line = orders["orders"][0]["lineItems"][0]
    assert (line["legacyItemId"], line["sku"], line["lineItemCost"]["value"]) == (listing_id, "sku-1", "25.00")
    before = seller.get(
        "/sell/fulfillment/v1/order",
        params={"filter": "lastmodifieddate:[2020-01-01T00:00:00.000Z..2020-01-02T00:00:00.000Z]"},
    )
    assert before.json()["total"] == 0
    bad = seller.get("/sell/fulfillment/v1/order", params={"filter": "lastmodifieddate:yesterday"})
    assert bad.status_code == 400


def test_faults_answer_in_ebays_shape_and_calls_are_recorded(fake_ebay: FakeEbay, seller: httpx.Client) -> None:
    fake_ebay.fail(r"/payment_policy$", 429, retry_after=2)
    params = {"marketplace_id": "EBAY_GB"}

    throttled = seller.get("/sell/account/v1/payment_policy", params=params)
    policies = seller.get("/sell/account/v1/payment_policy", params=params)

    assert (throttled.status_code, throttled.headers["Retry-After"], error_ids(throttled)) == (429, "2", [2001])
    assert (
        policies.json()["paymentPolicies"][0]["paymentPolicyId"] == fake_ebay.listing_policies("dev")["paymentPolicyId"]
    )
    assert [(call.status, call.injected, call.account) for call in fake_ebay.calls_to("payment_policy")] == [
        (429, True, None),
        (200, False, "dev"),
    ]
    policy_id = policies.json()["paymentPolicies"][0]["paymentPolicyId"]
    fake_ebay.reset()
    assert fake_ebay.listing_policies("dev")["paymentPolicyId"] == policy_id  # stable ids
    assert seller.get("/sell/account/v1/payment_policy", params=params).status_code == 401  # tokens forgotten


def test_a_write_failed_after_landing_was_made(fake_ebay: FakeEbay, seller: httpx.Client) -> None:
    seller.put(f"{INVENTORY}/inventory_item/sku-1", json=item())
    fake_ebay.fail(r"/offer$", 504, method="POST", after_landing=True)

    lost = seller.post(f"{INVENTORY}/offer", json=offer(fake_ebay))

    assert (lost.status_code, error_ids(lost)) == (504, [2003])
    assert [one["sku"] for one in fake_ebay.offers("dev")] == ["sku-1"]
    assert seller.get(f"{INVENTORY}/offer", params={"sku": "sku-1"}).json()["total"] == 1


def handed_out_ids(fake: FakeEbay) -> set[tuple[str, str]]:
    """Publish two listings on `fake` and sell one: the ids it handed out, by kind."""
    token = fake.issue_tokens("dev")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Language": "en-GB"}
    ids: set[tuple[str, str]] = set()
    with httpx.Client(base_url=fake.base_url, headers=headers) as seller:
        for sku in ("sku-1", "sku-2"):
            offer_id, listing_id = published(fake, seller, sku)
            ids |= {("offer", offer_id), ("listing", listing_id)}
    return ids | {("order", fake.sell(listing_id))}


def test_a_fake_started_after_another_never_hands_out_an_id_the_other_did() -> None:
    # The devstack's database outlives its fake eBay: a listing id handed out again would be an old listing's.
    with FakeEbay() as earlier:
        first = handed_out_ids(earlier)
    with FakeEbay() as later:
        second = handed_out_ids(later)

    assert len(first) == len(second) == 5
    assert first.isdisjoint(second)


def test_a_restored_fake_has_the_saved_listings_and_orders_and_goes_on_selling() -> None:
    with FakeEbay() as earlier:
        token = earlier.issue_tokens("dev")["access_token"]
        with httpx.Client(
            base_url=earlier.base_url, headers={"Authorization": f"Bearer {token}", "Content-Language": "en-GB"}
        ) as seller:
            _, listing_id = published(earlier, seller)  # 2 available
        first_order = earlier.sell(listing_id)
        saved = json.loads(json.dumps(earlier.state()))  # as the devstack writes it to its state dir
        listings, orders = earlier.listings("dev"), earlier.orders("dev")

    with FakeEbay() as later:
        later.restore(saved)
        restored_listings, restored_orders = later.listings("dev"), later.orders("dev")
        second_order = later.sell(listing_id)

    assert (restored_listings, restored_orders) == (listings, orders)
    assert second_order != first_order
    assert [order["orderId"] for order in later.orders("dev")] == [first_order, second_order]
    assert later.listings("dev")[0]["listingStatus"] == "OUT_OF_STOCK"


def test_the_devstack_sells_a_listing_through_the_control_route(fake_ebay: FakeEbay, seller: httpx.Client) -> None:
    _, listing_id = published(fake_ebay, seller)  # 2 available
    with httpx.Client(base_url=fake_ebay.base_url) as devstack:
        sold = devstack.post(SELL_PATH, json={"listing_id": listing_id, "quantity": 2, "buyer": "jane"})
        again = devstack.post(SELL_PATH, json={"listing_id": listing_id})
        unknown = devstack.post(SELL_PATH, json={"listing_id": "110"})
        nothing = devstack.post(SELL_PATH, json={"listing_id": listing_id, "quantity": 0})

    assert sold.status_code == 200, sold.text
    assert sold.json()["listing_status"] == "OUT_OF_STOCK"
    [order] = fake_ebay.orders("dev")
    assert (order["orderId"], order["buyer"]["username"], order["lineItems"][0]["quantity"]) == (
        sold.json()["order_id"],
        "jane",
        2,
    )
    assert (again.status_code, unknown.status_code, nothing.status_code) == (409, 404, 400)
    assert "OUT_OF_STOCK" in again.json()["message"]


def test_bulk_calls_answer_each_request_on_its_own_and_refuse_more_than_25(
    fake_ebay: FakeEbay, seller: httpx.Client
) -> None:
    fake_ebay.refuse_sku("sku-3", "This category does not accept the item", at="offer")
    items = [{"sku": f"sku-{n}", "locale": "en_GB", **item()} for n in range(1, 4)]
    bad = {**items[1], "product": {**items[1]["product"], "title": "x" * 81}}  # what the single call refuses too
    saved = seller.post(
        f"{INVENTORY}/bulk_create_or_replace_inventory_item", json={"requests": [items[0], bad, items[2]]}
    )
    assert saved.status_code == 207  # Multi-Status: some failed
    assert [(r["sku"], r["statusCode"]) for r in saved.json()["responses"]] == [
        ("sku-1", 200),
        ("sku-2", 400),
        ("sku-3", 200),
    ]
    assert "80 characters" in saved.json()["responses"][1]["errors"][0]["message"]
    assert sorted(fake_ebay.inventory("dev")) == ["sku-1", "sku-3"]

    offers = seller.post(
        f"{INVENTORY}/bulk_create_offer", json={"requests": [offer(fake_ebay, "sku-1"), offer(fake_ebay, "sku-3")]}
    )
    assert offers.status_code == 207
    created, refused = offers.json()["responses"]
    assert (created["sku"], created["statusCode"], refused["statusCode"]) == ("sku-1", 200, 400)
    assert refused["errors"][0]["message"] == "This category does not accept the item"
    again = seller.post(f"{INVENTORY}/bulk_create_offer", json={"requests": [offer(fake_ebay, "sku-1")]}).json()
    assert again["responses"][0]["errors"][0]["parameters"] == [{"name": "offerId", "value": created["offerId"]}]

    publish = {"requests": [{"offerId": created["offerId"]}, {"offerId": "404"}]}
    published = seller.post(f"{INVENTORY}/bulk_publish_offer", json=publish)
    first, unknown = published.json()["responses"]
    assert (published.status_code, first["statusCode"], unknown["statusCode"]) == (207, 200, 404)
    republished = seller.post(f"{INVENTORY}/bulk_publish_offer", json={"requests": [{"offerId": created["offerId"]}]})
    assert republished.status_code == 200  # publishing a published offer answers its listing
    assert republished.json()["responses"][0]["listingId"] == first["listingId"]
    assert [listing["listingId"] for listing in fake_ebay.listings("dev")] == [first["listingId"]]

    too_many = {"requests": [{"offerId": created["offerId"]}] * 26}
    assert seller.post(f"{INVENTORY}/bulk_publish_offer", json=too_many).status_code == 400
    assert seller.post(f"{INVENTORY}/bulk_create_offer", json={"requests": []}).status_code == 400
