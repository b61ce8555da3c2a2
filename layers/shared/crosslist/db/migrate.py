"""Bring PostgreSQL to the schema this code was written for: `alembic upgrade head`, safe to run unattended.

Every deploy runs it (the MigrationFunction, through a CloudFormation custom resource) before the functions
that use PostgreSQL are updated, and an operator can run it by hand (`make migrate`). So it must:

- take turns: two runs at once (a deploy and a run by hand) would both create the same tables. A
  transaction-scoped advisory lock serialises them; the second waits, then finds the schema current.
  Waiting is bounded, and so is everything else, well within the function's time: a run that cannot
  finish is cut short and says why, it never leaves CloudFormation waiting for an answer;
- change nothing when the schema is current (no DDL, no lock on any table);
- refuse a database at a revision these scripts do not know (a newer release migrated it, or another
  branch): it never downgrades at deploy;
- be all or nothing: the migrations run in the one transaction that holds the lock (PostgreSQL's DDL is
  transactional), so a failure anywhere leaves the database as it was;
- explain every failure in a sentence an operator can act on (the stack's events show it), never with the
  database's password.

alembic is not in the shared layer: the migration function ships it (functions/migrate/requirements.txt),
and only that function imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from aws_lambda_powertools import Logger
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from crosslist.cloudformation import ExplainedFailure
from crosslist.db.engine import make_engine, server_error_fields
from crosslist.db.models import Base

logger = Logger(child=True)

# One key for every run against a database: "crosslis" in ASCII (any constant would do). pg_locks shows it as
# an advisory lock with classid = its high 32 bits, objid = its low 32 bits.
MIGRATION_LOCK_KEY = 0x63726F73736C6973
# pg8000's socket timeout: how long connecting may take (an unreachable database fails the run after it),
# and how long any reply from the server may take.
SOCKET_TIMEOUT_SECONDS = 30.0
# Each statement is cut off by PostgreSQL (a clear error) before the socket's timeout would cut the connection.
STATEMENT_TIMEOUT_SECONDS = 25.0
# DDL waits at most this long for a table the running functions hold: queued behind them, it would stall
# every query on that table. Failing the deploy (nothing changed) beats an outage; deploying again works.
DDL_LOCK_TIMEOUT_SECONDS = 10.0
# Waiting for another run: at most this long, and at most half the time left, so the run still has time.
LOCK_WAIT_SECONDS = 120.0
LOCK_POLL_SECONDS = 0.2


class MigrationFailed(ExplainedFailure):
    """The database was left as it was; the message says why, for whoever deploys."""


@dataclass(frozen=True)
class MigrationOutcome:
    previous_revision: str | None  # None: an empty database
    revision: str
    applied: tuple[str, ...]  # the revisions this run applied, oldest first; empty when the schema was current
    schema_differences: tuple[str, ...] = ()  # from the models, none the code needs (an index of its own…): logged

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "previous_revision": self.previous_revision,
            "applied": list(self.applied),
            "schema_differences": list(self.schema_differences),
        }

    def as_data(self) -> dict[str, str]:
        """For CloudFormation's Data (strings only): !GetAtt DatabaseSchema.Revision and the like."""
        return {
            "Revision": self.revision,
            "PreviousRevision": self.previous_revision or "",
            "Applied": ",".join(self.applied),
        }


