"""Deploying for real: template.yaml is wired for both database profiles, its alarms, its dashboard and what a
frontend needs (test_template.py lints deploy/database.yaml beside it).

- TLS to PostgreSQL cannot be turned off in AWS: no function's environment can carry the development switch.
- "All in AWS": only the functions that use PostgreSQL join the VPC (never the WebSocket handlers), and
  deploy/database.yaml's outputs are exactly what template.yaml asks for.
- Operable: every function's errors and throttles, the DLQs and the sweeper's rescues raise an alarm that
  notifies one topic; the sweeper's alarms watch metrics its handler really emits; the dashboard shows them.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from crosslist import runtime
from crosslist.jobs.sweeper import SweepReport
from devstack.lambdas import LambdaContext, load_handler
from devstack.template import load_template
from tests.integration.test_template import _references, _resources

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
DATABASE_TEMPLATE = REPO / "deploy" / "database.yaml"
WEBSOCKET_FUNCTIONS = {"WsConnectFunction", "WsMessageFunction"}
# A Sub variable: a name (a pseudo parameter with its ::) and an optional attribute.
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z0-9.]+))?\}")
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def database() -> dict[str, Any]:
    return load_template(DATABASE_TEMPLATE)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return _resources(template, "AWS::Serverless::Function")


def _uses_postgresql(function: dict[str, Any]) -> bool:
    """Whether the function may read the database's URL (the only way to PostgreSQL)."""
    return "DatabaseSecretArn" in set(_references(function["Properties"].get("Policies", [])))


# --------------------------------------------------------------------- TLS to PostgreSQL


