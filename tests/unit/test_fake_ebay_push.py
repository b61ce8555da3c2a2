"""The fake eBay pushes as eBay does (devstack.fake_ebay): the app's own token, the Notification API's public keys,
destinations checked by a challenge, a seller's subscriptions, the Commerce Identity API, and signed
ORDER_CONFIRMATION and MARKETPLACE_ACCOUNT_DELETION messages that crosslist's verification accepts."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from crosslist.notifications import ebay_signature
from devstack.fake_ebay import DELETE_ACCOUNT_PATH, IDENTITY_PATH, NOTIFICATION, TOKEN_PATH, FakeEbay
from devstack.fake_http import SELL_PATH
from tests.unit.test_fake_ebay import published

TOKEN = "a-verification-token-of-forty-characters!"


@dataclass
class Endpoint:
    """crosslist's notification endpoint, as far as eBay sees it: answers challenges, records what it gets."""

    token: str = TOKEN
    status: int = 204
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method == "GET":
            code = request.args.get("challenge_code", "")
            digest = hashlib.sha256((code + self.token + self.url).encode()).hexdigest()
            return Response(json.dumps({"challengeResponse": digest}), mimetype="application/json")(
                environ, start_response
            )
        self.received.append((dict(request.headers), request.get_data()))
        return Response(status=self.status)(environ, start_response)


@pytest.fixture(scope="module")
def endpoint_server() -> Iterator[Endpoint]:
    endpoint = Endpoint()
    server = make_server("127.0.0.1", 0, endpoint, threaded=True)
    endpoint.url = f"http://127.0.0.1:{server.port}/notifications/ebay"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield endpoint
    server.shutdown()


@pytest.fixture
def endpoint(endpoint_server: Endpoint) -> Endpoint:
    endpoint_server.token, endpoint_server.status = TOKEN, 204
    endpoint_server.received.clear()
    return endpoint_server


