"""Sync rules: per user, marketplace and kind, when the scheduler queues a sync or an orders import.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 22:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A user without a row has the defaults (crosslist.sync_rules); the scheduler writes the row when it
    # first runs the rule, a PUT /sync-rules when the user changes it.
    op.create_table(
        "sync_rules",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("marketplace", sa.String(20), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        # NULL: the kind's default, which follows the code if it changes.
        sa.Column("interval_minutes", sa.Integer(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", postgresql.JSONB(), nullable=True),
        sa.Column("last_job_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('listings', 'orders')", name="ck_sync_rules_kind"),
        sa.CheckConstraint("interval_minutes IS NULL OR interval_minutes >= 5", name="ck_sync_rules_min_interval"),
    )


def downgrade() -> None:
    op.drop_table("sync_rules")
