"""Connecting eBay and Etsy accounts through the devstack, at its fake eBay and Etsy: the authorization URL
points at the fake, which sends the browser back to the devstack's callback, which stores the credential."""

from __future__ import annotations

import time

import httpx
import pytest

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

        # What `curl -L` does: the fake consents at once and redirects to the callback (no crosslist token).
        landed = httpx.get(f"{authorization_url}&account=seller-{marketplace}", follow_redirects=True, timeout=30)
        statuses = {one["marketplace"]: one["status"] for one in client.get("/marketplaces").json()}

    assert landed.status_code == 200, landed.text
    assert landed.url.path == f"/marketplaces/{marketplace}/callback"
    assert landed.json() == {"marketplace": marketplace, "status": "connected"}
    assert statuses[marketplace] == "connected"
    assert fake.token_calls["authorization_code"] == 1
    assert [call.status for call in fake.calls_to("/oauth")] == [302, 200]


def test_a_product_is_published_on_the_fake_ebay_and_etsy_through_the_devstack(devstack: DevStack) -> None:
    """What `make dev` offers: connect, pick the seller settings among the account's own, publish."""
    headers = {"Authorization": f"Bearer {token(devstack, 'e2e-crosslister')}"}
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as client:
        for marketplace in ("ebay", "etsy"):
            authorization_url = client.get(f"/marketplaces/{marketplace}/connect").json()["authorization_url"]
            assert httpx.get(authorization_url, follow_redirects=True, timeout=30).status_code == 200
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
