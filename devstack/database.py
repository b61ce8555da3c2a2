"""Bring a PostgreSQL database to a migration revision with the repository's Alembic scripts."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine

REPO = Path(__file__).resolve().parent.parent


def migrate(database: str | Engine, revision: str = "head", root: Path = REPO) -> None:
    """Upgrade to `revision`, or downgrade everything with "base"."""
    config = Config(str(root / "alembic.ini"))
    engine = create_engine(database) if isinstance(database, str) else database
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if revision == "base":
                command.downgrade(config, "base")
            else:
                command.upgrade(config, revision)
    finally:
        if isinstance(database, str):
            engine.dispose()