def migrate_to_head(
    database_url: Callable[[], str],
    scripts: Path,
    deadline: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> MigrationOutcome:
    """Upgrade the database to the scripts' head, all of it before `deadline` (a `clock` time) or nothing.

    `database_url` is called once (it reads the secret: a failure to read it is a failure of the run).
    """
    config, script, head = _scripts(scripts)
    url = _read_url(database_url)
    try:  # the functions' own engine: TLS as they connect (crosslist.db.tls), settings checked now
        engine = make_engine(url.render_as_string(hide_password=False))
    except Exception as error:
        reason = f"the database connection's settings are wrong: {_one_line(error)}"
        raise MigrationFailed(_without_password(reason, url)) from error
    event.listen(engine, "do_connect", _with_socket_timeout)
    try:
        with _connected(engine, url) as connection, _bounded(connection, deadline, clock):
            try:
                with connection.begin():
                    return _migrate(connection, config=config, script=script, head=head, deadline=deadline, clock=clock)
            except DBAPIError as error:
                raise MigrationFailed(_without_password(_statement_failure(error, head), url)) from error
            except SQLAlchemyError as error:
                reason = f"the migration to {head} failed, nothing was changed: {_one_line(error)}"
                raise MigrationFailed(_without_password(reason, url)) from error
    finally:
        engine.dispose()


def _migrate(
    connection: Connection,
    *,
    config: Config,
    script: ScriptDirectory,
    head: str,
    deadline: float,
    clock: Callable[[], float],
) -> MigrationOutcome:
    _wait_for_other_runs(connection, deadline, clock)
    before = _current_revision(connection)
    if before is not None and before not in {revision.revision for revision in script.walk_revisions()}:
        raise MigrationFailed(
            f"the database is at revision {before}, which this code does not know (its newest is {head}): a newer"
            " release migrated it, or another branch did. Nothing was changed: deploy that release again, or"
            " downgrade the database by hand with the scripts that know it"
        )
    if before == head:
        logger.info("the schema is current: only the action catalogue is written", extra={"revision": head})
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, "head")  # migrations/env.py also writes the action catalogue, every run
    except CommandError as error:
        raise MigrationFailed(f"alembic refused to migrate, nothing was changed: {_one_line(error)}") from error
    after = _current_revision(connection)
    if after != head:
        raise MigrationFailed(f"the migrations ended at revision {after}, not at {head}: nothing was changed")
    applied = tuple(reversed([r.revision for r in script.iterate_revisions(head, before or "base")]))
    missing, other = _schema_differences(connection)
    if missing:
        raise MigrationFailed(
            f"after migrating to {head} the database still lacks what the code uses: {'; '.join(missing)}."
            " Nothing was changed: it was altered by hand, or a migration is missing"
        )
    if other:
        logger.warning("the database differs from the models (the code runs on it)", extra={"differences": other})
    logger.info("migrated", extra={"previous_revision": before, "revision": head, "applied": applied})
    return MigrationOutcome(before, head, applied, other)


def _scripts(scripts: Path) -> tuple[Config, ScriptDirectory, str]:
    if not (scripts / "env.py").is_file():
        raise MigrationFailed(f"the migration scripts are not packaged with the function: no {scripts}/env.py")
    config = Config()
    config.set_main_option("script_location", str(scripts))
    script = ScriptDirectory.from_config(config)
    heads = script.get_heads()
    if len(heads) != 1:
        raise MigrationFailed(f"the migration scripts have {len(heads)} heads ({', '.join(heads)}): merge them")
    return config, script, heads[0]


def _read_url(database_url: Callable[[], str]) -> URL:
    try:
        raw = database_url()
    except Exception as error:
        raise MigrationFailed(f"the database's URL could not be read (its secret): {_one_line(error)}") from error
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):  # the message quotes the whole string, password and all
        raise MigrationFailed(
            "the database's secret does not hold a SQLAlchemy URL (postgresql+pg8000://user:password@host:5432/name)"
        ) from None
    if url.drivername != "postgresql+pg8000" or not url.host:
        raise MigrationFailed(
            f"the database's secret holds a {url.drivername} URL{'' if url.host else ' with no host'}: it must be"
            " postgresql+pg8000://user:password@host:5432/name (pg8000 is the driver the functions ship)"
        )
    return url


def _with_socket_timeout(dialect: Any, record: Any, args: Any, parameters: dict[str, Any]) -> None:
    """Bound connecting (an unreachable database) and every reply; whatever else make_engine sets is kept."""
    parameters["timeout"] = SOCKET_TIMEOUT_SECONDS


@contextmanager
def _connected(engine: Engine, url: URL) -> Iterator[Connection]:
    where = f"{url.host}:{url.port or 5432}/{url.database or ''}"
    try:
        connection = engine.connect()
    except DBAPIError as error:
        reason = f"cannot connect to the database at {where}: {_cause(error)}"
        raise MigrationFailed(_without_password(reason, url)) from error
    with connection:
        yield connection


