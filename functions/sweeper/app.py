"""Scheduled (every minute): the sweeper moves stranded jobs on (wakes lanes whose wake-up was lost) and delivers
the events a Lambda left undispatched."""

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
    schedule = event.get("schedule")
    if schedule != "sweep":
        raise ValueError(f"unknown schedule {schedule!r}: expected 'sweep'")
    report = runtime.sweeper().sweep()
    metrics.add_metric(name="OverdueLanesWoken", unit=MetricUnit.Count, value=report.overdue_lanes)
    metrics.add_metric(name="UnqueuedJobsWoken", unit=MetricUnit.Count, value=report.unqueued_jobs)
    metrics.add_metric(name="UndispatchedEventsDelivered", unit=MetricUnit.Count, value=report.undispatched_events)
    return {"overdue_lanes": report.overdue_lanes, "unqueued_jobs": report.unqueued_jobs}
