"""WebSocket $connect / $disconnect: register the user's connection (DynamoDB only, no PostgreSQL)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.errors import Unauthorized
from crosslist.jobs.queue import PLUGIN_MARKETPLACES
from crosslist.realtime.sessions import close_connection, open_connection

logger = Logger()


@event_source(data_class=APIGatewayWebSocketEvent)
@logger.inject_lambda_context
def lambda_handler(event: APIGatewayWebSocketEvent, context: LambdaContext) -> dict[str, Any]:
    connection_id = event.request_context.connection_id
    if event.request_context.route_key == "$disconnect":
        lost = close_connection(connection_id, runtime.connections(), runtime.commands(), runtime.wake_lane)
        logger.info("disconnected", extra={"connection_id": connection_id, "commands_lost": lost})
        return {"statusCode": 200}
    token = (event.query_string_parameters or {}).get("token")
    try:
        user_id = open_connection(
            connection_id,
            token,
            runtime.token_verifier(),
            runtime.connections(),
            commands=runtime.commands(),
            wake=runtime.wake_lane,
            gateway=runtime.gateway,  # its client is made only to close a user's extra connections
        )
    except Unauthorized as refused:
        logger.info("connection refused", extra={"reason": refused.message})
        return {"statusCode": 401, "body": refused.message}
    logger.info("connected", extra={"user_id": user_id, "connection_id": connection_id})
    try:  # the new tab gets its user's active jobs (jobs.active), and jobs waiting for the extension go on
        runtime.job_queue().connected(user_id, connection_id, PLUGIN_MARKETPLACES)
    except Exception:
        logger.exception("active jobs not requested for the new connection")
    return {"statusCode": 200}
