"""Lanes: the jobs of one user on one marketplace run one at a time, woken by events instead of waiting in a Lambda.

Jobs can wait (`waiting`: a backoff or a paused lane; `waiting_for_plugin`: no tab can run Vinted
commands) with a reason; leases go, since a lane's row lock orders its wake-ups.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_PRODUCT_INDEX = "uq_marketplace_jobs_active_product"
LANE_QUEUE_INDEX = "ix_marketplace_jobs_lane_queue"


def upgrade() -> None:
    # A value added with ADD VALUE cannot be used in the transaction that adds it (the index below uses
    # both): the type is rebuilt instead, which a transaction allows.
    op.drop_index(ACTIVE_PRODUCT_INDEX, table_name="marketplace_jobs")
    op.execute("ALTER TYPE job_status RENAME TO job_status_before_lanes")
    op.execute(
        "CREATE TYPE job_status AS ENUM"
        " ('pending', 'running', 'waiting', 'waiting_for_plugin', 'completed', 'failed', 'cancelled')"
    )
    op.execute("ALTER TABLE marketplace_jobs ALTER COLUMN status TYPE job_status USING status::text::job_status")
    op.execute("DROP TYPE job_status_before_lanes")
    op.add_column("marketplace_jobs", sa.Column("wait_reason", sa.String(40), nullable=True))
    op.add_column("marketplace_jobs", sa.Column("wait_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("marketplace_jobs", sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("marketplace_jobs", sa.Column("unconfirmed_step", sa.Integer(), nullable=True))
    # A job left running by the old engine starts its current step again: the lane decides what runs.
    op.execute("UPDATE marketplace_jobs SET status = 'pending' WHERE status = 'running'")
    op.drop_column("marketplace_jobs", "lease_token")
    op.drop_column("marketplace_jobs", "lease_expires_at")
    op.create_index(
        ACTIVE_PRODUCT_INDEX,
        "marketplace_jobs",
        ["user_id", "marketplace", "product_id"],
        unique=True,
        postgresql_where=sa.text(
            "product_id IS NOT NULL AND status IN ('pending', 'running', 'waiting', 'waiting_for_plugin')"
        ),
    )
    op.create_index(
        LANE_QUEUE_INDEX,
        "marketplace_jobs",
        ["user_id", "marketplace", "priority", "created_at"],
        postgresql_where=sa.text("status IN ('pending', 'waiting', 'waiting_for_plugin')"),
    )
    op.create_table(
        "job_lanes",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("marketplace", sa.String(20), primary_key=True),
        sa.Column("active_job_id", sa.Uuid(), nullable=True),
        sa.Column("in_flight", postgresql.JSONB(), nullable=True),
        sa.Column("pacing", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pause_reason", sa.String(40), nullable=True),
        sa.Column("throttles", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("wake_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timers", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_job_lanes_wake_at", "job_lanes", ["wake_at"], postgresql_where=sa.text("wake_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_job_lanes_wake_at", table_name="job_lanes")
    op.drop_table("job_lanes")
    op.drop_index(LANE_QUEUE_INDEX, table_name="marketplace_jobs")
    op.drop_index(ACTIVE_PRODUCT_INDEX, table_name="marketplace_jobs")
    op.execute("UPDATE marketplace_jobs SET status = 'pending' WHERE status IN ('waiting', 'waiting_for_plugin')")
    op.execute("ALTER TYPE job_status RENAME TO job_status_with_waiting")
    op.execute("CREATE TYPE job_status AS ENUM ('pending', 'running', 'completed', 'failed', 'cancelled')")
    op.execute("ALTER TABLE marketplace_jobs ALTER COLUMN status TYPE job_status USING status::text::job_status")
    op.execute("DROP TYPE job_status_with_waiting")
    op.add_column("marketplace_jobs", sa.Column("lease_token", sa.Uuid(), nullable=True))
    op.add_column("marketplace_jobs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    for column in ("unconfirmed_step", "waiting_since", "wait_until", "wait_reason"):
        op.drop_column("marketplace_jobs", column)
    op.create_index(
        ACTIVE_PRODUCT_INDEX,
        "marketplace_jobs",
        ["user_id", "marketplace", "product_id"],
        unique=True,
        postgresql_where=sa.text("product_id IS NOT NULL AND status IN ('pending', 'running')"),
    )
