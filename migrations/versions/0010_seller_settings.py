"""A seller's settings on eBay and Etsy (policies, location, shop, shipping profile): what their jobs need.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seller_settings",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("marketplace", sa.String(20), primary_key=True),
        sa.Column("settings", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("seller_settings")
