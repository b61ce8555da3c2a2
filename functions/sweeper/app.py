"""Scheduled: the sweeper (every minute) moves stranded jobs on; the sync schedule (every 30 minutes by
default) queues each connected user's Vinted sync and orders import."""

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
    if schedule == "sweep":
        report = runtime.sweeper().sweep()
        metrics.add_metric(name="OverdueLanesWoken", unit=MetricUnit.Count, value=report.overdue_lanes)
        metrics.add_metric(name="UnqueuedJobsWoken", unit=MetricUnit.Count, value=report.unqueued_jobs)
        return {"overdue_lanes": report.overdue_lanes, "unqueued_jobs": report.unqueued_jobs}
    if schedule == "sync":
        scheduled = runtime.scheduled_sync().run(runtime.settings().sync_interval_minutes)
        metrics.add_metric(name="ScheduledJobs", unit=MetricUnit.Count, value=scheduled.created)
        if scheduled.failed:
            metrics.add_metric(name="ScheduledJobsFailed", unit=MetricUnit.Count, value=scheduled.failed)
        return {"users": scheduled.users, "scheduled_jobs": scheduled.created, "skipped": scheduled.skipped}
    raise ValueError(f"unknown schedule {schedule!r}: expected 'sweep' or 'sync'")
