"""The sample events in events/ (for `sam local invoke`) are accepted by their handlers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO
from tests.integration.conftest import Backend
from tests.support.tokens import token_for

pytestmark = pytest.mark.integration


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((REPO / "events" / f"{name}.json").read_text()))


def with_token(event: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(event).replace("REPLACE_WITH_A_VALID_JWT", token_for("user-42"))
    return dict(json.loads(text))


def test_every_function_has_a_sample_event() -> None:
    functions = {path.name for path in (REPO / "functions").iterdir() if (path / "app.py").exists()}
    assert {path.stem for path in (REPO / "events").glob("*.json")} == functions


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("ws_connect", {"statusCode": 200}),
        ("ws_message", {"statusCode": 200}),
        ("process_job", {"batchItemFailures": []}),
        ("oauth_refresh", {"due_for_refresh": 0}),
        ("sweeper", {"requeued_jobs": 0}),
    ],
)
def test_sample_event_is_handled(backend: Backend, function: str, expected: dict[str, Any]) -> None:
    handler = load_handler(REPO / "functions" / function)
    assert handler(with_token(sample(function)), LambdaContext(function)) == expected


@pytest.mark.parametrize(("function", "status"), [("create_job", 404), ("products", 200)])
def test_http_sample_event_is_routed(backend: Backend, function: str, status: int) -> None:
    # create_job's sample publishes a product that does not exist here: 404 proves it was routed and parsed.
    handler = load_handler(REPO / "functions" / function)
    response = handler(with_token(sample(function)), LambdaContext(function))
    assert response["statusCode"] == status, response.get("body")
