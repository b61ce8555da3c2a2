"""The devstack reads functions, routes and environments from template.yaml: no second list to keep."""

from __future__ import annotations

import copy

from devstack.functions import functions_from_template, resolve
from devstack.template import load_template
from tests.conftest import REPO

TEMPLATE = load_template(REPO / "template.yaml")
REFERENCES = {
    "ConnectionsTable": "ConnectionsTable",
    "PendingCommandsTable": "PendingCommandsTable",
    "JobsQueue": "http://127.0.0.1:4566/123456789012/JobsQueue.fifo",
    "TimersQueue": "http://127.0.0.1:4566/123456789012/TimersQueue",
    "WebSocketApi": "local",
    "StageName": "prod",
    "AWS::Region": "us-east-1",
}


def test_every_function_is_found_with_globals_applied() -> None:
    functions = functions_from_template(TEMPLATE, REPO, REFERENCES, {"DATABASE_URL": "postgresql+pg8000://x/db"})
    assert {spec.name for spec in functions.values()} == {
        path.name for path in (REPO / "functions").iterdir() if (path / "app.py").exists()
    }
    process_job = functions["ProcessJobFunction"]
    # A wake-up never waits for a browser: process_job runs within its own short Timeout, not a 5-minute one.
    assert process_job.timeout_seconds == 30
    assert process_job.handler == "app.lambda_handler"
    assert process_job.environment["JOBS_QUEUE_URL"] == REFERENCES["JobsQueue"]
    assert process_job.environment["TIMERS_QUEUE_URL"] == REFERENCES["TimersQueue"]
    assert process_job.environment["CONNECTIONS_TABLE"] == "ConnectionsTable"
    assert process_job.environment["POWERTOOLS_SERVICE_NAME"] == "crosslist"
    assert process_job.environment["DATABASE_URL"] == "postgresql+pg8000://x/db"
    assert process_job.environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "30"
    assert set(process_job.events_of_type("SQS")) == {
        name for name, e in process_job.events.items() if e["Type"] == "SQS"
    }


def test_a_functions_own_settings_win_over_globals() -> None:
    template = copy.deepcopy(TEMPLATE)
    defaults = template["Globals"]["Function"]
    own = {"Timeout": defaults["Timeout"] // 3, "MemorySize": defaults["MemorySize"] // 2}
    template["Resources"]["SweeperFunction"]["Properties"].update(own)
    functions = functions_from_template(template, REPO, REFERENCES, {})
    assert functions["SweeperFunction"].timeout_seconds == own["Timeout"]
    assert functions["SweeperFunction"].memory_mb == own["MemorySize"]
    assert functions["SweeperFunction"].environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] == str(own["Timeout"])
    # A function that sets neither gets the Globals.
    products = template["Resources"]["ProductsFunction"]["Properties"]
    assert "Timeout" not in products
    assert "MemorySize" not in products
    assert functions["ProductsFunction"].timeout_seconds == defaults["Timeout"]
    assert functions["ProductsFunction"].memory_mb == defaults["MemorySize"]


def test_overrides_replace_and_blank_overrides_remove() -> None:
    functions = functions_from_template(TEMPLATE, REPO, REFERENCES, {"WEBSOCKET_ENDPOINT": "http://127.0.0.1:8001"})
    assert functions["WsMessageFunction"].environment["WEBSOCKET_ENDPOINT"] == "http://127.0.0.1:8001"
    assert "JWT_SECRET_ARN" not in functions["WsConnectFunction"].environment  # "" parameter default: unset


def test_values_resolve_refs_and_subs() -> None:
    assert resolve({"Ref": "JobsQueue"}, REFERENCES) == REFERENCES["JobsQueue"]
    assert resolve({"Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}/${StageName}"}, REFERENCES) == (
        "https://local.execute-api.us-east-1/prod"
    )
    assert resolve(300, REFERENCES) == "300"
    assert resolve({"Fn::GetAtt": ["X", "Arn"]}, REFERENCES) == ""