@contextmanager
def _bounded(connection: Connection, deadline: float, clock: Callable[[], float]) -> Iterator[None]:
    """Every statement of the run ends by `deadline`: each is given what is left (at most the usual limits), and
    none starts once it has passed. The statements of alembic and of the migration scripts included."""

    def limit(conn: Connection, cursor: Any, *statement_and_context: Any) -> None:
        left = deadline - clock()
        if left < 0.5:
            raise MigrationFailed("out of time: the migration could not finish before the function's timeout")
        statement_ms = int(min(left, STATEMENT_TIMEOUT_SECONDS) * 1000)
        lock_ms = int(min(left, DDL_LOCK_TIMEOUT_SECONDS) * 1000)
        # On the statement's own cursor, in its transaction: SET LOCAL ends with it. (pg8000's paramstyle.)
        cursor.execute(
            "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
            (str(statement_ms), str(lock_ms)),
        )

    event.listen(connection, "before_cursor_execute", limit)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", limit)


def _wait_for_other_runs(connection: Connection, deadline: float, clock: Callable[[], float]) -> None:
    """Take the migration lock for this transaction (released at its commit or rollback, or if the connection
    dies). Polled rather than waited for in one statement: no reply is ever slower than the socket allows."""
    started = clock()
    give_up = started + min(LOCK_WAIT_SECONDS, (deadline - started) / 2)
    take = text("SELECT pg_try_advisory_xact_lock(:key)").bindparams(key=MIGRATION_LOCK_KEY)
    if connection.execute(take).scalar_one():
        return
    logger.info("another migration run holds the lock: waiting for it to end")
    while not connection.execute(take).scalar_one():
        if clock() >= give_up:
            raise MigrationFailed(
                f"another migration run held the migration lock for {clock() - started:.0f} s: nothing was changed."
                " It is still running, or stuck: pg_locks shows the session holding the advisory lock"
                f" {MIGRATION_LOCK_KEY} (classid {MIGRATION_LOCK_KEY >> 32}, objid {MIGRATION_LOCK_KEY & 0xFFFFFFFF})"
            )
        time.sleep(LOCK_POLL_SECONDS)


def _current_revision(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise MigrationFailed(f"the database records several revisions ({', '.join(heads)}): fix alembic_version")
    return heads[0] if heads else None


def _schema_differences(connection: Connection) -> tuple[list[str], tuple[str, ...]]:
    """What the models use that the database lacks (the code would fail on it), and the other differences
    (a column type, an index or a table of the database's own: logged, the code runs)."""
    missing: list[str] = []
    other: list[str] = []
    for difference in compare_metadata(MigrationContext.configure(connection), Base.metadata):
        if isinstance(difference, tuple) and difference[0] == "add_table":
            missing.append(f"table {difference[1].name}")
        elif isinstance(difference, tuple) and difference[0] == "add_column":
            missing.append(f"column {difference[2]}.{difference[3].name}")
        else:
            other.append(_one_line(difference))
    return missing, tuple(other)


def _statement_failure(error: DBAPIError, head: str) -> str:
    fields = server_error_fields(error.orig)
    code = fields.get("C") if fields else None
    if code == "57014":
        return (
            f"a statement of the migration to {head} ran out of time (at most {STATEMENT_TIMEOUT_SECONDS:.0f} s"
            " each, and the run must end before the function's timeout): nothing was changed"
        )
    if code == "55P03":
        return (
            f"the migration to {head} waited over {DDL_LOCK_TIMEOUT_SECONDS:.0f} s for a table the running"
            " functions were using: nothing was changed. Deploy again (or run it by hand) when it is quieter"
        )
    return f"the migration to {head} failed, nothing was changed: {_cause(error)}"


def _cause(error: DBAPIError) -> str:
    """PostgreSQL's own message (and SQLSTATE) when it reported the error, else the driver's."""
    fields = server_error_fields(error.orig)
    if fields is not None:
        return f"{fields.get('M', '')} (SQLSTATE {fields.get('C')})"
    return _one_line(error.orig)


def _one_line(thing: object) -> str:
    lines = [line.strip() for line in str(thing).splitlines() if line.strip()]
    # SQLAlchemy ends its messages with a link to its documentation: not the cause.
    return " | ".join(line for line in lines if not line.startswith("(Background on this error at:"))


def _without_password(message: str, url: URL) -> str:
    return message.replace(url.password, "***") if isinstance(url.password, str) and url.password else message
