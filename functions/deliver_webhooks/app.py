"""SQS consumer of WebhookDeliveryQueue: each message is one webhook delivery, POSTed signed to the user's endpoint
(crosslist.webhooks.delivery). A failed attempt is a batch item failure whose message comes back after the next
wait of the retry schedule; after the last one it goes to the dead-letter queue."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.webhooks.delivery import Received

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = [
        Received(
            message_id=str(record["messageId"]),
            receipt_handle=str(record["receiptHandle"]),
            body=str(record.get("body") or ""),
            receive_count=int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1)),
        )
        for record in event.get("Records") or []
    ]
    outcome = runtime.webhook_deliverer().deliver(batch)
    metrics.add_metric(name="WebhooksDelivered", unit=MetricUnit.Count, value=outcome.delivered)
    metrics.add_metric(name="WebhookAttemptsFailed", unit=MetricUnit.Count, value=outcome.retrying + outcome.failed)
    metrics.add_metric(name="WebhooksGivenUp", unit=MetricUnit.Count, value=outcome.failed)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in outcome.failures]}
