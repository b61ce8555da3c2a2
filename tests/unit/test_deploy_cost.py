"""The deployed cost `make bench` prints: what each database profile adds, priced as stated."""

from __future__ import annotations

from typing import Any

import pytest

from bench import deploy_cost
from bench.deploy_cost import PRICES, Stack, cost_per_1000_jobs, idle_cost_per_month

STACK = Stack(alarms=24, dashboards=1)


def _total(lines: dict[str, float]) -> float:
    return round(sum(lines.values()), 2)


def test_all_in_aws_adds_the_nat_gateway_its_address_the_extra_secrets_and_aurora_storage() -> None:
    byo = idle_cost_per_month("byo", STACK)
    aws = idle_cost_per_month("aws", STACK)
    added = {line: round(aws[line] - byo.get(line, 0.0), 4) for line in aws if round(aws[line] - byo.get(line, 0), 4)}
    assert added == {
        "NAT gateway: hours": 32.85,  # 730 h x $0.045
        "NAT gateway: its public IPv4 address": 3.65,  # 730 h x $0.005
        "NAT gateway: the schedules' traffic (estimate)": pytest.approx(0.02, abs=0.01),
        "Secrets Manager: the URL (+ credentials, CA bundle)": 0.80,  # the credentials and the CA bundle
        "Aurora: storage (1 GB, estimate)": 0.10,
    }
    assert aws["Aurora: compute (0 when paused)"] == 0


def test_a_database_kept_awake_costs_half_an_acu_all_month() -> None:
    paused = idle_cost_per_month("aws", STACK)
    awake = idle_cost_per_month("aws", STACK, database_pauses=False)
    assert _total(awake) - _total(paused) == pytest.approx(43.80)  # 0.5 ACU x 730 h x $0.12


def test_rds_proxy_costs_eight_acus_and_keeps_aurora_awake() -> None:
    aws = idle_cost_per_month("aws", STACK)
    proxy = idle_cost_per_month("aws_proxy", STACK)
    assert proxy["RDS Proxy (8 ACU minimum)"] == pytest.approx(87.60)  # 8 x 730 h x $0.015
    assert proxy["Aurora: compute (0 when paused)"] == pytest.approx(43.80)  # no auto-pause behind a proxy
    # One secret fewer: the proxy's certificate is publicly trusted, no CA bundle.
    assert _total(proxy) - _total(aws) == pytest.approx(87.60 + 43.80 - 0.40)


def test_the_stacks_own_monitoring_is_priced_by_what_the_template_holds() -> None:
    byo = idle_cost_per_month("byo", Stack(alarms=10, dashboards=0))
    assert byo["CloudWatch: 10 alarms"] == pytest.approx(1.00)
    assert byo["CloudWatch: 0 dashboard"] == 0
    counted = Stack.from_template()
    assert counted.dashboards == 1
    assert counted.alarms >= 2 * 9 + 2  # errors and throttles of every function, and the two DLQs


def _usage(publishes: int) -> dict[str, Any]:
    return {
        "publishes": publishes,
        "functions": {
            "process_job": {"invocations": 6 * publishes, "billed_ms": 300 * publishes, "memory_mb": 512},
            "ws_message": {"invocations": 4 * publishes, "billed_ms": 100 * publishes, "memory_mb": 512},
            "create_job": {"invocations": publishes, "billed_ms": 100 * publishes, "memory_mb": 512},
        },
        "dynamodb": {"reads": 5 * publishes, "writes": 8 * publishes},
        "sqs": {"fifo": 15 * publishes, "standard": 2 * publishes},
        "websocket": {"messages_in": 4 * publishes, "messages_out": 5 * publishes, "connection_minutes": 0.0},
    }


def test_jobs_are_priced_per_thousand_on_arm64_whatever_the_sample_size() -> None:
    lines = cost_per_1000_jobs(_usage(12), "byo")
    assert lines == cost_per_1000_jobs(_usage(3), "byo")
    # 10 invocations and 0.4 s at 512 MB per job, at arm64's price per GB-second.
    assert lines["Lambda: process_job, ws_message"] == pytest.approx(
        1000 * (10 * PRICES.lambda_request + 0.4 * 0.5 * 0.0000133334)
    )
    assert lines["SQS"] == pytest.approx(1000 * (15 * 0.50 + 2 * 0.40) / 1e6)
    in_aws = cost_per_1000_jobs(_usage(12), "aws")
    assert set(in_aws) - set(lines) == {"NAT gateway: the jobs' traffic (estimate)", "Aurora: I/O (estimate)"}


def test_the_report_prints_every_profile_and_says_its_prices_are_estimates(tmp_path: Any) -> None:
    text = deploy_cost.report(results=tmp_path / "absent.json")
    for name in deploy_cost.PROFILES.values():
        assert name in text
    assert "estimate" in text
    assert "2025" in text
    assert "no engine figures" in text