def _environments(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every environment a deployed function gets: the Globals' and each function's own."""
    found = {"Globals": template["Globals"]["Function"].get("Environment", {}).get("Variables", {})}
    for function_id, function in _functions(template).items():
        found[function_id] = function["Properties"].get("Environment", {}).get("Variables", {})
    return found


def test_no_deployed_function_can_be_told_to_talk_to_postgresql_in_clear_text(template: dict[str, Any]) -> None:
    from crosslist.db.tls import PLAINTEXT_SETTING

    for where, variables in _environments(template).items():
        # Not the development switch, nor a URL (which could carry sslmode): only the secret's ARN.
        assert PLAINTEXT_SETTING not in variables, where
        assert "DATABASE_URL" not in variables, where
    for path in (TEMPLATE, DATABASE_TEMPLATE):
        assert "sslmode" not in path.read_text(encoding="utf-8").lower(), path


def test_the_functions_that_use_postgresql_may_read_the_operators_ca_bundle(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DATABASE_CA_SECRET_ARN"] == {"Ref": "DatabaseCaSecretArn"}
    assert template["Conditions"]["HasDatabaseCa"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DatabaseCaSecretArn"}, ""]}]
    }
    readers = set()
    for function_id, function in _functions(template).items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Fn::If" in policy and policy["Fn::If"][0] == "HasDatabaseCa":
                assert policy["Fn::If"][1] == {
                    "AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "DatabaseCaSecretArn"}}
                }
                readers.add(function_id)
    assert readers == {fid for fid, f in _functions(template).items() if _uses_postgresql(f)}
    assert not readers & WEBSOCKET_FUNCTIONS


# --------------------------------------------------------------------- the "All in AWS" profile


def test_only_the_functions_that_use_postgresql_join_the_vpc(template: dict[str, Any]) -> None:
    assert "VpcConfig" not in template["Globals"]["Function"]
    assert template["Conditions"]["InVpc"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "VpcSubnetIds"}]}, ""]}]
    }
    in_vpc = set()
    for function_id, function in _functions(template).items():
        config = function["Properties"].get("VpcConfig")
        if config is None:
            continue
        # In the VPC only when one is given: the "Bring your own PostgreSQL" profile stays outside any.
        assert config == {
            "Fn::If": [
                "InVpc",
                {"SubnetIds": {"Ref": "VpcSubnetIds"}, "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"}},
                {"Ref": "AWS::NoValue"},
            ]
        }, function_id
        in_vpc.add(function_id)
    uses_postgresql = {fid for fid, f in _functions(template).items() if _uses_postgresql(f)}
    assert in_vpc == uses_postgresql
    assert "MigrationFunction" in in_vpc
    # The WebSocket handlers are on the user's path and never use PostgreSQL: no VPC, no NAT in their way.
    assert not in_vpc & WEBSOCKET_FUNCTIONS
    assert len(in_vpc) >= 7, in_vpc


def test_subnets_and_security_groups_are_given_together(template: dict[str, Any]) -> None:
    rules = template["Rules"]
    pairs = {
        (
            rule["RuleCondition"]["Fn::Not"][0]["Fn::EachMemberEquals"][0]["Ref"],
            rule["Assertions"][0]["Assert"]["Fn::Not"][0]["Fn::EachMemberEquals"][0]["Ref"],
        )
        for name, rule in rules.items()
        if name.startswith("Vpc")
    }
    assert pairs == {("VpcSubnetIds", "VpcSecurityGroupIds"), ("VpcSecurityGroupIds", "VpcSubnetIds")}


def test_the_database_stacks_outputs_are_the_parameters_template_yaml_asks_for(
    template: dict[str, Any], database: dict[str, Any]
) -> None:
    asked = {"DatabaseSecretArn", "VpcSubnetIds", "VpcSecurityGroupIds"}
    assert asked <= set(database["Outputs"]) & set(template["Parameters"])
    assert database["Outputs"]["DatabaseSecretArn"]["Value"] == {"Ref": "DatabaseUrlSecret"}
    assert database["Outputs"]["VpcSecurityGroupIds"]["Value"] == {"Ref": "FunctionSecurityGroup"}
    assert database["Outputs"]["VpcSubnetIds"]["Value"] == {
        "Fn::Join": [",", [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]]
    }


def test_the_database_pauses_when_idle_and_takes_only_tls(database: dict[str, Any]) -> None:
    resources = database["Resources"]
    cluster = resources["DatabaseCluster"]
    assert cluster["DeletionPolicy"] == "Snapshot"
    properties = cluster["Properties"]
    assert properties["Engine"] == "aurora-postgresql"
    scaling = properties["ServerlessV2ScalingConfiguration"]
    # Paused when idle (0 ACU), except behind RDS Proxy, with which Aurora does not auto-pause.
    assert scaling["MinCapacity"] == {"Fn::If": ["UseProxy", 0.5, 0]}
    assert scaling["SecondsUntilAutoPause"] == {
        "Fn::If": ["UseProxy", {"Ref": "AWS::NoValue"}, {"Ref": "SecondsUntilAutoPause"}]
    }
    assert 300 <= int(database["Parameters"]["SecondsUntilAutoPause"]["Default"]) <= 86400
    assert properties["StorageEncrypted"] is True
    assert resources["DatabaseParameters"]["Properties"]["Parameters"] == {"rds.force_ssl": "1"}
    (instance,) = _resources(database, "AWS::RDS::DBInstance").values()
    assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
    assert instance["Properties"]["PubliclyAccessible"] is False


def test_the_network_is_two_private_subnets_in_two_zones_and_one_nat(database: dict[str, Any]) -> None:
    resources = database["Resources"]
    assert len(_resources(database, "AWS::EC2::NatGateway")) == 1
    zones = [resources[s]["Properties"]["AvailabilityZone"] for s in ("PrivateSubnetA", "PrivateSubnetB")]
    assert zones == [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, {"Fn::Select": [1, {"Fn::GetAZs": ""}]}]
    assert resources["DatabaseSubnetGroup"]["Properties"]["SubnetIds"] == [
        {"Ref": "PrivateSubnetA"},
        {"Ref": "PrivateSubnetB"},
    ]
    assert resources["PrivateDefaultRoute"]["Properties"]["NatGatewayId"] == {"Ref": "NatGateway"}
    # DynamoDB through a (free) gateway endpoint rather than the NAT's per-GB charge.
    endpoint = resources["DynamoDbEndpoint"]["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["RouteTableIds"] == [{"Ref": "PrivateRouteTable"}]
    # Only the functions (and the proxy) reach PostgreSQL.
    ingress = resources["DatabaseSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [rule["SourceSecurityGroupId"] for rule in ingress] == [{"Ref": "FunctionSecurityGroup"}]
    for subnet in ("PrivateSubnetA", "PrivateSubnetB", "PublicSubnet"):
        assert "MapPublicIpOnLaunch" not in resources[subnet]["Properties"]


def test_the_proxy_is_optional_and_its_url_replaces_the_clusters(database: dict[str, Any]) -> None:
    resources = database["Resources"]
    assert database["Conditions"]["UseProxy"] == {"Fn::Equals": [{"Ref": "EnableProxy"}, "true"]}
    assert database["Parameters"]["EnableProxy"]["Default"] == "false"
    proxy_parts = {rid for rid, r in resources.items() if "Proxy" in rid}
    assert proxy_parts == {
        "ProxyRole",
        "ProxySecurityGroup",
        "DatabaseFromProxy",
        "DatabaseProxy",
        "DatabaseProxyTarget",
    }
    assert all(resources[rid].get("Condition") == "UseProxy" for rid in proxy_parts)
    assert resources["DatabaseProxy"]["Properties"]["RequireTLS"] is True
    text, variables = resources["DatabaseUrlSecret"]["Properties"]["SecretString"]["Fn::Sub"]
    assert text.startswith("postgresql+pg8000://{{resolve:secretsmanager:${CredentialsSecret}:SecretString:username}}:")
    assert text.endswith("@${Host}:5432/crosslist")
    assert variables["Host"] == {
        "Fn::If": [
            "UseProxy",
            {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]},
            {"Fn::GetAtt": ["DatabaseCluster", "Endpoint.Address"]},
        ]
    }
    # The generated password goes into that URL as is: letters and digits only.
    assert resources["CredentialsSecret"]["Properties"]["GenerateSecretString"]["ExcludePunctuation"] is True


# --------------------------------------------------------------------- alarms


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {aid: a["Properties"] for aid, a in _resources(template, "AWS::CloudWatch::Alarm").items()}


def _alarmed(template: dict[str, Any], namespace: Any, metric: str) -> dict[str, Any]:
    """The value of each alarm's single dimension, for the alarms on `metric`."""
    found = {}
    for alarm_id, alarm in _alarms(template).items():
        if alarm["Namespace"] == namespace and alarm["MetricName"] == metric:
            (dimension,) = alarm["Dimensions"]
            found[alarm_id] = dimension["Value"]
    return found


def test_every_alarm_notifies_the_alarm_topic(template: dict[str, Any]) -> None:
    for alarm_id, alarm in _alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], alarm_id
        assert alarm["TreatMissingData"] == "notBreaching", alarm_id  # quiet while nothing runs
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_raises_an_alarm_on_its_errors_and_throttles(template: dict[str, Any], metric: str) -> None:
    alarmed = _alarmed(template, "AWS/Lambda", metric)
    assert sorted(value["Ref"] for value in alarmed.values()) == sorted(_functions(template))
    for alarm_id in alarmed:
        alarm = _alarms(template)[alarm_id]
        assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "Sum",
            "GreaterThanThreshold",
            0,
        ), alarm_id
    assert "MigrationFunction" in {value["Ref"] for value in alarmed.values()}


