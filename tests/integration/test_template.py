"""template.yaml lints clean (cfn-lint, sam validate --lint) and is wired the way the code expects."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.template import load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
LINT_TIMEOUT_S = 300

EXPECTED_FUNCTIONS = {
    "CreateJobFunction": "functions/create_job",
    "ProductsFunction": "functions/products",
    "ProcessJobFunction": "functions/process_job",
    "WsConnectFunction": "functions/ws_connect",
    "WsMessageFunction": "functions/ws_message",
    "OAuthRefreshFunction": "functions/oauth_refresh",
    "MarketplacesFunction": "functions/marketplaces",
    "SweeperFunction": "functions/sweeper",
    "SchedulerFunction": "functions/scheduler",
    "MigrationFunction": "functions/migrate",
    "DeliverWebhooksFunction": "functions/deliver_webhooks",
    "NotificationsFunction": "functions/notifications",
}
EXPECTED_WS_ROUTES = {
    "$connect": "WsConnectFunction",
    "$disconnect": "WsConnectFunction",
    "$default": "WsMessageFunction",
    "plugin_result": "WsMessageFunction",
    "plugin_status": "WsMessageFunction",
    "resume": "WsMessageFunction",
}
WEBSOCKET_FUNCTIONS = ("WsConnectFunction", "WsMessageFunction")
# The queues each function may send to (SQSSendMessagePolicy), and no others. A lane's wake-ups come
# from every side; only the engine (process_job) sets timers, and ws_message holds a paced reply in one.
EXPECTED_QUEUE_SENDERS = {
    # An event dispatched (a job's end) may be a webhook delivery: the dispatchers send to its queue.
    "CreateJobFunction": {"JobsQueue", "WebhookDeliveryQueue"},
    # Deleting a listed product queues its delists; POST /webhooks/test its delivery.
    "ProductsFunction": {"JobsQueue", "WebhookDeliveryQueue"},
    "ProcessJobFunction": {"JobsQueue", "TimersQueue", "WebhookDeliveryQueue"},
    "WsConnectFunction": {"JobsQueue"},
    "WsMessageFunction": {"JobsQueue", "TimersQueue"},
    "OAuthRefreshFunction": set(),
    "MarketplacesFunction": {"JobsQueue"},  # a reconnected account wakes the jobs that waited for it
    "SweeperFunction": {"JobsQueue", "WebhookDeliveryQueue"},
    "SchedulerFunction": {"JobsQueue"},
    "MigrationFunction": set(),
    "DeliverWebhooksFunction": set(),
    "NotificationsFunction": {"JobsQueue"},  # a pushed sale queues its orders import
}
# A dead wake-up holds its lane's FIFO group until its visibility timeout ends: it must come back soon.
MAX_JOBS_VISIBILITY_S = 60

_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=LINT_TIMEOUT_S,
        check=False,
    )


# --------------------------------------------------------------------- linters


# Both templates of the repository: the stack, and the "All in AWS" database (deploy/database.yaml).
TEMPLATES = ("template.yaml", "deploy/database.yaml")


@pytest.mark.parametrize("template_file", TEMPLATES)
def test_cfn_lint_reports_nothing(template_file: str) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    if not cfn_lint.is_file():
        pytest.fail(f"cfn-lint not found next to {sys.executable}; install the dev extras")
    result = _run([str(cfn_lint), template_file])
    output = result.stdout + result.stderr
    print(output)
    # Warnings and informational findings count too: cfn-lint must print nothing at all.
    assert result.returncode == 0, output
    assert output.strip() == "", output


def _sam_cli() -> Path | None:
    configured = os.environ.get("SAM_CLI")
    sam = Path(configured) if configured else REPO / ".venv-sam" / "bin" / "sam"
    return sam if sam.is_file() and os.access(sam, os.X_OK) else None


@pytest.mark.parametrize("template_file", TEMPLATES)
def test_sam_validate_lint_passes(template_file: str) -> None:
    sam = _sam_cli()
    if sam is None:
        if os.environ.get("CI"):
            pytest.fail("aws-sam-cli not installed (set SAM_CLI or create .venv-sam)")
        pytest.skip("aws-sam-cli not installed; `make test` installs it")
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
        # No network here: never wait for the EC2 metadata service to look for credentials.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = _run([str(sam), "validate", "--lint", "--region", "us-east-1", "--template", template_file], env=env)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output, output


# --------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == resource_type
    }


def _function_property(template: dict[str, Any], function_id: str, name: str) -> Any:
    """A function's property, falling back on Globals like SAM does for scalars."""
    properties = template["Resources"][function_id].get("Properties", {})
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def _references(node: Any) -> Iterator[str]:
    """Logical IDs and parameters referenced anywhere in `node` (Ref, GetAtt, Sub variables)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
                yield target
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                yield from _SUB_VARIABLE.findall(text)
                if isinstance(value, list) and len(value) > 1:
                    yield from _references(value[1])
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _single_reference(node: Any, where: str) -> str:
    found = set(_references(node)) - {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}
    assert len(found) == 1, f"{where}: expected one referenced resource, got {sorted(found)}"
    return found.pop()


def _events(template: dict[str, Any], function_id: str, event_type: str) -> list[dict[str, Any]]:
    events = template["Resources"][function_id]["Properties"].get("Events", {})
    return [event.get("Properties", {}) for event in events.values() if event.get("Type") == event_type]


def _websocket_routes(template: dict[str, Any]) -> dict[str, str]:
    """RouteKey -> function the route's integration invokes."""
    integrations = _resources(template, "AWS::ApiGatewayV2::Integration")
    routes: dict[str, str] = {}
    for route_id, route in _resources(template, "AWS::ApiGatewayV2::Route").items():
        props = route["Properties"]
        assert props["ApiId"] == {"Ref": "WebSocketApi"}, route_id
        integration_id = _single_reference(props["Target"], f"{route_id}.Target")
        integration = integrations[integration_id]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY", integration_id
        assert integration["ApiId"] == {"Ref": "WebSocketApi"}, integration_id
        routes[props["RouteKey"]] = _single_reference(integration["IntegrationUri"], f"{integration_id}.IntegrationUri")
    return routes


