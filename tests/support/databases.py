"""Databases of a test's own, beside the session's throwaway one."""

from __future__ import annotations

from sqlalchemy import URL, create_engine, text
from sqlalchemy.engine import make_url


def _on_server(database_url: str, *statements: str) -> None:
    admin = create_engine(make_url(database_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        admin.dispose()


def empty_database(database_url: str, name: str) -> URL:
    """The database `name` on `database_url`'s server, created empty (whatever it held is dropped): its URL."""
    _on_server(database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    return make_url(database_url).set(database=name)


def drop_database(database_url: str, name: str) -> None:
    _on_server(database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
