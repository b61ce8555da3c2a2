"""Connecting eBay and Etsy accounts through the devstack, at its fake eBay and Etsy: the authorization URL
points at the fake, which sends the browser to the devstack's callback, which sends it on to the web app
page (the devstack's own `/`); the web app completes the connection with the user's token."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from devstack import cli
from devstack.accounts import connect_account
from devstack.stack import DevStack
from tests.e2e.conftest import token

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("marketplace", ["ebay", "etsy"])
def test_an_account_connects_by_following_the_authorization_url(devstack: DevStack, marketplace: str) -> None:
    fake = devstack.ebay if marketplace == "ebay" else devstack.etsy
    headers = {"Authorization": f"Bearer {token(devstack, f'e2e-{marketplace}-seller')}"}
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as client:
        started = client.get(f"/marketplaces/{marketplace}/connect")
        assert started.status_code == 200, started.text
        authorization_url = started.json()["authorization_url"]
        assert authorization_url.startswith(fake.base_url)

        # What a browser does: the fake consents at once, then the callback (no crosslist token) sends the
        # browser back to the web app, here the devstack's own page, with the code and the state.
        landed = httpx.get(f"{authorization_url}&account=seller-{marketplace}", follow_redirects=True, timeout=30)
        assert landed.status_code == 200, landed.text
        assert [hop.url.path for hop in landed.history] == [
            urlsplit(authorization_url).path,
            f"/marketplaces/{marketplace}/callback",
        ]
        back = landed.json()
        assert (back["marketplace"], set(back)) == (marketplace, {"marketplace", "code", "state", "next"})
        assert client.get("/marketplaces").json()[["ebay", "etsy"].index(marketplace)]["status"] == "not_connected"

        # The web app page completes it with the user's token: someone else's token cannot.
        completion = {"code": back["code"], "state": back["state"]}
        other = {"Authorization": f"Bearer {token(devstack, 'e2e-someone-else')}"}
        stolen = client.post(f"/marketplaces/{marketplace}/connect", json=completion, headers=other)
        assert (stolen.status_code, stolen.json()["code"]) == (400, "invalid_state")
        done = client.post(f"/marketplaces/{marketplace}/connect", json=completion)
        statuses = {one["marketplace"]: one["status"] for one in client.get("/marketplaces").json()}

    assert done.status_code == 200, done.text
    assert done.json() == {"marketplace": marketplace, "status": "connected"}
    assert statuses[marketplace] == "connected"
    assert fake.token_calls["authorization_code"] == 1
    # The user's consent and code (eBay's app token, for its notifications, aside).
    consent = [call for call in fake.calls_to("/oauth") if (call.body or {}).get("grant_type") != "client_credentials"]
    assert [call.status for call in consent] == [302, 200]


def test_a_product_is_published_on_the_fake_ebay_and_etsy_through_the_devstack(devstack: DevStack) -> None:
    """What `make dev` offers: connect, pick the seller settings among the account's own, publish."""
    headers = {"Authorization": f"Bearer {token(devstack, 'e2e-crosslister')}"}
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as client:
        ended = published_on_ebay_and_etsy(client)

    assert {m: job["status"] for m, job in ended.items()} == {"ebay": "completed", "etsy": "completed"}, ended
    assert [o["status"] for o in devstack.ebay.offers("dev")] == ["PUBLISHED"]
    [listing] = devstack.etsy.listings("dev")
    assert listing["state"] == "active"
    assert len(devstack.etsy.images(listing["listing_id"])) == 2