def test_the_sweepers_rescues_raise_an_alarm_on_metrics_its_handler_emits(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = load_handler(REPO / "functions" / "sweeper")

    class Rescuing:
        def sweep(self) -> SweepReport:
            return SweepReport(overdue_lanes=2, unqueued_jobs=1)

    monkeypatch.setattr(runtime, "sweeper", Rescuing)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    sweep({"schedule": "sweep"}, LambdaContext("sweeper"))
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (directive,) = [d for document in emitted for d in document["_aws"]["CloudWatchMetrics"]]
    names = {metric["Name"] for metric in directive["Metrics"]}
    (dimensions,) = directive["Dimensions"]

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for metric in ("OverdueLanesWoken", "UnqueuedJobsWoken"):
        assert metric in names
        alarmed = _alarmed(template, variables["POWERTOOLS_METRICS_NAMESPACE"], metric)
        assert len(alarmed) == 1, metric
        # The dimension the handler sets (the service) with the value the template gives it.
        (alarm,) = (_alarms(template)[alarm_id] for alarm_id in alarmed)
        assert alarm["Dimensions"] == [
            {"Name": name, "Value": variables["POWERTOOLS_SERVICE_NAME"]} for name in dimensions
        ]
        assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "Sum",
            "GreaterThanThreshold",
            0,
        )


