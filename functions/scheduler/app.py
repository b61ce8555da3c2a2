"""Scheduled (every minute): queue the sync and orders-import jobs the users' sync rules make due."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("schedule") != "sync_rules":
        raise ValueError(f"unknown schedule {event.get('schedule')!r}: expected 'sync_rules'")
    report = runtime.sync_scheduler().run().as_dict()
    metrics.add_metric(name="SyncRuleJobsQueued", unit=MetricUnit.Count, value=report["queued"])
    if report["failed"]:
        metrics.add_metric(name="SyncRuleJobsFailed", unit=MetricUnit.Count, value=report["failed"])
    return report
