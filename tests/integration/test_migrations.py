"""Alembic migrations against real PostgreSQL: up, down, up again, and in step with the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from crosslist.db import action_types
from crosslist.db.models import Base
from crosslist.marketplaces import ACTION_TYPES, ActionType
from devstack.database import migrate
from tests.support.databases import drop_database, empty_database

pytestmark = pytest.mark.integration

DATABASE = "crosslist_migrations"


@pytest.fixture
def scratch_database(database_url: str) -> Iterator[Engine]:
    """A database of its own, so going down to base cannot disturb the other tests."""
    engine = create_engine(empty_database(database_url, DATABASE))
    yield engine
    engine.dispose()
    drop_database(database_url, DATABASE)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(scratch_database: Engine) -> None:
    migrate(scratch_database)
    assert tables(scratch_database) == set(Base.metadata.tables)
    migrate(scratch_database, "base")
    assert tables(scratch_database) == set()
    migrate(scratch_database)
    assert tables(scratch_database) == set(Base.metadata.tables)


def test_the_seeded_action_types_are_the_applications_catalogue(scratch_database: Engine) -> None:
    migrate(scratch_database)
    with scratch_database.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT marketplace, code, name, default_priority, max_attempts, timeout_ms"
                " FROM marketplace_action_types"
            )
        ).all()
    assert len(rows) == 21  # 9 Vinted actions, 6 each on eBay and Etsy
    assert {tuple(row) for row in rows} == {
        (a.marketplace, a.code, a.name, a.default_priority, a.max_attempts, a.timeout_ms) for a in ACTION_TYPES
    }


def test_the_migrations_build_exactly_the_schema_the_models_describe(scratch_database: Engine) -> None:
    migrate(scratch_database)
    with scratch_database.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_every_migration_run_writes_the_code_catalogue_into_its_rows(
    scratch_database: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(scratch_database)
    with scratch_database.begin() as connection:
        connection.execute(text("UPDATE marketplace_action_types SET timeout_ms = 1 WHERE code = 'publish'"))
    added = ActionType(
        "vinted",
        "bump",
        "Bump a listing",
        default_priority=5,
        max_attempts=3,
        timeout_ms=60_000,
        runs_in="extension",
    )
    monkeypatch.setattr(action_types, "ACTION_TYPES", (*ACTION_TYPES, added))

    migrate(scratch_database)  # already at head: only the catalogue is written

    with scratch_database.connect() as connection:
        rows: dict[str, int] = dict(
            connection.execute(
                text("SELECT marketplace || '.' || code, timeout_ms FROM marketplace_action_types")
            ).all()
        )
    assert rows["vinted.bump"] == 60_000
    assert {rows[f"{m}.publish"] for m in ("vinted", "ebay", "etsy")} == {60_000}
    assert len(rows) == len(ACTION_TYPES) + 1
