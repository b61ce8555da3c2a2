"""Connecting a marketplace account ends in the web app: each authorization remembers the page to return to.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Authorizations started before this change have no page to return to: they can no longer complete
    # (ten minutes at most), so they are dropped rather than kept half usable.
    op.execute("DELETE FROM oauth_states WHERE used_at IS NULL")
    op.add_column("oauth_states", sa.Column("return_to", sa.String(2000), nullable=True))


def downgrade() -> None:
    op.drop_column("oauth_states", "return_to")
