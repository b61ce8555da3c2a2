"""Alembic environment: migrations run against DATABASE_URL (or a connection handed in by tests)."""

import os

from alembic import context

from crosslist.db.action_types import sync_action_types
from crosslist.db.engine import make_engine
from crosslist.db.models import Base

target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=os.environ["DATABASE_URL"], target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
            sync_action_types(connection)
        return
    # As the functions connect: TLS, the server verified (crosslist.db.tls), never clear text by accident.
    engine = make_engine(os.environ["DATABASE_URL"])
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
            sync_action_types(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
