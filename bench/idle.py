"""What an idle system costs: `python -m bench.idle --minutes 3`.

A devstack on a throwaway cluster with its schedules on (the sweeper and the scheduler every minute,
oauth_refresh every 15 minutes, as in AWS) and no user at all. Over the given minutes of real time it counts:

- PostgreSQL transactions on the devstack's database: xact_commit + xact_rollback of pg_stat_database, read
  over a connection to the `postgres` database (so the reading is not counted), after waiting out the 10 s a
  PostgreSQL 15 backend may keep its counts before reporting them. The server's own autovacuum is turned off
  for the count: it commits a few transactions a minute in any database (12 in 3 minutes on a cluster nobody
  connects to), and it is no client: a serverless PostgreSQL pauses when no client is connected;
- the sessions the functions opened on that database (pg_stat_database.sessions: client connections only);
- the connections the functions still hold on that database at the end (pg_stat_activity);
- the DynamoDB requests the functions made, by operation (a WSGI wrapper in front of moto's server).

The first tick of each schedule looks at PostgreSQL once when the devstack's due times are new (moto keeps
nothing across starts): `--warm-up` fires every schedule once before the count starts, as a deployed
stack, whose DynamoDB outlives deploys, would already have done.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devstack import moto_server
from devstack.postgres import free_port
from devstack.stack import DevStack, StackConfig

REPO = Path(__file__).resolve().parent.parent
# A PostgreSQL 15 backend reports its counts at most every second while busy and within 10 s once idle.
STATS_SETTLE_SECONDS = 11.0
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class IdleFigures:
    minutes: float
    transactions: int
    sessions: int
    held_connections: int
    dynamodb: dict[str, int]
    ticks: int  # schedule invocations during the count

    def report(self) -> str:
        per_minute = {op: round(count / self.minutes, 2) for op, count in sorted(self.dynamodb.items())}
        return "\n".join(
            [
                f"idle for {self.minutes:g} min ({self.ticks} schedule invocations):",
                f"  PostgreSQL transactions: {self.transactions} ({self.transactions / self.minutes:.1f} per minute)",
                f"  sessions opened: {self.sessions}",
                f"  connections held at the end: {self.held_connections}",
                f"  DynamoDB requests per minute: {per_minute or 'none'}",
            ]
        )


class RequestCounter:
    """Counts the DynamoDB requests reaching moto's server, by operation."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.counting = False

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            if self.counting and target.startswith("DynamoDB_"):
                self.counts[target.split(".", 1)[1]] += 1
            return app(environ, start_response)

        return counted


def _count(admin_url: str, query: str, database: str) -> int:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(query), {"d": database}).scalar_one())
    finally:
        engine.dispose()


def transactions(admin_url: str, database: str) -> int:
    return _count(admin_url, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :d", database)


def sessions(admin_url: str, database: str) -> int:
    return _count(admin_url, "SELECT sessions FROM pg_stat_database WHERE datname = :d", database)


def without_autovacuum(admin_url: str) -> None:
    """Turn the server's autovacuum off (a reload, no restart): its transactions are not a client's."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("ALTER SYSTEM SET autovacuum = off"))
            connection.execute(text("SELECT pg_reload_conf()"))
    finally:
        engine.dispose()


def held_connections(admin_url: str, database: str) -> int:
    return _count(
        admin_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND backend_type = 'client backend'",
        database,
    )


def measure(minutes: float, *, warm_up: bool) -> IdleFigures:
    base = Path(tempfile.mkdtemp(prefix="crosslist-idle-", dir="/tmp"))
    base.chmod(0o755)  # PostgreSQL may run as another OS user
    counter = RequestCounter()
    real_make_server = moto_server.make_server  # type: ignore[attr-defined]  # werkzeug's, as imported there

    def counting_server(host: str, port: int, app: WsgiApp, **kw: Any) -> Any:
        return real_make_server(host, port, counter.wrap(app), **kw)

    config = StackConfig(root=REPO, http_port=free_port(), ws_port=free_port(), data_dir=base / "state", schedules=True)
    ticks = 0
    with mock.patch("devstack.moto_server.make_server", counting_server):
        stack = DevStack(config)
        try:
            stack.start()
            invoke = stack._run_schedule

            def counted_schedule(schedule: Any, event: dict[str, Any]) -> Any:
                nonlocal ticks
                ticks += counter.counting
                return invoke(schedule, event)

            assert stack.scheduler is not None
            stack.scheduler._invoke = counted_schedule
            if warm_up:
                for name in stack.schedules:
                    stack.fire(name)
            url = make_url(stack.database_url)
            admin = url.set(database="postgres").render_as_string(hide_password=False)
            without_autovacuum(admin)
            time.sleep(STATS_SETTLE_SECONDS)
            before = transactions(admin, str(url.database))
            sessions_before = sessions(admin, str(url.database))
            counter.counting = True
            time.sleep(minutes * 60)
            counter.counting = False
            time.sleep(STATS_SETTLE_SECONDS)
            after = transactions(admin, str(url.database))
            opened = sessions(admin, str(url.database)) - sessions_before
            held = held_connections(admin, str(url.database))
        finally:
            stack.stop()
            shutil.rmtree(base, ignore_errors=True)
    return IdleFigures(minutes, after - before, opened, held, dict(counter.counts), ticks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="real minutes to stay idle (default 3)")
    parser.add_argument("--warm-up", action="store_true", help="fire every schedule once before counting")
    args = parser.parse_args(argv)
    print(measure(args.minutes, warm_up=args.warm_up).report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
