"""One SQLAlchemy engine per Lambda instance, reused across invocations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.idle_sessions import end_idle_sessions
from crosslist.db.tls import DatabaseTls, require_tls


def make_engine(url: str, *, tls: DatabaseTls | None = None) -> Engine:
    # A Lambda instance serves one invocation at a time: a pool of one connection (plus one spare)
    # is enough, pre-ping survives connections the server closed while the instance was frozen.
    engine = create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True, pool_recycle=300)
    event.listen(engine, "handle_error", _discard_unless_server_error)
    # A connection idle for a minute is ended by the server: a frozen instance keeps no serverless database awake.
    end_idle_sessions(engine)
    # TLS verified against the system's CAs unless `tls` says otherwise (crosslist.db.tls): never clear text by
    # accident.
    require_tls(engine, tls if tls is not None else DatabaseTls.from_environment())
    return engine


def _discard_unless_server_error(context: ExceptionContext) -> None:
    """A statement failed: keep its connection only when PostgreSQL itself reported the error.

    The server answers an error it reports in step with the protocol, so the connection is usable. Any
    other error (the driver failing to convert a parameter half-way through writing a statement, a bug,
    a timeout) can leave replies unread on the socket, and the next statement on that connection would
    read them as its own: another user's request could get wrong rows. Such a connection is closed, never
    returned to the pool; only it, not the rest of the pool.
    """
    if server_error_fields(context.original_exception) is None:
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


def server_error_fields(error: BaseException | None) -> dict[str, Any] | None:
    """The fields of an error PostgreSQL reported (pg8000 passes them as a dict with the SQLSTATE in "C")."""
    fields = error.args[0] if error is not None and error.args else None
    return fields if isinstance(fields, dict) and "C" in fields else None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def violated_constraint(error: DBAPIError) -> str | None:
    """The name of the constraint or unique index PostgreSQL reported."""
    fields = server_error_fields(error.orig)
    return str(fields["n"]) if fields is not None and "n" in fields else None
