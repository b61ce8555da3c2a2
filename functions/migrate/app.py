"""Brings PostgreSQL to the code's schema: at every deploy (the DatabaseSchema custom resource), or by hand.

CloudFormation's request is answered here, always (SUCCESS with the revision reached, or FAILED with the reason);
any other event is a run by hand (`make migrate`, `sam remote invoke MigrationFunction`), which returns what it
did or fails with the reason.
"""

import time
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.cloudformation import ANSWER_RESERVE_SECONDS, CustomResourceRequest, answer_custom_resource
from crosslist.db.migrate import MigrationOutcome, migrate_to_head

logger = Logger()

# migrations/ of the repository, which `sam build` copies in (functions/migrate/migrations links to it).
SCRIPTS = Path(__file__).resolve().parent / "migrations"
# The one database schema of the stack: the same id for every Create, Update and Delete.
PHYSICAL_RESOURCE_ID = "crosslist-database-schema"
# DatabaseSchema's property naming this function's version (template.yaml).
VERSION_PROPERTY = "MigrationFunctionVersion"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The run must end with time left to answer CloudFormation before the function's timeout.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - ANSWER_RESERVE_SECONDS
    request = CustomResourceRequest.from_event(event)
    if request is None:
        return migrate(deadline).as_dict()
    answer = answer_custom_resource(
        request,
        lambda: migrate(deadline).as_data(),
        physical_resource_id=PHYSICAL_RESOURCE_ID,
        # A rollback leaves the schema migrated: the previous release must run on it (migrations are backward
        # compatible), and its code would refuse a database ahead of it.
        version_property=VERSION_PROPERTY,
        log_stream=context.log_stream_name,
    )
    return {"Status": answer.status, "Reason": answer.reason, "Data": dict(answer.data)}


def migrate(deadline: float) -> MigrationOutcome:
    return migrate_to_head(runtime.database_url, SCRIPTS, deadline)
