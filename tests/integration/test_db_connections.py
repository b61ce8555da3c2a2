"""A statement that fails in the driver never hands a half-used connection to the next request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pg8000.converters
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from crosslist.db.engine import make_engine, make_session_factory, transaction

pytestmark = pytest.mark.integration

# Valid for Python, but converting it to UTC (as pg8000 does while writing the statement) leaves year 1.
EDGE_OF_THE_CALENDAR = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))


@pytest.fixture
def engine(database_url: str) -> Engine:
    return make_engine(database_url)


def _pairs(engine: Engine) -> list[tuple[int, str]]:
    """What the next requests on this instance would read: each statement must get its own rows."""
    sessions = make_session_factory(engine)
    found = []
    for n in range(5):
        with transaction(sessions) as session:
            found += [
                tuple(row)
                for row in session.execute(text("SELECT CAST(:n AS int) AS n, 'row' || :n AS name"), {"n": n}).all()
            ]
    return found


EXPECTED = [(n, f"row{n}") for n in range(5)]


def _backend(engine: Engine) -> int:
    """The PostgreSQL process serving the pooled connection (a new connection gets a new one)."""
    with transaction(make_session_factory(engine)) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_value_the_driver_cannot_write_leaves_the_next_requests_their_own_rows(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with pytest.raises(OverflowError), transaction(sessions) as session:
        session.execute(text("SELECT :at"), {"at": EDGE_OF_THE_CALENDAR})
    assert _pairs(engine) == EXPECTED


def test_any_error_inside_the_driver_closes_its_connection(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_value: datetime) -> str:  # a converter bug: it fails half-way through writing the statement
        raise RuntimeError("injected failure inside the driver")

    monkeypatch.setitem(pg8000.converters.PY_TYPES, datetime, broken)  # connections made from now on use it
    sessions = make_session_factory(engine)
    before = _backend(engine)
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        session.execute(text("SELECT :at"), {"at": datetime.now(UTC)})
    assert _pairs(engine) == EXPECTED
    assert _backend(engine) != before  # the broken connection was closed, not pooled


def test_an_error_postgresql_reports_keeps_the_connection(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    before = _backend(engine)
    with pytest.raises(ProgrammingError), transaction(sessions) as session:
        session.execute(text("SELECT CAST(v AS int) FROM (VALUES ('1'), ('one')) AS t (v)"))
    assert _pairs(engine) == EXPECTED
    assert _backend(engine) == before  # still pooled: the server answered in step, nothing to reconnect
