"""What a deployed crosslist costs, for each database profile: per month while idle, and per 1 000 jobs.

An estimate, not a measurement: AWS's list prices (PRICES, with their source and date) applied to what the
templates deploy (their alarms and dashboards are counted in template.yaml) and to what the engine section of
bench/results.json counted per publish (invocations and billed ms, DynamoDB and SQS requests, WebSocket
messages), re-priced for arm64, which the functions run on. Where a quantity is not measured it is a named
constant below, with why it has that value. No free tier is subtracted.

Profiles (README: Deploy to AWS):
- byo: Bring your own PostgreSQL (Neon, Supabase, RDS...): the functions outside any VPC; the database is the
  provider's price, not counted here.
- aws: All in AWS (deploy/database.yaml): a VPC with one NAT gateway, Aurora Serverless v2 that pauses.
- aws_proxy: the same with RDS Proxy, behind which Aurora does not pause.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench.stats import section, table
from devstack.template import load_template

REPO = Path(__file__).resolve().parent.parent
Profile = Literal["byo", "aws", "aws_proxy"]
PROFILES: dict[Profile, str] = {
    "byo": "Bring your own PostgreSQL",
    "aws": "All in AWS",
    "aws_proxy": "All in AWS + RDS Proxy",
}

PRICES_SOURCE = (
    "AWS list prices, us-east-1, on demand, as published in 2025 (Lambda arm64, SQS, DynamoDB on-demand after its"
    " November 2024 cut, API Gateway, Secrets Manager, KMS, CloudWatch, EventBridge Scheduler, X-Ray, VPC NAT"
    " gateway and public IPv4, Aurora Standard Serverless v2, RDS Proxy); first tiers, no free tier. Not re-checked"
    " from this machine (no network): check the pricing pages before you rely on them"
)
HOURS_PER_MONTH = 730
MINUTES_PER_MONTH = HOURS_PER_MONTH * 60


@dataclass(frozen=True)
class Prices:
    lambda_arm_gb_second: float = 0.0000133334
    lambda_request: float = 0.20 / 1e6
    sqs_standard_request: float = 0.40 / 1e6
    sqs_fifo_request: float = 0.50 / 1e6
    dynamodb_read_unit: float = 0.125 / 1e6
    dynamodb_write_unit: float = 0.625 / 1e6
    http_api_request: float = 1.00 / 1e6
    websocket_message: float = 1.00 / 1e6
    websocket_connection_minute: float = 0.25 / 1e6
    secret_month: float = 0.40
    secrets_api_call: float = 0.05 / 10_000
    kms_key_month: float = 1.00
    alarm_month: float = 0.10  # a standard-resolution metric alarm
    dashboard_month: float = 3.00
    custom_metric_month: float = 0.30
    scheduler_invocation: float = 1.00 / 1e6
    xray_trace: float = 5.00 / 1e6
    nat_gateway_hour: float = 0.045
    nat_gateway_gb: float = 0.045
    public_ipv4_hour: float = 0.005
    aurora_acu_hour: float = 0.12  # Aurora Standard (not I/O-Optimized)
    aurora_storage_gb_month: float = 0.10
    aurora_io_request: float = 0.20 / 1e6
    rds_proxy_acu_hour: float = 0.015  # billed on the database's ACUs, at least 8
    vpc_interface_endpoint_hour: float = 0.01  # per endpoint and Availability Zone (the alternative to the NAT)


PRICES = Prices()

# The schedules run whether or not anyone uses crosslist: the sweeper and the scheduler every minute,
# oauth_refresh every 15 minutes (template.yaml).
SCHEDULE_INVOCATIONS = 2 * MINUTES_PER_MONTH + MINUTES_PER_MONTH // 15
# Estimate: an idle tick is one short query or none; 50 ms billed at 512 MB.
IDLE_TICK_BILLED_MS = 50
FUNCTION_MEMORY_MB = 512
# The metrics the schedules publish on every tick: the sweeper's 2, the scheduler's 1, oauth_refresh's 3.
IDLE_CUSTOM_METRICS = 6
# Estimate: Lambda's own long polls of the two queues its SQS triggers read, about 5 at a time per queue, each
# 20 s long, whether or not a message comes (AWS does not publish the number; SQS bills each).
IDLE_POLLS_PER_QUEUE = 5 * 3 * MINUTES_PER_MONTH
# Estimate: the schedules re-read their secrets every 5 minutes (the cache's age): about 30 000 reads a month.
IDLE_SECRET_READS = 30_000
# Estimate: the AWS calls of an idle tick from inside the VPC (Secrets Manager, X-Ray), through the NAT.
IDLE_TICK_NAT_BYTES = 5_000
# Estimate: a small database's Aurora volume.
AURORA_STORAGE_GB = 1.0
# Aurora Serverless v2's smallest size while awake (it pauses at 0 ACU only without a proxy).
AURORA_AWAKE_ACU = 0.5
RDS_PROXY_MINIMUM_ACU = 8
# Estimates per job in the All in AWS profiles: what its functions exchange with AWS's APIs and the marketplaces
# through the NAT gateway (SQS, KMS, the WebSocket management API, eBay/Etsy calls; DynamoDB goes through its free
# gateway endpoint), and the Aurora I/O requests its statements cost (most reads come from Aurora's cache).
NAT_BYTES_PER_JOB = 50_000
AURORA_IO_PER_JOB = 50


@dataclass(frozen=True)
class Stack:
    """What a deployed stack holds that is billed by the month whether or not it is used."""

    alarms: int
    dashboards: int

    @classmethod
    def from_template(cls, path: Path = REPO / "template.yaml") -> Stack:
        resources = load_template(path)["Resources"].values()
        kinds = [str(resource.get("Type")) for resource in resources]
        return cls(alarms=kinds.count("AWS::CloudWatch::Alarm"), dashboards=kinds.count("AWS::CloudWatch::Dashboard"))


def idle_cost_per_month(
    profile: Profile, stack: Stack, prices: Prices = PRICES, *, database_pauses: bool = True
) -> dict[str, float]:
    """$ a month, by line, of a deployed crosslist nobody uses. `database_pauses`: whether nothing connects to
    PostgreSQL while idle, so that Aurora pauses (never behind RDS Proxy)."""
    in_aws = profile != "byo"
    secrets = {"byo": 1, "aws": 3, "aws_proxy": 2}[profile]  # the URL; in AWS also the credentials, and the CA
    idle_gb_s = SCHEDULE_INVOCATIONS * IDLE_TICK_BILLED_MS / 1000 * FUNCTION_MEMORY_MB / 1024
    lines = {
        "KMS key (sealing OAuth tokens)": prices.kms_key_month,
        "Secrets Manager: the URL (+ credentials, CA bundle)": secrets * prices.secret_month
        + IDLE_SECRET_READS * prices.secrets_api_call,
        f"CloudWatch: {stack.alarms} alarms": stack.alarms * prices.alarm_month,
        f"CloudWatch: {stack.dashboards} dashboard": stack.dashboards * prices.dashboard_month,
        f"CloudWatch: {IDLE_CUSTOM_METRICS} metrics the schedules publish": IDLE_CUSTOM_METRICS
        * prices.custom_metric_month,
        "schedules: Lambda, EventBridge Scheduler, X-Ray traces": SCHEDULE_INVOCATIONS
        * (prices.lambda_request + prices.scheduler_invocation + prices.xray_trace)
        + idle_gb_s * prices.lambda_arm_gb_second,
        "SQS: Lambda's long polls of the 2 queues (estimate)": IDLE_POLLS_PER_QUEUE
        * (prices.sqs_fifo_request + prices.sqs_standard_request),
    }
    if in_aws:
        pauses = database_pauses and profile == "aws"
        lines["NAT gateway: hours"] = HOURS_PER_MONTH * prices.nat_gateway_hour
        lines["NAT gateway: its public IPv4 address"] = HOURS_PER_MONTH * prices.public_ipv4_hour
        lines["NAT gateway: the schedules' traffic (estimate)"] = (
            SCHEDULE_INVOCATIONS * IDLE_TICK_NAT_BYTES / 1e9 * prices.nat_gateway_gb
        )
        lines["Aurora: compute (0 when paused)"] = (
            0.0 if pauses else AURORA_AWAKE_ACU * HOURS_PER_MONTH * prices.aurora_acu_hour
        )
        lines[f"Aurora: storage ({AURORA_STORAGE_GB:g} GB, estimate)"] = (
            AURORA_STORAGE_GB * prices.aurora_storage_gb_month
        )
    if profile == "aws_proxy":
        lines[f"RDS Proxy ({RDS_PROXY_MINIMUM_ACU} ACU minimum)"] = (
            RDS_PROXY_MINIMUM_ACU * HOURS_PER_MONTH * prices.rds_proxy_acu_hour
        )
    return lines


def cost_per_1000_jobs(usage: Mapping[str, Any], profile: Profile, prices: Prices = PRICES) -> dict[str, float]:
    """$ per 1 000 publishes, by line, from a usage the engine section counted (bench/results.json's
    engine.billed_pacing_on.usage), priced for arm64. Aurora's compute is billed by the hour it is awake, not
    by the job: see aurora_awake_per_hour."""
    per_job = 1000 / float(usage["publishes"])
    functions = usage["functions"]

    def lambda_cost(name: str) -> float:
        use = functions.get(name, {})
        gb_s = float(use.get("billed_ms", 0)) / 1000 * float(use.get("memory_mb", 0)) / 1024
        return float(use.get("invocations", 0)) * prices.lambda_request + gb_s * prices.lambda_arm_gb_second

    dynamodb, sqs, websocket = usage["dynamodb"], usage["sqs"], usage["websocket"]
    lines = {
        "Lambda: process_job, ws_message": lambda_cost("process_job") + lambda_cost("ws_message"),
        "Lambda + HTTP API: create_job (POST /jobs)": lambda_cost("create_job")
        + float(functions.get("create_job", {}).get("invocations", 0)) * prices.http_api_request,
        "DynamoDB": float(dynamodb["reads"]) * prices.dynamodb_read_unit
        + float(dynamodb["writes"]) * prices.dynamodb_write_unit,
        "SQS": float(sqs["fifo"]) * prices.sqs_fifo_request + float(sqs["standard"]) * prices.sqs_standard_request,
        "WebSocket API": (float(websocket["messages_in"]) + float(websocket["messages_out"])) * prices.websocket_message
        + float(websocket["connection_minutes"]) * prices.websocket_connection_minute,
    }
    lines = {line: cost * per_job for line, cost in lines.items()}
    if profile != "byo":
        lines["NAT gateway: the jobs' traffic (estimate)"] = 1000 * NAT_BYTES_PER_JOB / 1e9 * prices.nat_gateway_gb
        lines["Aurora: I/O (estimate)"] = 1000 * AURORA_IO_PER_JOB * prices.aurora_io_request
    return lines


def aurora_awake_per_hour(prices: Prices = PRICES) -> float:
    """What Aurora costs for each hour it is awake at its smallest size (jobs running, or not yet paused)."""
    return AURORA_AWAKE_ACU * prices.aurora_acu_hour


def _engine_usage(results: Path) -> tuple[Mapping[str, Any] | None, str]:
    """The engine section's paced usage in bench/results.json, and when it was measured."""
    try:
        document = json.loads(results.read_text())
        usage = document["sections"]["engine"]["billed_pacing_on"]["usage"]
        measured = str(document.get("runs", {}).get("engine", {}).get("generated_at", "?"))
    except (OSError, ValueError, KeyError, TypeError):
        return None, ""
    return (usage, measured) if isinstance(usage, Mapping) else (None, "")


