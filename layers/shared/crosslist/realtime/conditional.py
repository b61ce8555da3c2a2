"""DynamoDB conditional writes: a condition that does not hold is an answer, not an error."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


def update_if(table: Any, **request: Any) -> dict[str, Any] | None:
    """Run `table.update_item(**request)`: the attributes it returns ({} unless ReturnValues asks for
    some), or None when its ConditionExpression did not hold. Any other error is raised."""
    try:
        return dict(table.update_item(**request).get("Attributes", {}))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return None
