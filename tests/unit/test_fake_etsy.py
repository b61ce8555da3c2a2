"""The fake Etsy (devstack.fake_etsy) over real HTTP: OAuth with PKCE and rotating refresh tokens, the app
key, the publish path (draft, image, activation fee), receipts, and the controls tests rely on."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devstack.fake_etsy import AUTHORIZE_PATH, ETSY_SCOPES, TOKEN_PATH, FakeEtsy
from devstack.fake_http import SELL_PATH
from devstack.images import demo_png

API = "/v3/application"
CALLBACK = "https://app.example.com/marketplaces/etsy/callback"


@pytest.fixture
def seller(fake_etsy: FakeEtsy) -> Iterator[httpx.Client]:
    """A client with the app's key and the "dev" account's token, as crosslist sends them."""
    with httpx.Client(base_url=fake_etsy.base_url, headers=headers(fake_etsy, "dev")) as client:
        yield client


def headers(fake: FakeEtsy, account: str) -> dict[str, str]:
    token = fake.issue_tokens(account)["access_token"]
    return {"x-api-key": f"{fake.keystring}:{fake.shared_secret}", "Authorization": f"Bearer {token}"}


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def draft(fake: FakeEtsy, **changes: Any) -> dict[str, Any]:
    return {
        "quantity": 2,
        "title": "Levi's 501 jeans",
        "description": "Barely worn",
        "price": 27.9,
        "who_made": "someone_else",
        "when_made": "2010_2019",
        "taxonomy_id": 429,
        "shipping_profile_id": fake.shipping_profile_id("dev"),
        "readiness_state_id": fake.readiness_state_id("dev"),
        **changes,
    }


def test_pkce_code_exchange_and_rotating_refresh_tokens(fake_etsy: FakeEtsy) -> None:
    verifier = "v" * 64
    query = {
        "response_type": "code",
        "client_id": fake_etsy.keystring,
        "redirect_uri": CALLBACK,
        "scope": " ".join(ETSY_SCOPES),
        "state": "s1",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=fake_etsy.base_url) as client:
        plain = client.get(AUTHORIZE_PATH, params={**query, "code_challenge_method": "plain"})
        consent = client.get(AUTHORIZE_PATH, params={**query, "account": "shop-a"})
        code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
        exchange = {"grant_type": "authorization_code", "client_id": fake_etsy.keystring, "redirect_uri": CALLBACK}
        wrong = client.post(TOKEN_PATH, data={**exchange, "code": code, "code_verifier": "w" * 64})
        code = fake_etsy.issue_code("shop-a", redirect_uri=CALLBACK, code_challenge=challenge(verifier))
        tokens = client.post(TOKEN_PATH, data={**exchange, "code": code, "code_verifier": verifier}).json()
        refresh = {"grant_type": "refresh_token", "client_id": fake_etsy.keystring}
        rotated = client.post(TOKEN_PATH, data={**refresh, "refresh_token": tokens["refresh_token"]})
        old = client.post(TOKEN_PATH, data={**refresh, "refresh_token": tokens["refresh_token"]})

    assert parse_qs(urlsplit(plain.headers["Location"]).query)["error"] == ["invalid_request"]  # S256 only
    assert urlsplit(consent.headers["Location"]).netloc == "app.example.com"
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert tokens["access_token"].startswith(f"{fake_etsy.user_id('shop-a')}.")
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 3600)
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]
    assert (old.status_code, old.json()["error"]) == (400, "invalid_grant")  # the old one died at once


def test_concurrent_refreshes_of_one_token_overlap_and_only_the_first_wins(fake_etsy: FakeEtsy) -> None:
    refresh_token = fake_etsy.issue_tokens("dev")["refresh_token"]
    fake_etsy.refresh_delay_seconds = 0.2
    form = {"grant_type": "refresh_token", "client_id": fake_etsy.keystring, "refresh_token": refresh_token}

    def refresh(_: int) -> int:
        return httpx.post(fake_etsy.base_url + TOKEN_PATH, data=form).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(refresh, range(10)))

    assert statuses == [200] + [400] * 9
    assert fake_etsy.token_calls["refresh_token"] == 10
    # They overlapped (how many at once depends on how busy the machine is: 10 when idle).
    assert fake_etsy.peak_concurrent_refreshes >= 2


def test_the_app_key_needs_its_shared_secret_and_answers_carry_rate_limits(fake_etsy: FakeEtsy) -> None:
    token = fake_etsy.issue_tokens("dev")["access_token"]
    with httpx.Client(base_url=fake_etsy.base_url) as client:
        keystring_only = client.get(f"{API}/users/me", headers={"x-api-key": fake_etsy.keystring})
        key = {"x-api-key": f"{fake_etsy.keystring}:{fake_etsy.shared_secret}"}
        no_token = client.get(f"{API}/users/me", headers=key)
        me = client.get(f"{API}/users/me", headers={**key, "Authorization": f"Bearer {token}"})
        fake_etsy.expire_access_tokens()
        expired = client.get(f"{API}/users/me", headers={**key, "Authorization": f"Bearer {token}"})

    assert keystring_only.status_code == 403
    assert "Shared secret is required" in keystring_only.json()["error"]
    assert (no_token.status_code, no_token.json()["error"]) == (401, "invalid_token")
    assert me.json() == {"user_id": fake_etsy.user_id("dev"), "shop_id": fake_etsy.shop_id("dev")}
    assert (me.headers["x-limit-per-second"], me.headers["x-limit-per-day"]) == ("10", "10000")
    assert int(me.headers["x-remaining-this-second"]) < 10
    assert expired.status_code == 401


def test_a_draft_goes_active_once_it_has_an_image_and_is_charged_once(
    fake_etsy: FakeEtsy, seller: httpx.Client
) -> None:
    shop = f"{API}/shops/{fake_etsy.shop_id('dev')}"
    untitled = seller.post(f"{shop}/listings", json=draft(fake_etsy, title=""))
    assert (untitled.status_code, untitled.json()["error"]) == (400, "Missing required parameter: title")
    too_long = seller.post(f"{shop}/listings", data={k: str(v) for k, v in draft(fake_etsy, title="x" * 141).items()})
    assert too_long.status_code == 400
    assert "title" in too_long.json()["error"]

    listing = seller.post(f"{shop}/listings", json=draft(fake_etsy)).json()
    listing_id = listing["listing_id"]
    assert (listing["state"], listing["price"]) == ("draft", {"amount": 2790, "divisor": 100, "currency_code": "GBP"})
    no_image = seller.patch(f"{shop}/listings/{listing_id}", json={"state": "active"})
    assert no_image.status_code == 400

    image = seller.post(
        f"{shop}/listings/{listing_id}/images", files={"image": ("1.png", demo_png(1), "image/png")}, data={"rank": "1"}
    )
    assert image.status_code == 201
    assert (image.json()["rank"], fake_etsy.image_bytes(image.json()["listing_image_id"])) == (1, demo_png(1))
    assert seller.patch(f"{shop}/listings/{listing_id}", data={"state": "active"}).json()["state"] == "active"
    assert (
        seller.patch(f"{shop}/listings/{listing_id}", json={"state": "active", "title": "Levi's 501"}).status_code
        == 200
    )
    assert fake_etsy.activation_fees[listing_id] == 1  # active to active charges nothing

    inventory = {
        "products": [
            {"sku": "sku-1", "property_values": [], "offerings": [{"price": 25.0, "quantity": 1, "is_enabled": True}]}
        ]
    }
    assert seller.put(f"{API}/listings/{listing_id}/inventory", json=inventory).status_code == 200
    assert seller.get(f"{API}/listings/{listing_id}").json()["skus"] == ["sku-1"]
    receipt_id = fake_etsy.sell(listing_id, buyer="jane")

    receipts = seller.get(f"{shop}/receipts", params={"min_last_modified": 0}).json()
    assert [str(receipt["receipt_id"]) for receipt in receipts["results"]] == [receipt_id]
    transaction = receipts["results"][0]["transactions"][0]
    assert (transaction["listing_id"], transaction["sku"], transaction["price"]["amount"]) == (
        listing_id,
        "sku-1",
        2500,
    )
    assert seller.get(f"{API}/listings/{listing_id}").json()["state"] == "sold_out"


def test_another_sellers_shop_is_forbidden_and_faults_carry_retry_after(
    fake_etsy: FakeEtsy, seller: httpx.Client
) -> None:
    other_shop = fake_etsy.shop_id("other")
    forbidden = seller.get(f"{API}/shops/{other_shop}/shipping-profiles")
    fake_etsy.fail("shipping-profiles", 429)

    throttled = seller.get(f"{API}/shops/{fake_etsy.shop_id('dev')}/shipping-profiles")
    profiles = seller.get(f"{API}/shops/{fake_etsy.shop_id('dev')}/shipping-profiles")

    assert forbidden.status_code == 403
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "1")
    assert "x-remaining-today" in throttled.headers
    assert profiles.json()["results"][0]["shipping_profile_id"] == fake_etsy.shipping_profile_id("dev")


def test_rate_limits_are_enforced_when_asked(fake_etsy: FakeEtsy, seller: httpx.Client) -> None:
    fake_etsy.enforce_rate_limits = True
    fake_etsy.rate_limit_per_second = 2

    statuses = [seller.get(f"{API}/users/me").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def active_listing(fake: FakeEtsy, seller: httpx.Client, quantity: int = 2) -> int:
    """A listing of the "dev" shop, activated with one image: its id."""
    shop = f"{API}/shops/{fake.shop_id('dev')}"
    listing_id: int = seller.post(f"{shop}/listings", json=draft(fake, quantity=quantity)).json()["listing_id"]
    image = {"image": ("1.png", demo_png(1), "image/png")}
    assert seller.post(f"{shop}/listings/{listing_id}/images", files=image).status_code == 201
    assert seller.patch(f"{shop}/listings/{listing_id}", json={"state": "active"}).status_code == 200
    return listing_id


def handed_out_ids(fake: FakeEtsy) -> set[tuple[str, int]]:
    """Two active listings with an image each, one of them sold: the ids `fake` handed out, by kind."""
    ids: set[tuple[str, int]] = set()
    with httpx.Client(base_url=fake.base_url, headers=headers(fake, "dev")) as seller:
        for _ in range(2):
            listing_id = active_listing(fake, seller)
            ids |= {("listing", listing_id), *(("image", i["listing_image_id"]) for i in fake.images(listing_id))}
    ids.add(("receipt", int(fake.sell(listing_id))))
    return ids | {("transaction", t["transaction_id"]) for r in fake.receipts("dev") for t in r["transactions"]}


def test_a_fake_started_after_another_never_hands_out_an_id_the_other_did() -> None:
    # The devstack's database outlives its fake Etsy: a listing id handed out again would be an old listing's.
    with FakeEtsy() as earlier:
        first = handed_out_ids(earlier)
    with FakeEtsy() as later:
        second = handed_out_ids(later)

    assert len(first) == len(second) == 6
    assert first.isdisjoint(second)


def test_a_restored_fake_has_the_saved_listings_images_and_receipts_and_goes_on_selling() -> None:
    with FakeEtsy() as earlier, httpx.Client(base_url=earlier.base_url, headers=headers(earlier, "dev")) as seller:
        listing_id = active_listing(earlier, seller)  # 2 in stock
        first_receipt = earlier.sell(listing_id)
        saved = json.loads(json.dumps(earlier.state()))  # as the devstack writes it to its state dir
        listings, receipts, images = earlier.listings("dev"), earlier.receipts("dev"), earlier.images(listing_id)

    with FakeEtsy() as later:
        later.restore(saved)
        restored = (later.listings("dev"), later.receipts("dev"), later.images(listing_id))
        second_receipt = later.sell(listing_id)
        image_bytes = later.image_bytes(images[0]["listing_image_id"])

    assert restored == (listings, receipts, images)
    assert image_bytes == demo_png(1)
    assert second_receipt != first_receipt
    assert [str(r["receipt_id"]) for r in later.receipts("dev")] == [first_receipt, second_receipt]
    assert later.listings("dev")[0]["state"] == "sold_out"
    assert later.activation_fees[listing_id] == 1


def test_the_devstack_sells_a_listing_through_the_control_route(fake_etsy: FakeEtsy, seller: httpx.Client) -> None:
    listing_id = active_listing(fake_etsy, seller)  # 2 in stock
    with httpx.Client(base_url=fake_etsy.base_url) as devstack:  # no app key: it is not Etsy's API
        sold = devstack.post(SELL_PATH, json={"listing_id": str(listing_id), "quantity": 2, "buyer": "jane"})
        again = devstack.post(SELL_PATH, json={"listing_id": listing_id})
        unknown = devstack.post(SELL_PATH, json={"listing_id": "1"})
        unnamed = devstack.post(SELL_PATH, json={"listing_id": listing_id, "buyer": " "})

    assert sold.status_code == 200, sold.text
    assert sold.json()["listing_status"] == "sold_out"
    [receipt] = fake_etsy.receipts("dev")
    assert (str(receipt["receipt_id"]), receipt["name"], receipt["transactions"][0]["quantity"]) == (
        sold.json()["order_id"],
        "jane",
        2,
    )
    assert (again.status_code, unknown.status_code, unnamed.status_code) == (409, 404, 400)
    assert "sold_out" in again.json()["message"]
