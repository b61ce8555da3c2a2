"""Connecting eBay and Etsy accounts through the devstack, at its fake eBay and Etsy: the authorization URL
points at the fake, which sends the browser to the devstack's callback, which sends it on to the web app
page (the devstack's own `/`); the web app completes the connection with the user's token."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest

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
    assert [call.status for call in fake.calls_to("/oauth")] == [302, 200]


def test_a_product_is_published_on_the_fake_ebay_and_etsy_through_the_devstack(devstack: DevStack) -> None:
    """What `make dev` offers: connect, pick the seller settings among the account's own, publish."""
    headers = {"Authorization": f"Bearer {token(devstack, 'e2e-crosslister')}"}
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as client:
        for marketplace in ("ebay", "etsy"):
            connect_account(devstack.http_url, headers["Authorization"].split()[1], marketplace)
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
                "image_urls": [f"{devstack.http_url}/__devstack/images/{n}.png" for n in (1, 2)],
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
        ended = {marketplace: _ended(client, job_id) for marketplace, job_id in jobs.items()}

    assert {m: job["status"] for m, job in ended.items()} == {"ebay": "completed", "etsy": "completed"}, ended
    assert [o["status"] for o in devstack.ebay.offers("dev")] == ["PUBLISHED"]
    [listing] = devstack.etsy.listings("dev")
    assert listing["state"] == "active"
    assert len(devstack.etsy.images(listing["listing_id"])) == 2


def _ended(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    job: dict[str, object] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job still {job.get('status')} after {timeout} s: {job}")
