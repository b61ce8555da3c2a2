"""devstack.postgres really creates, starts, stops and restarts a local PostgreSQL cluster."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from devstack import postgres
from devstack.postgres import Cluster, find_bin_dir, free_port, start_cluster, stop_cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    try:
        find_bin_dir()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    # Not tmp_path: pytest's basetemp is 0700, which the `postgres` OS user (used when root) cannot reach.
    base = Path(tempfile.mkdtemp(prefix="devstack-pg-test-", dir="/tmp"))
    base.chmod(0o755)
    data = base / "data"
    try:
        yield data
    finally:
        stop_cluster(data)
        shutil.rmtree(base, ignore_errors=True)


def _count_rows(cluster: Cluster, database: str) -> list[str]:
    engine = sa.create_engine(cluster.url(database))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT name FROM item ORDER BY name")).scalars())
    finally:
        engine.dispose()


def test_start_create_database_restart_keeps_data(data_dir: Path) -> None:
    cluster = start_cluster(data_dir)
    assert cluster.data_dir == data_dir.resolve()
    assert cluster.url("app") == f"postgresql+pg8000://postgres@127.0.0.1:{cluster.port}/app"
    assert (data_dir / "PG_VERSION").exists()

    cluster.create_database("app")
    cluster.create_database("app")  # no-op when it exists
    engine = sa.create_engine(cluster.url("app"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE item (name text PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO item (name) VALUES ('jacket')"))
    engine.dispose()

    # Starting again while it runs reuses the running server.
    assert start_cluster(data_dir) == cluster

    cluster.stop()
    cluster.stop()  # idempotent
    assert not (data_dir / "postmaster.pid").exists()

    port = free_port()
    restarted = start_cluster(data_dir, port=port)
    assert restarted.port == port
    assert _count_rows(restarted, "app") == ["jacket"]
    restarted.stop()


def test_start_after_kill_9(data_dir: Path) -> None:
    cluster = start_cluster(data_dir)
    cluster.create_database("app")
    engine = sa.create_engine(cluster.url("app"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE item (name text PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO item (name) VALUES ('boots')"))
    with engine.connect() as conn:
        # synchronous_commit=off: a crash may lose the last ~200 ms of commits, so flush them first.
        conn.execute(sa.text("CHECKPOINT"))
    engine.dispose()

    pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{pid}/stat").exists() and " Z " in Path(f"/proc/{pid}/stat").read_text():
            break  # zombie: dead, just not reaped
        time.sleep(0.02)

    assert (data_dir / "postmaster.pid").exists()  # stale
    recovered = start_cluster(data_dir)
    assert _count_rows(recovered, "app") == ["boots"]
    recovered.stop()
    recovered.stop()


def test_without_system_binaries_the_pgserver_wheels_bundled_ones_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = tmp_path / "site" / "pgserver" / "pginstall" / "bin"
    bundled.mkdir(parents=True)
    (bundled.parent.parent / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    for name in ("initdb", "pg_ctl", "postgres"):
        (bundled / name).write_text("#!/bin/sh\n")
        (bundled / name).chmod(0o755)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv("PG_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(postgres, "DEBIAN_BIN_GLOB", str(tmp_path / "none" / "*" / "bin"))

    assert postgres.find_bin_dir() == bundled
