"""WebSocket messages ($default and plugin_result): results of plugin commands, relayed by the web app."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.realtime import sessions  # noqa: F401  (every message needs it: loaded at init)

logger = Logger()


@event_source(data_class=APIGatewayWebSocketEvent)
@logger.inject_lambda_context
def lambda_handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    connection_id = event.request_context.connection_id
    error = runtime.plugin_results().receive(connection_id, event.body)
    if error is not None:
        logger.info("message rejected", extra={"connection_id": connection_id, "code": error["code"]})
    return {"statusCode": 200}