def test_a_sale_made_with_crosslist_dev_sell_is_imported_and_delists_the_product_on_etsy(
    devstack: DevStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's walkthrough of auto-delist: sell on the fake eBay, import the orders, see the sale."""
    user, seller = "e2e-reseller", "e2e-reseller-shop"  # a seller of their own at the fakes: their orders only
    monkeypatch.setattr(cli, "STATE_DIR", devstack.config.state_dir)  # `crosslist dev` signs with its key
    headers = {"Authorization": f"Bearer {token(devstack, user)}"}
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as client:
        ended = published_on_ebay_and_etsy(client, account=seller)
        product_id = str(ended["ebay"]["product_id"])
        assert {job["status"] for job in ended.values()} == {"completed"}, ended

        selling = ["dev", "sell", "ebay", product_id, "--user", user, "--buyer", "jane", "--api", devstack.http_url]
        assert cli.main(selling) == 0, capsys.readouterr().err
        imported = client.post("/jobs", json={"marketplace": "ebay", "action": "sync_orders"})
        assert imported.status_code == 202, imported.text
        imported_job = _ended(client, imported.json()["id"])
        sales = _sales_once_delisted(client, product_id)

    assert imported_job["status"] == "completed", imported_job
    [sale] = sales
    assert (sale["marketplace"], sale["quantity"]) == ("ebay", 1)
    assert [(a["marketplace"], a["action"], a["status"]) for a in sale["actions"]] == [("etsy", "delete", "completed")]
    [order] = devstack.ebay.orders(seller)
    assert (sale["external_order_id"], order["buyer"]["username"]) == (order["orderId"], "jane")
    assert [listing["state"] for listing in devstack.etsy.listings(seller)] == ["inactive"]  # crosslist's delist


def test_a_sale_on_the_fake_ebay_is_pushed_and_delists_on_etsy_without_any_import_asked_for(
    devstack: DevStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Push, not polling (the devstack's schedules are off here): the fake eBay signs an ORDER_CONFIRMATION to the
    devstack's endpoint, which queues the orders import at priority 1; the import records the sale and queues the
    delete on Etsy. Then the seller closes the eBay account: `crosslist dev ebay-delete-account`."""
    user, seller = "e2e-pushed", "e2e-pushed-shop"
    monkeypatch.setattr(cli, "STATE_DIR", devstack.config.state_dir)
    headers = {"Authorization": f"Bearer {token(devstack, user)}"}
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as client:
        ended = published_on_ebay_and_etsy(client, account=seller)
        product_id = str(ended["ebay"]["product_id"])
        [ebay] = [m for m in client.get("/marketplaces").json() if m["marketplace"] == "ebay"]
        assert ebay["push"] == "subscribed", ebay

        sold = time.monotonic()
        assert cli.main(["dev", "sell", "ebay", product_id, "--user", user, "--api", devstack.http_url]) == 0
        assert "pushes the sale" in capsys.readouterr().out
        delete = _first_job(client, {"marketplace": "etsy", "action": "delete"})
        queued_after = time.monotonic() - sold
        print(f"crosslist dev sell ebay -> delete queued on Etsy: {queued_after * 1000:.0f} ms")
        sales = _sales_once_delisted(client, product_id)
        [pushed] = client.get("/jobs", params={"marketplace": "ebay", "action": "sync_orders"}).json()["items"]

        deleting = ["dev", "ebay-delete-account", seller, "--api", devstack.http_url]
        assert cli.main(deleting) == 0, capsys.readouterr().err
        statuses = _statuses_once(client, lambda found: found["ebay"] == "not_connected")

    assert queued_after < 5, f"the delete on Etsy was queued {queued_after:.1f} s after the sale"
    assert (pushed["priority"], pushed["status"]) == (1, "completed")
    assert (delete["priority"], delete["product_id"]) == (1, product_id)
    [sale] = sales
    assert [(a["marketplace"], a["status"]) for a in sale["actions"]] == [("etsy", "completed")]
    assert statuses == {"ebay": "not_connected", "etsy": "connected"}


def _first_job(client: httpx.Client, query: dict[str, str], timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.get("/jobs", params=query).json()["items"]
        if found:
            return dict(found[-1])
        time.sleep(0.05)
    raise AssertionError(f"no job {query} within {timeout} s")


def _statuses_once(client: httpx.Client, done: Any, timeout: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        statuses = {m["marketplace"]: m["status"] for m in client.get("/marketplaces").json()}
        if done(statuses):
            return statuses
        time.sleep(0.05)
    raise AssertionError(f"the marketplaces are still {statuses} after {timeout} s")


def _sales_once_delisted(client: httpx.Client, product_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """GET /products/{id}/sales once every action of its sales has ended."""
    deadline = time.monotonic() + timeout
    sales: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        sales = client.get(f"/products/{product_id}/sales").json()["items"]
        actions = [action for sale in sales for action in sale["actions"]]
        if actions and all(action["status"] in ("completed", "failed", "skipped") for action in actions):
            return sales
        time.sleep(0.1)
    raise AssertionError(f"the sale's delists did not end in {timeout} s: {sales}")


def published_on_ebay_and_etsy(client: httpx.Client, account: str | None = None) -> dict[str, dict[str, Any]]:
    """Connect the client's user to the fake eBay and Etsy (as `account`, else the fakes' own seller), choose
    the first seller settings, and publish a new product on both: each marketplace's publish job, ended."""
    api, user_token = str(client.base_url).rstrip("/"), str(client.headers["Authorization"]).split()[1]
    for marketplace in ("ebay", "etsy"):
        connect_account(api, user_token, marketplace, account=account)
        choices = client.get(f"/marketplaces/{marketplace}/settings").json()["choices"]
        chosen = client.put(
            f"/marketplaces/{marketplace}/settings",
            json={name: options[0]["id"] for name, options in choices.items()},
        )
        assert chosen.status_code == 200, chosen.text
    product = client.post(
        "/products",
        json={
            "title": "Levi's 501 jeans",
            "price": "27.90",
            "currency": "GBP",
            "image_urls": [f"{api}/__devstack/images/{n}.png" for n in (1, 2)],
            "marketplace_attributes": {
                "ebay": {"category_id": "11483", "condition": "USED_GOOD"},
                "etsy": {"taxonomy_id": 429, "who_made": "someone_else", "when_made": "2010_2019"},
            },
        },
    ).json()
    jobs = {}
    for marketplace in ("ebay", "etsy"):
        created = client.post(
            "/jobs", json={"marketplace": marketplace, "action": "publish", "product_id": product["id"]}
        )
        assert created.status_code == 202, created.text
        jobs[marketplace] = created.json()["id"]
    return {marketplace: _ended(client, job_id) for marketplace, job_id in jobs.items()}


def _ended(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job still {job.get('status')} after {timeout} s: {job}")


def test_the_devstack_answers_preflights_as_the_templates_cors_configuration_says(devstack: DevStack) -> None:
    """A web app that works against `make dev` works against AWS: the same CORS, read from template.yaml,
    which allows every request header the API reads."""
    cors = devstack.template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert {"Authorization", "Content-Type"} <= set(cors["AllowHeaders"])
    preflight = httpx.options(
        f"{devstack.http_url}/jobs",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=30,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-headers"] == ", ".join(cors["AllowHeaders"])
    assert preflight.headers["access-control-allow-methods"] == ", ".join(cors["AllowMethods"])
    assert preflight.headers["access-control-max-age"] == str(cors["MaxAge"])