def test_the_metrics_namespace_is_the_stacks_own(template: dict[str, Any]) -> None:
    # Two stacks in one account and region (staging, production) never set off each other's alarms.
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == {"Fn::Sub": "Crosslist/${AWS::StackName}"}


def test_every_dead_letter_queue_raises_an_alarm(template: dict[str, Any]) -> None:
    alarmed = _alarmed(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert sorted(value["Fn::GetAtt"][0] for value in alarmed.values()) == [
        "JobsDeadLetterQueue",
        "TimersDeadLetterQueue",
        "WebhookDeliveryDeadLetterQueue",
    ]


# --------------------------------------------------------------------- dashboard and outputs


def _dashboard(template: dict[str, Any]) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The dashboard's body as JSON (variables as placeholders), and the variables it uses (name, attribute)."""
    (dashboard,) = _resources(template, "AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str)
    variables = set(_SUB_VARIABLE.findall(text))
    body = json.loads(_SUB_VARIABLE.sub(lambda m: f"<{m.group(1)}{'.' + m.group(2) if m.group(2) else ''}>", text))
    return body, variables


def test_the_dashboard_shows_every_alarm_and_every_functions_errors(template: dict[str, Any]) -> None:
    body, variables = _dashboard(template)
    known = set(template["Resources"]) | set(template["Parameters"]) | PSEUDO_PARAMETERS
    assert {name for name, _ in variables} <= known
    widgets = body["widgets"]
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(f"<{a}.Arn>" for a in _alarms(template))
    (errors,) = [w for w in widgets if w["properties"].get("title") == "Function errors"]
    shown = {row[3] for row in errors["properties"]["metrics"]}
    assert shown == {f"<{function_id}>" for function_id in _functions(template)}
    titles = " ".join(str(w["properties"].get("title", "")) for w in widgets)
    for topic in ("throttles", "queues", "Dead-letter", "Sweeper", "HTTP API", "WebSocket API"):
        assert topic in titles, topic
    for widget in widgets:  # CloudWatch's grid is 24 wide
        assert widget["x"] + widget["width"] <= 24, widget


def test_the_outputs_give_a_frontend_and_an_operator_what_they_need(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["HttpApiUrl"]["Value"]["Fn::Sub"].startswith("https://${HttpApi}.")
    assert outputs["WebSocketUrl"]["Value"]["Fn::Sub"].startswith("wss://${WebSocketApi}.")
    # The callback URLs registered with eBay and Etsy are the route the marketplaces function serves.
    events = template["Resources"]["MarketplacesFunction"]["Properties"]["Events"]
    assert events["MarketplaceCallback"]["Properties"]["Path"] == "/marketplaces/{marketplace}/callback"
    for marketplace in ("ebay", "etsy"):
        url = outputs[f"{marketplace.capitalize()}CallbackUrl"]["Value"]["Fn::Sub"]
        assert (
            url
            == f"https://${{HttpApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/marketplaces/{marketplace}/callback"
        )
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    assert "Dashboard" in set(_references(outputs["DashboardUrl"]["Value"]))


# --------------------------------------------------------------------- samconfig.toml


def test_samconfig_holds_safe_defaults_and_nothing_of_any_account() -> None:
    text = (REPO / "samconfig.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["confirm_changeset"] is True
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    # Nothing an account owns: no account id, ARN, bucket, region, profile nor parameter value.
    settings = {
        name: value
        for environment in config.values()
        if isinstance(environment, dict)
        for command in environment.values()
        for name, value in command.get("parameters", {}).items()
    }
    assert not {"region", "profile", "s3_bucket", "parameter_overrides", "image_repository"} & set(settings)
    assert not re.search(r"\b\d{12}\b|arn:aws", text)
    # Its copy with your answers is never committed.
    assert "samconfig.local.toml" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