def app_client(fake: FakeEbay) -> httpx.Client:
    answer = httpx.post(
        fake.base_url + TOKEN_PATH,
        data={"grant_type": "client_credentials", "scope": "https://api.ebay.com/oauth/api_scope"},
        auth=httpx.BasicAuth(fake.client_id, fake.client_secret),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Application Access Token"
    assert "refresh_token" not in answer.json()
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {answer.json()['access_token']}"})


def user_client(fake: FakeEbay, account: str) -> httpx.Client:
    token = fake.issue_tokens(account)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Language": "en-GB"}
    return httpx.Client(base_url=fake.base_url, headers=headers)


def subscribed(fake: FakeEbay, endpoint: Endpoint, account: str) -> str:
    with app_client(fake) as app:
        created = app.post(
            f"{NOTIFICATION}/destination",
            json={
                "name": "crosslist",
                "status": "ENABLED",
                "deliveryConfig": {"endpoint": endpoint.url, "verificationToken": TOKEN},
            },
        )
        assert created.status_code == 201, created.text
        destination = created.headers["location"].rpartition("/")[2]
    with user_client(fake, account) as seller:
        body = {"topicId": "ORDER_CONFIRMATION", "status": "ENABLED", "destinationId": destination}
        assert seller.post(f"{NOTIFICATION}/subscription", json=body).status_code == 201
    return destination


def verified(fake: FakeEbay, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The message, checked as crosslist checks it, with the key the fake serves."""
    header = ebay_signature.parse_signature_header(headers["X-Ebay-Signature"])
    with app_client(fake) as app:
        served = app.get(f"{NOTIFICATION}/public_key/{header.kid}").json()
    assert (served["algorithm"], served["digest"]) == ("ECDSA", "SHA1")
    ebay_signature.verify(body, header, ebay_signature.load_public_key(served["key"]))
    return dict(json.loads(body))


def test_the_apps_own_token_reads_public_keys_and_a_users_token_cannot(fake_ebay: FakeEbay) -> None:
    with app_client(fake_ebay) as app:
        served = app.get(f"{NOTIFICATION}/public_key/{fake_ebay.signing_key_id}")
        assert served.status_code == 200
        assert served.json()["key"].startswith("-----BEGIN PUBLIC KEY-----")
        assert "\n" not in served.json()["key"]  # eBay runs the PEM's lines together
        unknown = app.get(f"{NOTIFICATION}/public_key/00000000-0000-0000-0000-000000000000")
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["domain"] == "API_NOTIFICATION"
        assert app.get("/sell/inventory/v1/inventory_item").status_code == 403  # no seller's
    with user_client(fake_ebay, "dev") as seller:
        assert seller.get(f"{NOTIFICATION}/public_key/{fake_ebay.signing_key_id}").status_code == 403


def test_the_identity_api_names_the_account_by_a_stable_immutable_id(fake_ebay: FakeEbay) -> None:
    with user_client(fake_ebay, "alice") as seller:
        me = seller.get(IDENTITY_PATH).json()
    assert me["username"] == "alice"
    assert me["userId"] == fake_ebay.user_id("alice") != fake_ebay.user_id("bob")
    assert len(me["userId"]) == 11
    assert me["userId"].isalnum()


def test_a_destination_is_created_only_when_its_endpoint_answers_the_challenge(
    fake_ebay: FakeEbay, endpoint: Endpoint
) -> None:
    body = {"name": "crosslist", "deliveryConfig": {"endpoint": endpoint.url, "verificationToken": TOKEN}}
    with app_client(fake_ebay) as app:
        endpoint.token = "another-token-of-at-least-thirty-two-chars"
        refused = app.post(f"{NOTIFICATION}/destination", json=body)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["errorId"] == 195017
        endpoint.token = TOKEN
        assert app.post(f"{NOTIFICATION}/destination", json=body).status_code == 201
        assert app.post(f"{NOTIFICATION}/destination", json=body).status_code == 409
        short = {"deliveryConfig": {"endpoint": endpoint.url + "/x", "verificationToken": "short"}}
        assert app.post(f"{NOTIFICATION}/destination", json=short).status_code == 400
        [listed] = app.get(f"{NOTIFICATION}/destination").json()["destinations"]
    assert listed["deliveryConfig"]["endpoint"] == endpoint.url


def test_a_sellers_subscriptions_are_theirs_alone(fake_ebay: FakeEbay, endpoint: Endpoint) -> None:
    destination = subscribed(fake_ebay, endpoint, "alice")
    with user_client(fake_ebay, "alice") as alice, user_client(fake_ebay, "bob") as bob:
        [subscription] = alice.get(f"{NOTIFICATION}/subscription").json()["subscriptions"]
        assert (subscription["topicId"], subscription["destinationId"]) == ("ORDER_CONFIRMATION", destination)
        again = {"topicId": "ORDER_CONFIRMATION", "destinationId": destination}
        assert alice.post(f"{NOTIFICATION}/subscription", json=again).status_code == 409
        account_topic = {"topicId": "MARKETPLACE_ACCOUNT_DELETION", "destinationId": destination}
        assert alice.post(f"{NOTIFICATION}/subscription", json=account_topic).status_code == 400  # the app's
        assert bob.get(f"{NOTIFICATION}/subscription").json()["subscriptions"] == []
        assert bob.delete(f"{NOTIFICATION}/subscription/{subscription['subscriptionId']}").status_code == 404
        assert alice.delete(f"{NOTIFICATION}/subscription/{subscription['subscriptionId']}").status_code == 204
    assert fake_ebay.subscriptions("alice") == []


def test_a_sale_pushes_a_signed_order_confirmation_per_line_item_to_the_sellers_destinations(
    fake_ebay: FakeEbay, endpoint: Endpoint
) -> None:
    subscribed(fake_ebay, endpoint, "dev")
    with user_client(fake_ebay, "dev") as seller:
        _, listing_id = published(fake_ebay, seller)
    sold = httpx.post(fake_ebay.base_url + SELL_PATH, json={"listing_id": listing_id})  # as `crosslist dev sell`
    assert sold.status_code == 200, sold.text
    [push] = fake_ebay.push.wait()
    assert push.delivered
    assert push.status == 204
    assert push.attempts == 1
    [(headers, body)] = endpoint.received
    message = verified(fake_ebay, headers, body)
    assert message["metadata"] == {"topic": "ORDER_CONFIRMATION", "schemaVersion": "1.0", "deprecated": False}
    data = message["notification"]["data"]
    assert data["orderId"] == sold.json()["order_id"]
    assert data["sellerId"] == fake_ebay.user_id("dev")
    assert message["notification"]["notificationId"]


def test_a_seller_whose_subscriptions_are_disabled_is_pushed_nothing(fake_ebay: FakeEbay, endpoint: Endpoint) -> None:
    subscribed(fake_ebay, endpoint, "dev")
    with user_client(fake_ebay, "dev") as seller:
        _, listing_id = published(fake_ebay, seller)
    fake_ebay.disable_subscriptions("dev")
    fake_ebay.sell(listing_id)
    assert fake_ebay.push.wait() == []
    assert endpoint.received == []
    assert {s["status"] for s in fake_ebay.subscriptions("dev")} == {"DISABLED"}


def test_an_endpoint_that_refuses_is_tried_again_then_given_up(fake_ebay: FakeEbay, endpoint: Endpoint) -> None:
    subscribed(fake_ebay, endpoint, "dev")
    with user_client(fake_ebay, "dev") as seller:
        _, listing_id = published(fake_ebay, seller)
    fake_ebay.push.retry_seconds = (0.05, 0.05)
    endpoint.status = 503
    fake_ebay.sell(listing_id)
    [push] = fake_ebay.push.wait()
    assert (push.attempts, push.status, push.delivered) == (3, 503, False)
    assert len(endpoint.received) == 3
    assert len({body for _, body in endpoint.received}) == 1  # the same message each time
    fake_ebay.push.retry_seconds = (1.0, 3.0)


def test_an_account_deletion_is_signed_and_sent_to_the_apps_endpoint(fake_ebay: FakeEbay, endpoint: Endpoint) -> None:
    assert fake_ebay.delete_account("alice") is None  # no endpoint registered: nothing sent
    fake_ebay.account_deletion_endpoint = endpoint.url
    try:
        answer = httpx.post(fake_ebay.base_url + DELETE_ACCOUNT_PATH, json={"account": "alice"})
        assert answer.status_code == 202
        assert answer.json()["user_id"] == fake_ebay.user_id("alice")
        fake_ebay.push.wait()
    finally:
        fake_ebay.account_deletion_endpoint = None
    [(headers, body)] = endpoint.received
    message = verified(fake_ebay, headers, body)
    assert message["metadata"]["topic"] == "MARKETPLACE_ACCOUNT_DELETION"
    data = message["notification"]["data"]
    assert (data["username"], data["userId"]) == ("alice", fake_ebay.user_id("alice"))
    assert data["eiasToken"]


def test_keys_destinations_and_subscriptions_outlive_a_restart(fake_ebay: FakeEbay, endpoint: Endpoint) -> None:
    destination = subscribed(fake_ebay, endpoint, "dev")
    old_kid = fake_ebay.signing_key_id
    new_kid = fake_ebay.rotate_signing_key()
    restarted = FakeEbay(client_id=fake_ebay.client_id, client_secret=fake_ebay.client_secret)
    restarted.restore(json.loads(json.dumps(fake_ebay.state())))
    assert restarted.signing_key_id == new_kid
    assert [d["destinationId"] for d in restarted.destinations()] == [destination]
    assert [s["destinationId"] for s in restarted.subscriptions("dev")] == [destination]
    body = b'{"same":"message"}'
    assert restarted.sign(body, old_kid)
    assert restarted.sign(body) != fake_ebay.sign(body, old_kid)
    header = ebay_signature.parse_signature_header(restarted.sign(body))
    public = fake_ebay._signing_keys[new_kid].public_key()
    ebay_signature.verify(body, header, public)  # the same key, restored
