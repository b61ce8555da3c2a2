"""Scheduled: find eBay and Etsy credentials close to expiry (their refresh lands with the eBay/Etsy clients)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.auth.credentials import credentials_due_for_refresh

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    due = credentials_due_for_refresh(runtime.sessions())
    logger.info("credentials due for refresh", extra={"count": len(due)})
    return {"due_for_refresh": len(due)}
