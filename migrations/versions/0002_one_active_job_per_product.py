"""One active job per product and marketplace, enforced by a partial unique index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 14:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_marketplace_jobs_active_product"


def upgrade() -> None:
    # Jobs created before this index may already break the rule (the race it closes): keep the oldest
    # active job of each product, fail the others so the index can be built.
    op.execute(
        """
        UPDATE marketplace_jobs AS newer
        SET status = 'failed', error = 'duplicate_job: another job of this product was already active',
            lease_token = NULL, lease_expires_at = NULL, completed_at = now(), updated_at = now()
        FROM marketplace_jobs AS older
        WHERE newer.product_id IS NOT NULL
          AND newer.status IN ('pending', 'running') AND older.status IN ('pending', 'running')
          AND newer.user_id = older.user_id AND newer.marketplace = older.marketplace
          AND newer.product_id = older.product_id
          AND (newer.created_at, newer.id) > (older.created_at, older.id)
        """
    )
    op.create_index(
        INDEX,
        "marketplace_jobs",
        ["user_id", "marketplace", "product_id"],
        unique=True,
        postgresql_where=sa.text("product_id IS NOT NULL AND status IN ('pending', 'running')"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="marketplace_jobs")
