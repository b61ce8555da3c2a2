"""Sales and what auto-delist did about each (the per-sale log), and each user's auto-delist setting.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 22:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A user without a row has auto-delist on.
    op.create_table(
        "user_settings",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("auto_delist", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "sales",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("product_id", sa.Uuid(), sa.ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("marketplace", sa.String(20), nullable=False),
        sa.Column("external_order_id", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("order_id", name="uq_sales_order"),
    )
    op.create_index("ix_sales_product_sold", "sales", ["user_id", "product_id", "sold_at"])
    op.create_table(
        "sale_actions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("sale_id", sa.Uuid(), sa.ForeignKey("sales.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("marketplace", sa.String(20), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(60), nullable=True),
        sa.Column("job_id", sa.Uuid(), sa.ForeignKey("marketplace_jobs.id", ondelete="SET NULL"), nullable=True),
        sa.Column(
            "waiting_for_job_id", sa.Uuid(), sa.ForeignKey("marketplace_jobs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("sale_id", "marketplace", name="uq_sale_actions_sale_marketplace"),
    )
    op.create_index(
        "ix_sale_actions_waiting",
        "sale_actions",
        ["waiting_for_job_id"],
        postgresql_where=sa.text("outcome = 'waiting'"),
    )


def downgrade() -> None:
    op.drop_index("ix_sale_actions_waiting", table_name="sale_actions")
    op.drop_table("sale_actions")
    op.drop_index("ix_sales_product_sold", table_name="sales")
    op.drop_table("sales")
    op.drop_table("user_settings")
