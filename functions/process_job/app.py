"""SQS consumer of both lane queues: each message wakes a lane (one user on one marketplace), which does
what is ready and ends. JobsQueue (FIFO): events and new jobs; TimersQueue: what was due later."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.jobs.queue import SessionMessage, TimerMessage, delay_again, queue_message

logger = Logger()
metrics = Metrics()
fifo_processor = SqsFifoPartialProcessor(skip_group_on_error=True)
timers_processor = BatchProcessor(event_type=EventType.SQS)


def wake(record: SQSRecord) -> str:
    try:
        return _wake(record)
    except Exception:
        # The lane's state is as the last committed turn left it: try again soon, not after the
        # visibility timeout (the lane's other wake-ups wait behind this message).
        runtime.job_queue().retry_in(record.receipt_handle, runtime.settings().retry_after_error_seconds)
        raise


def _wake(record: SQSRecord) -> str:
    message = queue_message.validate_json(record.body)
    if isinstance(message, SessionMessage):
        runtime.session_state().send(message.user_id, message.connection_id)
        return "session_sent"
    outcome = runtime.lane_engine().wake(message.user_id, message.marketplace, message.cause, message.reply)
    metrics.add_metric(name=f"Lane_{outcome.value}", unit=MetricUnit.Count, value=1)
    return outcome.value


def timer(record: SQSRecord) -> str:
    try:
        message = TimerMessage.model_validate_json(record.body)
        if delay_again(message, runtime.timer_queue()):
            return "delayed"
        outcome = runtime.lane_engine().wake(
            message.user_id, message.marketplace, message.wake_cause, message.reply, exclusive=False
        )
    except Exception:
        runtime.timer_queue().retry_in(record.receipt_handle, runtime.settings().retry_after_error_seconds)
        raise
    metrics.add_metric(name=f"Lane_{outcome.value}", unit=MetricUnit.Count, value=1)
    return outcome.value


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records") or [{}]
    if str(records[0].get("eventSourceARN", "")).endswith(".fifo"):
        return process_partial_response(event=event, record_handler=wake, processor=fifo_processor, context=context)
    return process_partial_response(event=event, record_handler=timer, processor=timers_processor, context=context)
