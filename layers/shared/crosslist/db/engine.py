"""One SQLAlchemy engine per Lambda instance, reused across invocations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    # A Lambda instance serves one invocation at a time: a pool of one connection (plus one spare)
    # is enough, pre-ping survives connections the server closed while the instance was frozen.
    return create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True, pool_recycle=300)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def violated_constraint(error: DBAPIError) -> str | None:
    """The name of the constraint or unique index PostgreSQL reported (pg8000 passes its error fields as a dict)."""
    fields = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return str(fields["n"]) if isinstance(fields, dict) and "n" in fields else None
