"""A job's error is an object {code, message}, as every other error the API shows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Stored errors were "code: message" strings.
    op.execute(
        """
        ALTER TABLE marketplace_jobs ALTER COLUMN error TYPE jsonb USING CASE
            WHEN error IS NULL THEN NULL
            WHEN position(': ' IN error) > 0 THEN jsonb_build_object(
                'code', split_part(error, ': ', 1), 'message', substr(error, position(': ' IN error) + 2))
            ELSE jsonb_build_object('code', 'error', 'message', error)
        END
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE marketplace_jobs ALTER COLUMN error TYPE text
        USING CASE WHEN error IS NULL THEN NULL ELSE (error->>'code') || ': ' || (error->>'message') END
        """
    )
