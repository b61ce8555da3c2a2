"""SQS FIFO consumer: run each queued job; a failing message holds back only its own group."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.jobs.queue import SessionMessage, queue_message

logger = Logger()
metrics = Metrics()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def run_job(record: SQSRecord, lambda_context: LambdaContext) -> str:
    message = queue_message.validate_json(record.body)
    if isinstance(message, SessionMessage):
        runtime.session_state().send(message.user_id, message.connection_id)
        return "session_sent"
    outcome = runtime.job_runner().run(message.job_id, message.user_id, lambda_context.get_remaining_time_in_millis)
    metrics.add_metric(name=f"Jobs_{outcome.value}", unit=MetricUnit.Count, value=1)
    return outcome.value


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=run_job, processor=processor, context=context)