# --------------------------------------------------------------------- structure


def test_functions_are_the_expected_ones(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    code_uris = {fid: str(f["Properties"]["CodeUri"]).rstrip("/") for fid, f in functions.items()}
    assert code_uris == EXPECTED_FUNCTIONS
    for function_id, code_uri in code_uris.items():
        assert (REPO / code_uri).is_dir(), f"{function_id}: {code_uri} is not a folder"
        assert _function_property(template, function_id, "Handler") == "app.lambda_handler"
        assert _function_property(template, function_id, "Runtime") == "python3.13"
        assert _function_property(template, function_id, "Architectures") == ["arm64"]


def _conditions_used(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Condition" and isinstance(value, str):
                yield value
            elif key == "Fn::If" and isinstance(value, list) and value:
                yield str(value[0])
                yield from _conditions_used(value[1:])
            else:
                yield from _conditions_used(value)
    elif isinstance(node, list):
        for item in node:
            yield from _conditions_used(item)


def test_every_parameter_and_condition_is_used(template: dict[str, Any]) -> None:
    # cfn-lint skips its unused-parameter rule on SAM templates, so check here.
    body = {key: value for key, value in template.items() if key not in {"Parameters", "Conditions"}}
    referenced = set(_references(body)) | set(_references(template.get("Conditions", {})))
    assert set(template["Parameters"]) - referenced == set()
    assert set(template.get("Conditions", {})) - set(_conditions_used(body)) == set()


def test_websocket_routes_are_wired_to_the_right_functions(template: dict[str, Any]) -> None:
    api = template["Resources"]["WebSocketApi"]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"
    assert _websocket_routes(template) == EXPECTED_WS_ROUTES

    # The deployment must wait for every route, or it publishes an API missing some.
    route_ids = set(_resources(template, "AWS::ApiGatewayV2::Route"))
    deployments = _resources(template, "AWS::ApiGatewayV2::Deployment")
    assert len(deployments) == 1
    (deployment,) = deployments.values()
    assert set(deployment.get("DependsOn", [])) == route_ids

    # API Gateway may invoke each WebSocket function, and only from this API.
    permitted = {}
    for permission_id, permission in _resources(template, "AWS::Lambda::Permission").items():
        props = permission["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com", permission_id
        assert "WebSocketApi" in set(_references(props["SourceArn"])), permission_id
        permitted[_single_reference(props["FunctionName"], permission_id)] = permission_id
    assert set(permitted) == set(EXPECTED_WS_ROUTES.values())


def test_functions_do_not_reference_the_websocket_stage(template: dict[str, Any]) -> None:
    # Function -> Stage -> Deployment -> Route -> Integration -> Function is a cycle.
    downstream = {"WebSocketStage", "WebSocketDeployment"}
    downstream |= set(_resources(template, "AWS::ApiGatewayV2::Route"))
    downstream |= set(_resources(template, "AWS::ApiGatewayV2::Integration"))
    functions = _resources(template, "AWS::Serverless::Function")
    sources = {"Globals": template.get("Globals", {}), **functions}
    for name, node in sources.items():
        assert not downstream & set(_references(node)), name


def _dlq_alarms(template: dict[str, Any], dlq_id: str) -> list[tuple[Any, ...]]:
    return [
        (a["Properties"]["MetricName"], a["Properties"]["ComparisonOperator"], a["Properties"]["Threshold"])
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq_id, "QueueName"]}
    ]


def _consumers(template: dict[str, Any], queue_id: str) -> list[str]:
    return [
        function_id
        for function_id in _resources(template, "AWS::Serverless::Function")
        if any(queue_id in set(_references(event["Queue"])) for event in _events(template, function_id, "SQS"))
    ]


def _assert_redrives_to(template: dict[str, Any], queue_id: str, dlq_id: str, *, fifo: bool) -> None:
    redrive = template["Resources"][queue_id]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert 1 <= int(redrive["maxReceiveCount"]) <= 10
    dlq = template["Resources"][dlq_id]
    assert dlq["Type"] == "AWS::SQS::Queue"
    assert dlq["Properties"].get("FifoQueue", False) is fifo  # a DLQ is of its source queue's kind
    # A message landing there raises an alarm.
    assert _dlq_alarms(template, dlq_id) == [("ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0)]


def test_jobs_queue_is_fifo_with_a_dlq_and_outlasts_its_consumer(template: dict[str, Any]) -> None:
    queue = template["Resources"]["JobsQueue"]["Properties"]
    assert queue["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is False
    # Wake-ups are deduplicated by their cause within their lane's group, not across the queue.
    assert queue["DeduplicationScope"] == "messageGroup"
    assert queue["FifoThroughputLimit"] == "perMessageGroupId"
    _assert_redrives_to(template, "JobsQueue", "JobsDeadLetterQueue", fifo=True)

    assert _consumers(template, "JobsQueue") == ["ProcessJobFunction"]
    timeout = int(_function_property(template, "ProcessJobFunction", "Timeout"))
    visibility = int(queue["VisibilityTimeout"])
    # Not redelivered while still being processed, yet a wake-up that died comes back within a minute.
    assert timeout <= visibility <= MAX_JOBS_VISIBILITY_S, (timeout, visibility)


def test_process_job_consumes_both_lane_queues_and_reports_batch_item_failures(template: dict[str, Any]) -> None:
    events = {event["Queue"]["Fn::GetAtt"][0]: event for event in _events(template, "ProcessJobFunction", "SQS")}
    assert set(events) == {"JobsQueue", "TimersQueue"}
    for event in events.values():
        # One failed wake-up is retried alone, not with the rest of its batch.
        assert "ReportBatchItemFailures" in event.get("FunctionResponseTypes", [])
        # FIFO event source mappings: at most 10 per batch and no batching window.
        assert int(event.get("BatchSize", 10)) <= 10
        assert "MaximumBatchingWindowInSeconds" not in event


def test_timers_queue_is_standard_with_a_dlq_and_outlasts_its_consumer(template: dict[str, Any]) -> None:
    queue = template["Resources"]["TimersQueue"]["Properties"]
    # Only a standard queue delays one message (DelaySeconds per message); FIFO delays only whole queues.
    assert queue.get("FifoQueue", False) is False
    _assert_redrives_to(template, "TimersQueue", "TimersDeadLetterQueue", fifo=False)

    assert _consumers(template, "TimersQueue") == ["ProcessJobFunction"]
    timeout = int(_function_property(template, "ProcessJobFunction", "Timeout"))
    assert int(queue["VisibilityTimeout"]) >= timeout


def test_functions_find_both_queues_in_their_environment(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["JOBS_QUEUE_URL"] == {"Ref": "JobsQueue"}
    assert variables["TIMERS_QUEUE_URL"] == {"Ref": "TimersQueue"}
    assert variables["WEBHOOK_DELIVERY_QUEUE_URL"] == {"Ref": "WebhookDeliveryQueue"}


def test_webhook_deliveries_retry_on_their_queue_and_end_in_an_alarmed_dlq_after_the_last_attempt(
    template: dict[str, Any],
) -> None:
    from crosslist.webhooks.delivery import MAX_ATTEMPTS, RETRY_SECONDS
    from crosslist.webhooks.queue import MAX_VISIBILITY_SECONDS

    queue = template["Resources"]["WebhookDeliveryQueue"]["Properties"]
    assert queue.get("FifoQueue", False) is False  # one user's slow endpoint holds up nobody's deliveries
    _assert_redrives_to(template, "WebhookDeliveryQueue", "WebhookDeliveryDeadLetterQueue", fifo=False)
    # Each attempt is one receive: the message reaches the DLQ after the last one, not before.
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) == MAX_ATTEMPTS == len(RETRY_SECONDS) + 1
    assert max(RETRY_SECONDS) * 1.1 <= MAX_VISIBILITY_SECONDS  # jittered, still within SQS's 12 hours
    assert int(queue["MessageRetentionPeriod"]) > 2 * sum(RETRY_SECONDS)

    assert _consumers(template, "WebhookDeliveryQueue") == ["DeliverWebhooksFunction"]
    (source,) = _events(template, "DeliverWebhooksFunction", "SQS")
    assert "ReportBatchItemFailures" in source["FunctionResponseTypes"]
    assert int(source["BatchSize"]) <= 10
    timeout = int(_function_property(template, "DeliverWebhooksFunction", "Timeout"))
    assert timeout <= int(queue["VisibilityTimeout"])
    assert _grants(template, "DeliverWebhooksFunction", "sqs:ChangeMessageVisibility", "WebhookDeliveryQueue")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_documents(template: dict[str, Any], function_id: str) -> list[Any]:
    properties = template["Resources"][function_id]["Properties"]
    assert "Role" not in properties, f"{function_id}: an external role hides its permissions"
    policies = properties.get("Policies", [])
    global_policies = template.get("Globals", {}).get("Function", {}).get("Policies", [])
    return [*_as_list(global_policies), *_as_list(policies)]


@pytest.mark.parametrize("function_id", WEBSOCKET_FUNCTIONS)
def test_websocket_functions_cannot_read_the_database_secret(template: dict[str, Any], function_id: str) -> None:
    policies = _policy_documents(template, function_id)
    assert "DatabaseSecretArn" not in set(_references(policies))
    text = json.dumps(policies)
    # No managed or wildcard Secrets Manager access either.
    assert "SecretsManagerReadWrite" not in text
    assert not re.search(r'"secretsmanager:\*"|"\*"', text), text


def test_database_secret_check_sees_a_function_that_has_it(template: dict[str, Any]) -> None:
    # Guards the check above against going blind (e.g. the policy shape changing).
    assert "DatabaseSecretArn" in set(_references(_policy_documents(template, "ProcessJobFunction")))


def test_manage_connections_is_scoped_to_this_api(template: dict[str, Any]) -> None:
    granted = []
    for function_id in _resources(template, "AWS::Serverless::Function"):
        for policy in _policy_documents(template, function_id):
            if not isinstance(policy, dict):
                continue
            for statement in policy.get("Statement", []):
                if "execute-api:ManageConnections" not in _as_list(statement["Action"]):
                    continue
                granted.append(function_id)
                for resource in _as_list(statement["Resource"]):
                    arn = resource["Fn::Sub"]
                    assert arn.startswith("arn:${AWS::Partition}:execute-api:"), arn
                    assert ":${WebSocketApi}/${StageName}/" in arn, arn
    # oauth_refresh tells the user's tabs when an account must be connected again; ws_connect closes a
    # user's oldest connections past the cap; the sweeper tells the events a Lambda left undispatched.
    assert sorted(granted) == [
        "OAuthRefreshFunction",
        "ProcessJobFunction",
        "SweeperFunction",
        "WsConnectFunction",
        "WsMessageFunction",
    ]


def test_ws_connect_may_tell_and_close_connections_and_nothing_else_at_api_gateway(template: dict[str, Any]) -> None:
    resources = [
        resource["Fn::Sub"]
        for policy in _policy_documents(template, "WsConnectFunction")
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        if "execute-api:ManageConnections" in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    ]
    assert sorted(arn.rpartition("}/")[2] for arn in resources) == ["DELETE/@connections/*", "POST/@connections/*"]


def _sent_queues(template: dict[str, Any], function_id: str) -> set[str]:
    queues: set[str] = set()
    for policy in _policy_documents(template, function_id):
        if isinstance(policy, dict) and "SQSSendMessagePolicy" in policy:
            queues.add(_single_reference(policy["SQSSendMessagePolicy"], f"{function_id}.SQSSendMessagePolicy"))
    return queues


def test_each_function_sends_to_the_queues_it_needs_and_no_others(template: dict[str, Any]) -> None:
    functions = _resources(template, "AWS::Serverless::Function")
    assert {function_id: _sent_queues(template, function_id) for function_id in functions} == EXPECTED_QUEUE_SENDERS


def _grants(template: dict[str, Any], function_id: str, action: str, queue_id: str) -> bool:
    """Whether one of the function's policies allows `action` on the queue (a poller template or a statement)."""
    for policy in _policy_documents(template, function_id):
        if not isinstance(policy, dict):
            continue
        if "SQSPollerPolicy" in policy and queue_id in set(_references(policy["SQSPollerPolicy"])):
            return True
        for statement in policy.get("Statement", []):
            actions = _as_list(statement.get("Action", []))
            allowed = statement.get("Effect") == "Allow" and (action in actions or "sqs:*" in actions)
            if allowed and queue_id in set(_references(statement.get("Resource"))):
                return True
    return False


def test_process_job_may_bring_a_failed_wake_up_back_sooner(template: dict[str, Any]) -> None:
    # On an error, process_job shortens its message's visibility (JobQueue.retry_in) so the lane's
    # group is not held for the whole visibility timeout.
    assert _grants(template, "ProcessJobFunction", "sqs:ChangeMessageVisibility", "JobsQueue")


# --------------------------------------------------------------------- sample events


def _event_sources(template: dict[str, Any], function_id: str) -> list[str]:
    """Why each sample event fits (or not) one of the function's event sources."""
    sources = []
    for api_event in _events(template, function_id, "HttpApi"):
        sources.append(f"HttpApi {api_event['Method'].upper()} {api_event['Path']}")
    for sqs in _events(template, function_id, "SQS"):
        queue_id = _single_reference(sqs["Queue"], f"{function_id} SQS event")
        fifo = template["Resources"][queue_id]["Properties"].get("FifoQueue", False) is True
        sources.append(f"SQS {queue_id} {'fifo' if fifo else 'standard'}")
    for schedule in _events(template, function_id, "ScheduleV2"):
        sources.append(f"ScheduleV2 {schedule.get('Input', '{}')}")
    for route_key, target in _websocket_routes(template).items():
        if target == function_id:
            sources.append(f"WebSocket {route_key}")
    for resource_id, resource in template["Resources"].items():
        if str(resource.get("Type", "")).startswith("Custom::"):
            token = resource["Properties"]["ServiceToken"]
            if function_id in {str(name).partition(".")[0] for name in _references(token)}:
                sources.append(f"CustomResource {resource_id}")
    return sources


def _event_fits(event: Any, source: str) -> bool:
    kind, _, detail = source.partition(" ")
    if kind == "HttpApi":
        return (
            isinstance(event, dict)
            and event.get("version") == "2.0"
            and event.get("routeKey") == detail
            and event.get("requestContext", {}).get("routeKey") == detail
        )
    if kind == "SQS":
        queue_id, _, queue_kind = detail.partition(" ")
        fifo = queue_kind == "fifo"
        records = event.get("Records") if isinstance(event, dict) else None
        if not isinstance(records, list) or not records:
            return False
        return all(
            record.get("eventSource") == "aws:sqs"
            # CloudFormation names a queue <stack>-<logical id>-<suffix>[.fifo]
            and f"-{queue_id}-" in str(record.get("eventSourceARN", ""))
            and str(record.get("eventSourceARN", "")).endswith(".fifo") is fifo
            and ("MessageGroupId" in record.get("attributes", {})) is fifo
            for record in records
        )
    if kind == "ScheduleV2":
        return bool(event == json.loads(detail))
    if kind == "WebSocket":
        context = event.get("requestContext", {}) if isinstance(event, dict) else {}
        return bool(context.get("routeKey") == detail and context.get("connectionId"))
    if kind == "CustomResource":
        return (
            isinstance(event, dict)
            and event.get("RequestType") in {"Create", "Update", "Delete"}
            and event.get("LogicalResourceId") == detail
            and all(event.get(key) for key in ("ResponseURL", "StackId", "RequestId", "ResourceType"))
        )
    raise AssertionError(f"unknown event source {source}")


def test_every_function_has_a_sample_event_that_fits_it(template: dict[str, Any]) -> None:
    problems = []
    for function_id, function in _resources(template, "AWS::Serverless::Function").items():
        name = Path(str(function["Properties"]["CodeUri"])).name
        sample = REPO / "events" / f"{name}.json"
        if not sample.is_file():
            problems.append(f"{function_id}: no events/{name}.json")
            continue
        event = json.loads(sample.read_text(encoding="utf-8"))
        sources = _event_sources(template, function_id)
        if not sources:
            problems.append(f"{function_id}: has no event source")
        elif not any(_event_fits(event, source) for source in sources):
            problems.append(f"{function_id}: events/{name}.json fits none of {sources}")
    assert problems == []


def test_a_call_left_unsent_is_given_up_only_once_its_sender_cannot_be_running(template: dict[str, Any]) -> None:
    # A timer's wake-up may run beside the invocation that committed a call and is still sending it.
    from crosslist.jobs.engine import SENDER_LIFETIME_SECONDS

    assert int(_function_property(template, "ProcessJobFunction", "Timeout")) < SENDER_LIFETIME_SECONDS


def test_a_wake_up_starts_no_turn_its_call_could_outlast(template: dict[str, Any]) -> None:
    # A turn may perform an eBay or Etsy call (a bulk call's reply then applied to 25 jobs) inside the invocation.
    from crosslist.jobs.engine import MAX_HTTP_SECONDS, WAKE_BUDGET_SECONDS

    timeout = int(_function_property(template, "ProcessJobFunction", "Timeout"))
    assert timeout > WAKE_BUDGET_SECONDS + MAX_HTTP_SECONDS
