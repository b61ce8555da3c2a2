"""OAuth credentials are sealed under a data key of their own (KMS envelope encryption) and versioned.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("oauth_credentials", sa.Column("data_key_encrypted", sa.LargeBinary(), nullable=True))
    op.add_column("oauth_credentials", sa.Column("version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("oauth_credentials", "version")
    op.drop_column("oauth_credentials", "data_key_encrypted")
