"""Input no store can hold gets a 4xx (or a WebSocket error) with the reason, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import Backend, count
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration

NUL = "\u0000"


def nothing_stored(backend: Backend, sql: Any) -> bool:
    return (
        count(sql, "SELECT count(*) FROM products") == 0
        and count(sql, "SELECT count(*) FROM marketplace_jobs") == 0
        and backend.queued() == 0
    )


def product(**fields: Any) -> dict[str, Any]:
    return {"title": "Levi's 501", "price": "27.90", **fields}


@pytest.mark.parametrize(
    "body",
    [
        product(title=f"a{NUL}b"),
        product(description=f"fits{NUL}"),
        product(marketplace_attributes={"vinted": {"note": f"x{NUL}"}}),
        product(marketplace_attributes={"vinted": {f"key{NUL}": 1}}),
        product(title="\ud800 lone surrogate"),
        product(brand="Levi's", size=f"W32{NUL}"),
    ],
)
def test_unstorable_text_in_a_product_is_a_422_naming_it(backend: Backend, sql: Any, body: dict[str, Any]) -> None:
    reply = backend.http("POST", "/products", body=json.dumps(body))
    assert reply.status == 422, reply.body
    assert "NUL" in reply.body["message"]
    assert nothing_stored(backend, sql)


@pytest.mark.parametrize("field", ["idempotency_key", "action"])
def test_unstorable_text_in_a_job_request_is_a_422(backend: Backend, sql: Any, field: str) -> None:
    product_id = backend.create_product()["id"]
    body = {"marketplace": "vinted", "action": "publish", "product_id": product_id, field: f"x{NUL}y"}
    reply = backend.http("POST", "/jobs", body=json.dumps(body))
    assert reply.status == 422, reply.body
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 0
    assert backend.queued() == 0


def test_a_body_that_is_not_utf8_is_a_400(backend: Backend, sql: Any) -> None:
    reply = backend.http("POST", "/products", base64_body=b"\xff\xfe\x00{")
    assert (reply.status, reply.body["code"]) == (400, "invalid_body")
    assert "UTF-8" in reply.body["message"]
    assert nothing_stored(backend, sql)


@pytest.mark.parametrize("depth", [40, 5_000, 100_000])
def test_deeply_nested_json_is_a_422(backend: Backend, sql: Any, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    reply = backend.http(
        "POST", "/products", body=f'{{"title": "t", "price": "1.00", "marketplace_attributes": {nested}}}'
    )
    assert reply.status == 422, reply.body
    assert "nested deeper" in reply.body["message"]
    assert nothing_stored(backend, sql)


@pytest.mark.parametrize("number", ["1e400", "NaN", "-Infinity", "9" * 5000])
def test_numbers_no_store_can_hold_are_a_422(backend: Backend, sql: Any, number: str) -> None:
    reply = backend.http("POST", "/products", body=f'{{"title": "t", "price": {number}}}')
    assert reply.status == 422, reply.body
    assert nothing_stored(backend, sql)


def test_a_body_over_the_size_limit_is_a_413(backend: Backend, sql: Any) -> None:
    reply = backend.http("POST", "/products", body=json.dumps(product(description="x" * 300_000)))
    assert (reply.status, reply.body["code"]) == (413, "body_too_large")
    assert nothing_stored(backend, sql)


def test_nul_in_the_url_is_a_400(backend: Backend) -> None:
    reply = backend.http("GET", "/products", query={"offset": f"1{NUL}"})
    assert reply.status in (400, 422)


def test_a_token_whose_user_id_holds_nul_is_refused_on_http_and_websocket(backend: Backend, sql: Any) -> None:
    token = token_for(f"mallory{NUL}")
    reply = backend.http("POST", "/products", user=None, body=product(), headers={"authorization": f"Bearer {token}"})
    assert (reply.status, reply.body["code"]) == (401, "unauthorized")
    status, _ = backend.connect(token=token)
    assert status == 401
    assert nothing_stored(backend, sql)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"action": "plugin_result", "result": ' + "[" * 3000 + "]" * 3000 + "}", "nested deeper"),
        (json.dumps({"action": "plugin_result", "request_id": f"r{NUL}", "success": True}), "NUL"),
        ('{"action": "plugin_status", "ready": true, "extension_version": NaN}', "not a number"),
    ],
)
def test_websocket_messages_no_store_can_hold_get_invalid_message(backend: Backend, body: str, reason: str) -> None:
    tab, _ = backend.open_tab()
    backend.send(tab, body)
    [error] = backend.gateway.of_type(tab, "error")
    assert error["code"] == "invalid_message"
    assert reason in error["message"]


# Every route that takes a body: (method, path) with {id} for an existing product or job.
BODY_ROUTES = [
    ("POST", "/products"),
    ("PATCH", "/products/{product}"),
    ("POST", "/jobs"),
    ("POST", "/jobs/batch"),
    ("PUT", "/sync-rules"),
    ("PUT", "/settings"),
    ("PUT", "/marketplaces/ebay/settings"),
    ("POST", "/marketplaces/ebay/connect"),
]


def _multipart(fields: dict[str, str], boundary: str = "crosslist") -> str:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    return "".join(parts) + f"--{boundary}--\r\n"


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    "sent",
    [
        ("multipart/form-data", _multipart({"title": "Levi's 501", "price": "27.90"})),  # no boundary
        ("multipart/form-data; boundary=crosslist", _multipart({"title": "Levi's 501", "price": "27.90"})),
        ("multipart/form-data; boundary=crosslist", _multipart({"title": f"a{NUL}b", "price": "1.00"})),
        ("multipart/form-data; boundary=crosslist", _multipart({"title": "Łódź ☃", "price": "1.00"})),
        ("application/x-www-form-urlencoded", "title=Levi%27s&price=27.90&marketplace=vinted"),
        ("text/plain", '{"title": "Levi\'s 501", "price": "27.90"}'),
    ],
)
def test_a_body_that_is_not_json_is_a_415_on_every_route_and_stores_nothing(
    backend: Backend, sql: Any, method: str, path: str, sent: tuple[str, str]
) -> None:
    content_type, body = sent
    before = count(sql, "SELECT count(*) FROM products")
    target = path.format(product=backend.create_product()["id"]) if "{" in path else path
    reply = backend.http(method, target, body=body, headers={"content-type": content_type})
    assert (reply.status, reply.body["code"]) == (415, "unsupported_media_type"), reply.body
    assert "must be JSON" in reply.body["message"]
    assert count(sql, "SELECT count(*) FROM products") == before + ("{" in path)
    assert count(sql, "SELECT count(*) FROM marketplace_jobs") == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", ""])
def test_json_with_parameters_or_no_content_type_is_taken(backend: Backend, content_type: str) -> None:
    reply = backend.http("POST", "/products", body=json.dumps(product()), headers={"content-type": content_type})
    assert reply.status == 201, reply.body


@pytest.mark.parametrize(("method", "path"), [*BODY_ROUTES, ("GET", "/jobs"), ("GET", "/orders")])
def test_a_request_without_a_token_is_a_401_whatever_its_body_or_query(
    backend: Backend, sql: Any, method: str, path: str
) -> None:
    target = path.format(product="not-a-uuid")
    for body, query in ((None, {"limit": "0", "status": "sleeping"}), ("{not json", None), (json.dumps([1]), None)):
        reply = backend.http(method, target, user=None, body=body, query=query)
        assert (reply.status, reply.body["code"]) == (401, "unauthorized"), (body, query, reply.body)
    assert nothing_stored(backend, sql)
