"""Jobs can be cancelled: a `cancelled` status, and a request noted on a running job.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_PRODUCT_INDEX = "uq_marketplace_jobs_active_product"


def upgrade() -> None:
    op.execute("ALTER TYPE job_status ADD VALUE IF NOT EXISTS 'cancelled'")
    # A running job stops at its next step boundary, never in the middle of a marketplace call.
    op.add_column("marketplace_jobs", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE marketplace_jobs SET status = 'failed' WHERE status = 'cancelled'")
    op.drop_column("marketplace_jobs", "cancel_requested_at")
    # PostgreSQL cannot drop an enum value: rebuild the type without it (the partial index names the type).
    op.drop_index(ACTIVE_PRODUCT_INDEX, table_name="marketplace_jobs")
    op.execute("ALTER TYPE job_status RENAME TO job_status_with_cancelled")
    op.execute("CREATE TYPE job_status AS ENUM ('pending', 'running', 'completed', 'failed')")
    op.execute("ALTER TABLE marketplace_jobs ALTER COLUMN status TYPE job_status USING status::text::job_status")
    op.execute("DROP TYPE job_status_with_cancelled")
    op.create_index(
        ACTIVE_PRODUCT_INDEX,
        "marketplace_jobs",
        ["user_id", "marketplace", "product_id"],
        unique=True,
        postgresql_where=sa.text("product_id IS NOT NULL AND status IN ('pending', 'running')"),
    )
