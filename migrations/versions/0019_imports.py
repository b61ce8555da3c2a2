"""Imports of a seller's shops: the import, and every listing an import read with what became of it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("jobs", postgresql.JSONB(), nullable=False),
        sa.Column("migrate_ebay", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_imports_user_created", "imports", ["user_id", "created_at"])
    op.create_table(
        "imported_listings",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("import_id", sa.Uuid(), sa.ForeignKey("imports.id", ondelete="CASCADE"), nullable=False),
        sa.Column("last_import_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("marketplace", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(60), nullable=True),
        sa.Column("product_id", sa.Uuid(), sa.ForeignKey("products.id", ondelete="SET NULL"), nullable=True),
        sa.Column("candidate_product_id", sa.Uuid(), sa.ForeignKey("products.id", ondelete="SET NULL"), nullable=True),
        sa.Column("confidence", sa.Numeric(4, 3), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("listing", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("user_id", "marketplace", "external_id", name="uq_imported_listings_item"),
    )
    op.create_index("ix_imported_listings_import", "imported_listings", ["import_id", "decision"])


def downgrade() -> None:
    op.drop_table("imported_listings")
    op.drop_table("imports")
