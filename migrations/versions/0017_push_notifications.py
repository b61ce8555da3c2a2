"""Push notifications from eBay and Etsy: who each user is on eBay (and their orders subscription), the
notifications already acted on, and the lookups a notification makes (an Etsy shop's users, an eBay buyer).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketplace_accounts",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("marketplace", sa.String(20), primary_key=True),
        sa.Column("account_id", sa.String(100), nullable=False),
        sa.Column("push_subscription_id", sa.String(100), nullable=True),
        sa.Column("push_status", sa.String(20), nullable=False),
        sa.Column("push_error", sa.String(300), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_marketplace_accounts_account", "marketplace_accounts", ["marketplace", "account_id"])
    op.create_table(
        "received_notifications",
        sa.Column("source", sa.String(20), primary_key=True),
        sa.Column("message_id", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_received_notifications_received_at", "received_notifications", ["received_at"])
    op.create_index(
        "ix_seller_settings_etsy_shop",
        "seller_settings",
        [sa.text("(CAST(settings ->> 'shop_id' AS VARCHAR))")],
        postgresql_where=sa.text("marketplace = 'etsy'"),
    )
    op.create_index(
        "ix_orders_ebay_buyer",
        "orders",
        ["buyer"],
        postgresql_where=sa.text("marketplace = 'ebay' AND buyer IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_ebay_buyer", table_name="orders")
    op.drop_index("ix_seller_settings_etsy_shop", table_name="seller_settings")
    op.drop_table("received_notifications")
    op.drop_table("marketplace_accounts")
