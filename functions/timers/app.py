"""TimersQueue consumer: a lane's timer is due, so its wake-up goes to the lane's FIFO group (no database)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.jobs.queue import TimerMessage, forward_timer

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS)


def forward(record: SQSRecord) -> bool:
    timer = TimerMessage.model_validate_json(record.body)
    return forward_timer(timer, runtime.job_queue(), runtime.timer_queue())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=forward, processor=processor, context=context)