def report(results: Path = REPO / "bench" / "results.json", template: Path = REPO / "template.yaml") -> str:
    stack = Stack.from_template(template)
    idle = {profile: idle_cost_per_month(profile, stack) for profile in PROFILES}
    lines = list(dict.fromkeys(line for costs in idle.values() for line in costs))
    headers = ["$ per month, idle", *PROFILES.values()]
    rows = [[line, *(f"{idle[p][line]:.2f}" if line in idle[p] else "" for p in PROFILES)] for line in lines]
    rows.append(["total", *(f"{sum(idle[p].values()):.2f}" for p in PROFILES)])
    awake = idle_cost_per_month("aws", stack, database_pauses=False)
    out = [
        section("deployed cost (estimates)"),
        textwrap.fill(f"prices: {PRICES_SOURCE}", 116, initial_indent="  ", subsequent_indent="    "),
        table(headers, rows),
        "  Bring your own PostgreSQL: plus your provider's price for the database.",
        textwrap.fill(
            "All in AWS: Aurora pauses only if nothing connects to it while idle; if the schedules kept it awake,"
            f" {sum(awake.values()):.2f} a month. Awake, it costs {aurora_awake_per_hour():.3f} an hour (0.5 ACU);"
            " it pauses SecondsUntilAutoPause after the last connection. Behind RDS Proxy it never pauses.",
            116,
            initial_indent="  ",
            subsequent_indent="  ",
        ),
        textwrap.fill(
            "Rejected: interface VPC endpoints instead of the NAT (SQS, Secrets Manager, KMS in 2 AZs:"
            f" {3 * 2 * HOURS_PER_MONTH * PRICES.vpc_interface_endpoint_hour:.2f} a month, and eBay/Etsy still need"
            " a NAT).",
            116,
            initial_indent="  ",
            subsequent_indent="  ",
        ),
    ]
    usage, measured = _engine_usage(results)
    if usage is None:
        out.append("  per 1 000 jobs: no engine figures in bench/results.json yet (python -m bench --only engine)")
        return "\n".join(out)
    per_job = {profile: cost_per_1000_jobs(usage, profile) for profile in PROFILES}
    lines = list(dict.fromkeys(line for costs in per_job.values() for line in costs))
    rows = [[line, *(f"{per_job[p][line]:.4f}" if line in per_job[p] else "" for p in PROFILES)] for line in lines]
    rows.append(["total", *(f"{sum(per_job[p].values()):.4f}" for p in PROFILES)])
    out += [
        "",
        f"  per 1 000 jobs: 3-photo Vinted publishes, paced, as the engine section counted them ({measured})",
        table(["$ per 1 000 jobs", *PROFILES.values()], rows),
        "  plus, All in AWS, the hours Aurora is awake for them.",
    ]
    return "\n".join(out)
