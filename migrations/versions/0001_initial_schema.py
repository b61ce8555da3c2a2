"""Initial schema: products, marketplace action types (seeded), jobs, batches, listings, OAuth credentials.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:55:31.011339
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The catalogue as it was when this migration was written (migrations never import application code,
# which moves on; a test checks the seeded rows match crosslist.marketplaces.ACTION_TYPES).
VINTED_ACTIONS = {
    "publish": "Publish a product",
    "update": "Update a listing",
    "delete": "Delete a listing",
    "sync": "Sync listings",
    "orders": "Import orders",
    "message": "Send a message",
    "link_product": "Link an existing listing to a product",
}
API_ACTIONS = {
    "publish": "Publish a product",
    "update": "Update a listing",
    "delete": "Delete a listing",
    "sync": "Sync listings",
    "sync_orders": "Import orders",
}
ENUMS = ("job_status", "listing_status", "credential_status")


def upgrade() -> None:
    action_types = op.create_table(
        "marketplace_action_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("marketplace", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("default_priority", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("marketplace", "code"),
    )
    op.create_table(
        "marketplace_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("marketplace", sa.String(length=20), nullable=False),
        sa.Column("action_code", sa.String(length=40), nullable=False),
        sa.Column("total_jobs", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_marketplace_batches_user_id"), "marketplace_batches", ["user_id"], unique=False)
    op.create_table(
        "oauth_credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("marketplace", sa.String(length=20), nullable=False),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Enum("active", "needs_reauth", name="credential_status"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "marketplace"),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("brand", sa.String(length=100), nullable=True),
        sa.Column("size", sa.String(length=50), nullable=True),
        sa.Column("condition", sa.String(length=50), nullable=True),
        sa.Column("color", sa.String(length=50), nullable=True),
        sa.Column("image_urls", postgresql.JSONB(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("marketplace_attributes", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_products_user_created", "products", ["user_id", "created_at"], unique=False)
    op.create_table(
        "marketplace_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("marketplace", sa.String(length=20), nullable=False),
        sa.Column("action_code", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.Enum("pending", "running", "completed", "failed", name="job_status"), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("step_timeout_ms", sa.Integer(), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=False),
        sa.Column("accumulated_data", postgresql.JSONB(), nullable=False),
        sa.Column("input", postgresql.JSONB(), nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("lease_token", sa.Uuid(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["marketplace_batches.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_marketplace_jobs_user_idempotency_key"),
    )
    op.create_index(
        "ix_marketplace_jobs_status_next_attempt", "marketplace_jobs", ["status", "next_attempt_at"], unique=False
    )
    op.create_index("ix_marketplace_jobs_user_created", "marketplace_jobs", ["user_id", "created_at"], unique=False)
    op.create_table(
        "marketplace_listings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("marketplace", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("status", sa.Enum("active", "deleted", name="listing_status"), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "product_id", "marketplace"),
    )
    op.bulk_insert(
        action_types,
        [
            {
                "marketplace": marketplace,
                "code": code,
                "name": name,
                "default_priority": 5,
                "max_attempts": 3,
                "timeout_ms": 60_000,
            }
            for marketplace, actions in (("vinted", VINTED_ACTIONS), ("ebay", API_ACTIONS), ("etsy", API_ACTIONS))
            for code, name in actions.items()
        ],
    )


def downgrade() -> None:
    op.drop_table("marketplace_listings")
    op.drop_index("ix_marketplace_jobs_user_created", table_name="marketplace_jobs")
    op.drop_index("ix_marketplace_jobs_status_next_attempt", table_name="marketplace_jobs")
    op.drop_table("marketplace_jobs")
    op.drop_index("ix_products_user_created", table_name="products")
    op.drop_table("products")
    op.drop_table("oauth_credentials")
    op.drop_index(op.f("ix_marketplace_batches_user_id"), table_name="marketplace_batches")
    op.drop_table("marketplace_batches")
    op.drop_table("marketplace_action_types")
    for enum_name in ENUMS:
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
