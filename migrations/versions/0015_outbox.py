"""The outbox: domain events stored with their change, delivered after it commits.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 11:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_outbox_undispatched", "outbox", ["created_at"], postgresql_where=sa.text("dispatched_at IS NULL")
    )
    op.create_index(
        "ix_outbox_dispatched_at", "outbox", ["dispatched_at"], postgresql_where=sa.text("dispatched_at IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_table("outbox")
