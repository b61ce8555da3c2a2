"""The devstack's WebSocket gateway throttles as template.yaml tells API Gateway to."""

from __future__ import annotations

from devstack.gateway import TokenBucket, stage_throttling
from devstack.template import load_template
from tests.conftest import REPO


def test_the_stage_and_route_limits_come_from_the_template() -> None:
    template = load_template(REPO / "template.yaml")
    stage = template["Resources"]["WebSocketStage"]
    throttling = stage_throttling(stage, template["Parameters"])
    parameters = template["Parameters"]
    assert throttling.default == (
        float(parameters["WebSocketThrottlingRateLimit"]["Default"]),
        int(parameters["WebSocketThrottlingBurstLimit"]["Default"]),
    )
    assert throttling.routes == {"plugin_status": (100.0, 200), "$default": (50.0, 100)}


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=5, clock=lambda: now[0])
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    now[0] += 0.25  # 2.5 tokens earned
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 5
