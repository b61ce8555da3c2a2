"""The action catalogue in code (crosslist.marketplaces.ACTION_TYPES) is the one source of its rows.

Every migration run ends by writing the catalogue into marketplace_action_types, so a new action or a
changed setting needs a code change only, never a hand-written data migration.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect
from sqlalchemy.dialects.postgresql import insert

from crosslist.db.models import MarketplaceActionType
from crosslist.marketplaces import ACTION_TYPES


def sync_action_types(connection: Connection) -> int:
    """Insert or update a row per catalogued action; returns how many. Rows of retired actions stay (old
    jobs name them). Does nothing before the table exists (e.g. after a downgrade to base)."""
    if not inspect(connection).has_table(MarketplaceActionType.__tablename__):
        return 0
    rows = [
        {
            "marketplace": action.marketplace,
            "code": action.code,
            "name": action.name,
            "default_priority": action.default_priority,
            "max_attempts": action.max_attempts,
            "timeout_ms": action.timeout_ms,
        }
        for action in ACTION_TYPES
    ]
    statement = insert(MarketplaceActionType).values(rows)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["marketplace", "code"],
            set_={
                column: statement.excluded[column]
                for column in ("name", "default_priority", "max_attempts", "timeout_ms")
            },
        )
    )
    return len(rows)
