"""One live listing per marketplace item, and products deleted once their listings are delisted.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_marketplace_listings_live_item"
LIVE = "status IN ('active', 'hidden', 'reserved')"


def upgrade() -> None:
    # A value added with ADD VALUE (0006's states) cannot be used in the transaction that added it, and a
    # fresh database runs every migration in one: the type is rebuilt, which a transaction allows.
    op.execute("ALTER TYPE listing_status RENAME TO listing_status_before_0014")
    op.execute("CREATE TYPE listing_status AS ENUM ('active', 'sold', 'hidden', 'reserved', 'closed', 'deleted')")
    op.execute(
        "ALTER TABLE marketplace_listings ALTER COLUMN status TYPE listing_status USING status::text::listing_status"
    )
    op.execute("DROP TYPE listing_status_before_0014")
    # A marketplace item already live on two products (a fake whose ids started over): the most recently
    # written listing keeps it, the others are marked deleted, so the index can be built.
    op.execute(
        f"""
        UPDATE marketplace_listings AS older
        SET status = 'deleted', updated_at = now()
        FROM marketplace_listings AS newer
        WHERE older.user_id = newer.user_id AND older.marketplace = newer.marketplace
          AND older.external_id = newer.external_id AND older.id <> newer.id
          AND older.{LIVE} AND newer.{LIVE}
          AND (older.updated_at, older.id) < (newer.updated_at, newer.id)
        """
    )
    op.create_index(
        INDEX,
        "marketplace_listings",
        ["user_id", "marketplace", "external_id"],
        unique=True,
        postgresql_where=sa.text(LIVE),
    )
    op.add_column("products", sa.Column("delete_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("products", "delete_requested_at")
    op.drop_index(INDEX, table_name="marketplace_listings")
