"""Property: whatever a client sends, every route answers 2xx/4xx and ws_message never crashes.

The class of bug behind issue #6's 500s: input Python accepts but a store does not (NUL, lone
surrogates, NaN, huge or deep values, bytes that are not UTF-8). Hypothesis throws arbitrary JSON,
strings and bytes at every HTTP route and at the WebSocket message handler, against the real handlers,
PostgreSQL and moto.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # make slow

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "\u0000", "\ud800", "vinted", "publish", "27.90", "EUR", "https://a.example/x.jpg"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
product_fields = st.fixed_dictionaries(
    {"title": json_values, "price": json_values},
    optional={
        "description": json_values,
        "currency": json_values,
        "brand": json_values,
        "size": json_values,
        "image_urls": json_values,
        "quantity": json_values,
        "sku": json_values,
        "marketplace_attributes": st.one_of(
            json_values, st.dictionaries(st.sampled_from(["vinted", "ebay", "etsy", "x"]), json_values, max_size=3)
        ),
    },
)
job_fields = st.fixed_dictionaries(
    {"marketplace": st.one_of(st.sampled_from(["vinted", "ebay", "etsy"]), json_values), "action": json_values},
    optional={
        "product_id": json_values,
        "product_ids": st.one_of(json_values, st.lists(st.uuids().map(str), max_size=3)),
        "priority": json_values,
        "idempotency_key": json_values,
    },
)


def dumps(value: Any) -> str:
    # allow_nan: the point is to send NaN and Infinity as some clients would.
    return json.dumps(value, allow_nan=True)


bodies = st.one_of(
    st.none(),
    product_fields.map(dumps),
    job_fields.map(dumps),
    json_values.map(dumps),
    st.text(max_size=200),
    st.integers(min_value=1, max_value=6_000).map(lambda depth: "[" * depth + "]" * depth),
)
ROUTES = [
    ("POST", "/products"),
    ("GET", "/products"),
    ("GET", "/products/{id}"),
    ("PATCH", "/products/{id}"),
    ("DELETE", "/products/{id}"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{id}"),
    ("POST", "/jobs/{id}/cancel"),
    ("POST", "/jobs/batch"),
    ("GET", "/batches/{id}"),
]


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    raw=st.one_of(st.none(), st.binary(max_size=100)),
    path_id=st.one_of(st.uuids().map(str), st.text(max_size=40)),
    query=st.dictionaries(
        st.sampled_from(["limit", "offset", "cursor", "status", "marketplace", "batch_id", "x"]),
        st.text(max_size=25),
        max_size=3,
    ),
)
def test_no_http_route_answers_5xx_whatever_it_is_sent(
    backend: Backend,
    *,
    route: tuple[str, str],
    body: str | None,
    raw: bytes | None,
    path_id: str,
    query: dict[str, str],
) -> None:
    method, template = route
    path = template.replace("{id}", path_id)
    if raw is not None:
        reply = backend.http(method, path, query=query or None, base64_body=raw)
    else:
        reply = backend.http(method, path, body=body, query=query or None)
    assert reply.status < 500, (method, path, reply.body)
    if reply.status >= 400:
        assert reply.body.get("message") or reply.body.get("detail"), reply.body


plugin_messages = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(["plugin_result", "plugin_status"]), json_values)},
    optional={
        "request_id": json_values,
        "success": json_values,
        "result": json_values,
        "error": json_values,
        "ready": json_values,
        "extension_version": json_values,
    },
)


@FUZZ
@given(
    message=st.one_of(
        plugin_messages.map(dumps),
        json_values.map(dumps),
        st.text(max_size=200),
        st.integers(min_value=1, max_value=6_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    )
)
def test_ws_message_answers_anything_without_crashing(backend: Backend, message: str) -> None:
    tab, _ = backend.open_tab()
    backend.send(tab, message)  # raises if the handler does
    for reply in backend.gateway.messages[tab]:
        if reply["type"] == "plugin.status":  # a plugin_status was recorded (the tab's own, or the fuzzed one)
            assert isinstance(reply["ready"], bool), reply
            continue
        if reply["type"] == "jobs.active":  # sent to every new tab
            assert isinstance(reply["jobs"], list), reply
            continue
        assert reply["type"] == "error", reply
        assert reply["code"] in {"invalid_message", "unknown_request", "forbidden", "rate_limited"}, reply
        assert reply["message"]


def test_the_generators_reach_the_inputs_that_used_to_fail() -> None:
    """Guard against a fuzz test that quietly stops generating the dangerous cases."""
    assert math.isnan(json.loads(dumps(float("nan"))))
    assert "\u0000" in dumps({"title": "\u0000"}).encode().decode("unicode_escape")
