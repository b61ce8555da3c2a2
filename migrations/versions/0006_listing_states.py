"""Listings keep their marketplace state (sold, hidden, reserved, closed) and the photos they show.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD VALUE may run in a transaction since PostgreSQL 12, as long as the new values are not used in it.
    for value in ("sold", "hidden", "reserved", "closed"):
        op.execute(f"ALTER TYPE listing_status ADD VALUE IF NOT EXISTS '{value}' BEFORE 'deleted'")
    op.add_column("marketplace_listings", sa.Column("image_urls", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("marketplace_listings", "image_urls")
    op.execute("UPDATE marketplace_listings SET status = 'deleted' WHERE status IN ('sold', 'closed')")
    op.execute("UPDATE marketplace_listings SET status = 'active' WHERE status IN ('hidden', 'reserved')")
    op.execute("ALTER TYPE listing_status RENAME TO listing_status_with_states")
    op.execute("CREATE TYPE listing_status AS ENUM ('active', 'deleted')")
    op.execute(
        "ALTER TABLE marketplace_listings ALTER COLUMN status DROP DEFAULT,"
        " ALTER COLUMN status TYPE listing_status USING status::text::listing_status"
    )
    op.execute("DROP TYPE listing_status_with_states")
