"""Schemathesis against the HTTP API as a client reaches it: the devstack's HTTP port, the real Lambda
handlers, PostgreSQL and moto, every operation of docs/openapi.json, a fixed seed and a bounded number of
cases. The bar: no request gets a server error (5xx) or a broken connection, and every answer's status,
content type, headers and body are the ones the document declares for it.

Every phase runs (examples, coverage, fuzzing, stateful; docs/openapi.json has no examples yet, so the first
sends nothing) in positive and negative mode, so the API also gets values outside the schema, requests missing
a required part, other methods, and bodies in content types it does not take (multipart, form, text).
Generated path parameters are mixed with the ids of products, a job and a batch seeded first, and job requests
with the actions each marketplace runs, so requests get past "not found" and "unknown action". The run goes
once as a dev user with a valid token and once, shorter, with no token at all.

A failure lists each failing request as a curl command (`$API` and `$TOKEN` as in the README) and the
devstack's log of its 5xx with the handler's traceback (a handled 5xx, e.g. a 503, logs its traceback in the
function's own log: pytest's captured stdout).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

from crosslist.workflows.registry import WORKFLOWS
from devstack.accounts import connect_account
from devstack.stack import DevStack
from tests.conftest import REPO
from tests.e2e.conftest import token

pytestmark = pytest.mark.integration

OPENAPI = REPO / "docs" / "openapi.json"
USER = "e2e-schemathesis"
# Fixed, so every run sends the same requests. To explore further, another seed or more cases:
# `SCHEMATHESIS_SEED=7 SCHEMATHESIS_MAX_EXAMPLES=200 .venv/bin/pytest tests/e2e/test_api_schemathesis.py`.
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20251009"))
# Fuzzing cases per operation; the coverage phase adds its own (each documented value and boundary, each
# required part left out, each undeclared method and content type), the stateful phase chains of requests.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))
NO_TOKEN_MAX_EXAMPLES = 5  # without a token every route answers 401 before reading the request
STATEFUL_MAX_STEPS = 6

# The checks the run must pass: no server error (a dropped connection or a timeout is an error whatever
# the checks), and every answer is the documented one: its status, its content type, its headers, its body's
# schema. The others schemathesis has judge more than the document (e.g. that a schema-valid request for a
# product that does not exist is accepted); run them with `SCHEMATHESIS_CHECKS=all .venv/bin/pytest
# tests/e2e/test_api_schemathesis.py` (or a comma list of check names).
ENFORCED_CHECKS: tuple[str, ...] = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
CONFORMANCE_CHECKS: tuple[str, ...] = (
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
)


def enabled_checks() -> tuple[str, ...]:
    """ENFORCED_CHECKS, and those SCHEMATHESIS_CHECKS adds (`all`: CONFORMANCE_CHECKS)."""
    asked = os.environ.get("SCHEMATHESIS_CHECKS", "").strip()
    added = CONFORMANCE_CHECKS if asked == "all" else tuple(name.strip() for name in asked.split(",") if name.strip())
    return tuple(dict.fromkeys((*ENFORCED_CHECKS, *added)))


# What the dev user owns before the run -------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    bearer: str
    path_parameters: dict[str, list[str]]  # parameter name -> ids the dev user owns

    @property
    def products(self) -> list[str]:
        return self.path_parameters["product_id"]


@pytest.fixture(scope="module")
def seeded(devstack: DevStack) -> Seeded:
    """eBay and Etsy connected (so the seller settings' routes reach the fakes), and five products: a Vinted job
    publishes the first, a batch the next two, the last two have no job."""
    bearer = token(devstack, USER, expires_in=3600)  # outlives a slow run on a loaded machine
    headers = {"Authorization": f"Bearer {bearer}"}
    for marketplace in ("ebay", "etsy"):
        connect_account(devstack.http_url, bearer, marketplace)
    with httpx.Client(base_url=devstack.http_url, headers=headers, timeout=30) as client:
        products = []
        for n in range(5):
            created = client.post("/products", json=_product(devstack, n))
            assert created.status_code == 201, created.text
            products.append(created.json()["id"])
        job = client.post("/jobs", json={"marketplace": "vinted", "action": "publish", "product_id": products[0]})
        assert job.status_code == 202, job.text
        batch = client.post(
            "/jobs/batch", json={"marketplace": "vinted", "action": "publish", "product_ids": products[1:3]}
        )
        assert batch.status_code == 202, batch.text
    return Seeded(bearer, {"product_id": products, "job_id": [job.json()["id"]], "batch_id": [batch.json()["id"]]})


def _product(stack: DevStack, n: int) -> dict[str, Any]:
    return {
        "title": f"Levi's 501 jeans #{n}",
        "description": "Straight fit, barely worn",
        "price": "27.90",
        "currency": "GBP",
        "brand": "Levi's",
        "size": "W32 L32",
        "condition": "very good",
        "image_urls": [f"{stack.http_url}/__devstack/images/{i}.png" for i in (1, 2)],
        "marketplace_attributes": {
            "vinted": {"catalog_id": 1839, "status_id": 2, "package_size_id": 2},
            "ebay": {"category_id": "11483", "condition": "USED_GOOD"},
            "etsy": {"taxonomy_id": 429, "who_made": "someone_else", "when_made": "2010_2019"},
        },
    }


# The run ----------------------------------------------------------------------------------------------------


def load_schema(base_url: str, bearer: str | None, seeded: Seeded) -> schemathesis.BaseSchema:
    checks: dict[str, Any] = {"enabled": False, **{name: {"enabled": True} for name in enabled_checks()}}
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "headers": {"Authorization": f"Bearer {bearer}"} if bearer else {},
            "workers": 1,  # one request at a time: the same requests in the same order on every run
            "continue-on-failure": True,  # every failing case is listed, not only each operation's first
            "request-timeout": 30,
            "generation": {
                "mode": "all",  # positive and negative
                "max-examples": MAX_EXAMPLES if bearer else NO_TOKEN_MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",  # nothing carried over from an earlier run
            },
            "phases": {"stateful": {"enabled": bearer is not None, "max-steps": STATEFUL_MAX_STEPS}},
            "checks": checks,
            "output": {"sanitization": {"enabled": False}},  # the curl commands keep the token (shown as $TOKEN)
        }
    )
    schema = schemathesis.openapi.from_path(OPENAPI, config=config)
    runnable = sorted({(workflow.marketplace, workflow.action) for workflow in WORKFLOWS.values()})

    @schema.hook
    def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any] | None) -> Any:
        # Generated ids, or the dev user's own ones.
        if not path_parameters:
            return st.just(path_parameters)
        known = [
            {**path_parameters, name: value}
            for name in path_parameters
            for value in seeded.path_parameters.get(name, [])
        ]
        return st.sampled_from([path_parameters, *known])

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
        # The documented `action` is any string: job requests also get an action the marketplace runs, on the
        # dev user's products.
        if not isinstance(body, dict) or "action" not in body:
            return st.just(body)
        products = st.sampled_from(seeded.products)
        replacement = st.sampled_from(runnable).flatmap(
            lambda chosen: st.fixed_dictionaries(
                {
                    "marketplace": st.just(chosen[0]),
                    "action": st.just(chosen[1]),
                    **({"product_id": products} if "product_id" in body else {}),
                    **({"product_ids": st.lists(products, min_size=1, unique=True)} if "product_ids" in body else {}),
                }
            )
        )
        return st.one_of(st.just(body), replacement.map(lambda replaced: {**body, **replaced}))

    return schema


@dataclass
class Outcome:
    # (operation, what failed) -> the curl command of each failing request, once each
    failures: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # transport errors, timeouts, and errors of the run itself
    statuses: Counter[int] = field(default_factory=Counter)
    requests_by_phase: Counter[str] = field(default_factory=Counter)
    requests_by_operation: Counter[str] = field(default_factory=Counter)

    def record(self, phase: str, recorder: ScenarioRecorder, variables: dict[str, str]) -> None:
        for interaction in recorder.interactions.values():
            self.requests_by_phase[phase] += 1
            self.requests_by_operation[recorder.label] += 1
            if interaction.response is not None:
                self.statuses[interaction.response.status_code] += 1
        for checks in recorder.checks.values():
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    curl = with_variables(check.failure_info.code_sample, variables)
                    key = (failure.operation or recorder.label, failure.title)
                    self.failures.setdefault(key, {})[curl] = None

    def failure_report(self) -> list[str]:
        report = []
        for (operation, title), curls in self.failures.items():
            report.append(f"{operation}: {title} ({len(curls)} request(s))\n" + "\n".join(curls))
        return report

    def summary(self) -> str:
        phases = ", ".join(f"{phase} {count}" for phase, count in self.requests_by_phase.items())
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return f"{self.requests_by_phase.total()} requests ({phases}); statuses {statuses}"


def run(schema: schemathesis.BaseSchema, variables: dict[str, str]) -> Outcome:
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.record(event.phase.value, event.recorder, variables)
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            outcome.errors.append(f"the run failed: {event.exception!r}")
    return outcome


def with_variables(command: str, variables: dict[str, str]) -> str:
    """The shell command with each value of `variables` written as its shell variable (`$API`, `$TOKEN`)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    rendered = []
    for word in words:
        if not any(value in word for value in variables):
            rendered.append(shlex.quote(word))
            continue
        escaped = re.sub(r'([\\"$`])', r"\\\1", word)
        for value, name in variables.items():
            escaped = escaped.replace(value, f"${{{name}}}")
        rendered.append(f'"{escaped}"')
    return " ".join(rendered)


class ServerErrorLog(logging.Handler):
    """The devstack's lines about 5xx answers and failed invocations, each failure with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if re.search(r"→ 5\d\d", message) or record.levelno >= logging.ERROR or message.startswith("Traceback"):
            self.lines.append(message)

    @property
    def http_server_errors(self) -> list[str]:
        return [line for line in self.lines if re.search(r"→ 5\d\d", line)]


@pytest.fixture
def server_errors() -> Iterator[ServerErrorLog]:
    handler = ServerErrorLog()
    devstack_logger = logging.getLogger("devstack")
    level = devstack_logger.level
    devstack_logger.addHandler(handler)
    devstack_logger.setLevel(logging.DEBUG)  # the tracebacks are logged at DEBUG
    yield handler
    devstack_logger.removeHandler(handler)
    devstack_logger.setLevel(level)


@pytest.mark.parametrize("with_token", [True, False], ids=["dev-user", "no-token"])
def test_every_answer_of_the_http_api_is_the_documented_one_and_none_is_a_server_error(
    devstack: DevStack, seeded: Seeded, server_errors: ServerErrorLog, with_token: bool
) -> None:
    bearer = seeded.bearer if with_token else None
    variables = {devstack.http_url: "API", seeded.bearer: "TOKEN"}

    outcome = run(load_schema(devstack.http_url, bearer, seeded), variables)

    print(outcome.summary())
    if outcome.failures or outcome.errors or server_errors.http_server_errors:
        failing = sum(len(curls) for curls in outcome.failures.values())
        report = [f"{failing} failing request(s), {len(outcome.errors)} error(s)", outcome.summary()]
        report += [*outcome.failure_report(), *outcome.errors]
        report += ["", "the devstack's log:", *server_errors.lines]
        pytest.fail("\n\n".join(report), pytrace=False)
    documented = {
        f"{method.upper()} {path}"
        for path, methods in json.loads(OPENAPI.read_text())["paths"].items()
        for method in methods
    }
    assert documented <= set(outcome.requests_by_operation), documented - set(outcome.requests_by_operation)
