"""Scheduled: refresh eBay and Etsy tokens that expire soon, before a job needs them."""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.auth.credentials import DueCredential
from crosslist.auth.refresh import refresh_due, scheduled_refresh
from crosslist.realtime.messages import reauth_required_message

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = scheduled_refresh(runtime.sessions(), runtime.due_times("tokens"), _refresh, datetime.now(UTC))
    return report if report is not None else {"due_for_refresh": 0}  # none could be due: PostgreSQL left alone


def _refresh(due: list[DueCredential]) -> dict[str, Any]:
    if not due:
        return {"due_for_refresh": 0}
    if not runtime.settings().credentials_key_id:  # the devstack without a KMS key: nothing can be opened
        logger.warning("no CREDENTIALS_KEY_ID: credentials due for refresh are left as they are")
        return {"due_for_refresh": len(due), "not_configured": len(due)}
    report = refresh_due(runtime.credential_store(), due, runtime.token_endpoint)
    for user_id, marketplace in report.reauth_required:  # the user's open tabs ask them to connect again
        runtime.notifier().to_user(user_id, reauth_required_message(marketplace))
    metrics.add_metric(name="TokensRefreshed", unit=MetricUnit.Count, value=report.refreshed)
    metrics.add_metric(name="TokensNeedingReauth", unit=MetricUnit.Count, value=len(report.reauth_required))
    metrics.add_metric(name="TokenRefreshesFailed", unit=MetricUnit.Count, value=report.failed)
    logger.info("tokens refreshed", extra={"due": report.due, "refreshed": report.refreshed})
    return {
        "due_for_refresh": report.due,
        "refreshed": report.refreshed,
        "reauth_required": len(report.reauth_required),
        "failed": report.failed,
        "not_configured": report.not_configured,
    }
