"""The functions can never open more PostgreSQL connections than DatabaseConnections allows.

Every function whose role can read the database secret is bounded: a reserved concurrency, or (process_job and
deliver_webhooks, fed by queues) a MaximumConcurrency on each event source. The ConnectionBudget mapping is
recomputed here from the README's formula for every allowed value, so a hand edit of one line, a new PostgreSQL
function left unbounded, or a bigger pool per instance fails this test.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import QueuePool

from crosslist.db.engine import make_engine
from crosslist.db.tls import DatabaseTls
from devstack.template import load_template
from tests.integration.test_template import _events, _policy_documents, _references

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# What each share of the budget is called in the mapping, and its minimum and share of what is left (README).
SHARES = {
    "TimersQueue": (2, 0.15),
    "CreateJob": (1, 0.20),
    "Products": (1, 0.10),
    "Marketplaces": (1, 0.05),
    "Webhooks": (2, 0.05),  # deliver_webhooks' queue: SQS's smallest MaximumConcurrency
    "Notifications": (1, 0.02),  # what eBay and Etsy push: short requests
}
JOBS_QUEUE_MINIMUM = 2  # SQS's smallest MaximumConcurrency
SINGLE_RUN_FUNCTIONS = ("SweeperFunction", "SchedulerFunction", "OAuthRefreshFunction")
QUEUE_FED_FUNCTIONS = ("ProcessJobFunction", "DeliverWebhooksFunction")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def connections_per_instance() -> int:
    engine = make_engine("postgresql+pg8000://u:p@localhost/db", tls=DatabaseTls.from_environment())
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.size() + pool._max_overflow


def budget(connections: int) -> dict[str, int]:
    """The README's formula: what each bounded function may run at once for a budget of `connections`."""
    kept = max(4, math.ceil(connections / 10))  # for people, migrations, other clients
    instances = (connections - kept) // connections_per_instance()
    rest = instances - len(SINGLE_RUN_FUNCTIONS)
    spare = rest - JOBS_QUEUE_MINIMUM - sum(minimum for minimum, _ in SHARES.values())
    assert spare >= 0, f"{connections} connections are too few for one instance of each function"
    shares = {name: minimum + math.floor(share * spare) for name, (minimum, share) in SHARES.items()}
    return {"JobsQueue": rest - sum(shares.values()), **shares}


def _database_functions(template: dict[str, Any]) -> list[str]:
    return [
        function_id
        for function_id, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
        and "DatabaseSecretArn" in set(_references(_policy_documents(template, function_id)))
    ]


def _limit(template: dict[str, Any], node: Any, connections: int) -> int:
    """A concurrency as the template gives it: a number, or a FindInMap on ConnectionBudget."""
    if isinstance(node, int):
        return node
    assert isinstance(node, dict), node
    mapping, key, share = node["Fn::FindInMap"]
    assert (mapping, key) == ("ConnectionBudget", {"Ref": "DatabaseConnections"}), node
    return int(template["Mappings"]["ConnectionBudget"][str(connections)][share])


def _allowed_budgets(template: dict[str, Any]) -> list[int]:
    return [int(value) for value in template["Parameters"]["DatabaseConnections"]["AllowedValues"]]


def test_the_mapping_is_the_formula_for_every_allowed_budget(template: dict[str, Any]) -> None:
    mapping = template["Mappings"]["ConnectionBudget"]
    assert set(mapping) == {str(value) for value in _allowed_budgets(template)}
    for connections in _allowed_budgets(template):
        assert mapping[str(connections)] == budget(connections), f"DatabaseConnections {connections}"


def test_every_database_function_is_bounded_and_all_of_them_fit_the_budget(template: dict[str, Any]) -> None:
    functions = _database_functions(template)
    assert {"ProcessJobFunction", "CreateJobFunction", "MigrationFunction", *SINGLE_RUN_FUNCTIONS} <= set(functions)
    for connections in _allowed_budgets(template):
        instances = 0
        for function_id in functions:
            properties = template["Resources"][function_id]["Properties"]
            if "ReservedConcurrentExecutions" in properties:
                instances += _limit(template, properties["ReservedConcurrentExecutions"], connections)
                continue
            if function_id == "MigrationFunction":
                # Run only by a deploy or `make migrate`, one connection: part of the tenth kept aside.
                assert "Events" not in properties
                continue
            # Fed by queues only: each source caps its invocations, and nothing else may invoke it.
            assert function_id in QUEUE_FED_FUNCTIONS, f"{function_id} has no concurrency limit"
            sources = _events(template, function_id, "SQS")
            assert len(sources) == len(properties["Events"]), f"{function_id}: an event source without a cap"
            for source in sources:
                instances += _limit(template, source["ScalingConfig"]["MaximumConcurrency"], connections)
        opened = instances * connections_per_instance()
        assert opened <= connections, f"DatabaseConnections {connections}: {opened} connections can be opened"
        # Most of the budget is used: a tenth (at least 4) is kept for people and migrations, and rounding.
        assert opened >= connections - max(4, math.ceil(connections / 10)) - connections_per_instance()


def test_the_queues_caps_are_ones_lambda_accepts(template: dict[str, Any]) -> None:
    for connections in _allowed_budgets(template):
        for function_id in QUEUE_FED_FUNCTIONS:
            for source in _events(template, function_id, "SQS"):
                assert 2 <= _limit(template, source["ScalingConfig"]["MaximumConcurrency"], connections) <= 1000
