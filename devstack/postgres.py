"""Start a local, throw-away PostgreSQL cluster without Docker.

Used by the test suite (session fixture) and by the local dev stack::

    python -m devstack.postgres start --data-dir .devstack/pg [--port 5433]
    python -m devstack.postgres stop --data-dir .devstack/pg

The cluster is created with ``initdb`` on first use (trust auth, superuser ``postgres``) and kept on
disk, so a restart on the same data directory keeps its data. The server listens on 127.0.0.1 only
and runs with durability switched off (``fsync=off`` ...) because it only ever holds disposable data.

PostgreSQL refuses to run as root: when this module runs as root, ``initdb``/``pg_ctl`` are run as
the ``postgres`` OS user (created if missing) through ``runuser``, and the data directory is owned
by that user.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
from sqlalchemy import URL

__all__ = [
    "Cluster",
    "ClusterError",
    "PostgresNotFoundError",
    "ServerCertificate",
    "find_bin_dir",
    "free_port",
    "start_cluster",
]

log = logging.getLogger(__name__)

PG_OS_USER = "postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
START_TIMEOUT_S = 60
READY_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 40
# Unix socket paths are limited to ~107 bytes (sun_path); keep room for "/.s.PGSQL.65535.lock".
MAX_SOCKET_DIR_LEN = 80
DUPLICATE_DATABASE = "42P04"


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped."""


class PostgresNotFoundError(ClusterError):
    """No PostgreSQL server binaries were found."""


# --------------------------------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------------------------------


def _has_server_binaries(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    # .../postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def find_bin_dir() -> Path:
    """Directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Looked up in order: ``$PG_BIN``, ``pg_config --bindir``, the newest ``/usr/lib/postgresql/*/bin``,
    ``PATH``, then the binaries bundled in the ``pgserver`` wheel (what ``make`` installs when there
    are none: only its binaries are used, never its Python code, which as root adds users).
    """
    env_bin = os.environ.get("PG_BIN")
    if env_bin:
        path = Path(env_bin).expanduser()
        if not _has_server_binaries(path):
            raise PostgresNotFoundError(f"PG_BIN={env_bin} does not contain initdb, pg_ctl and postgres")
        return path

    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out and _has_server_binaries(Path(out)):
                return Path(out)

    candidates = [p for p in Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")) if _has_server_binaries(p)]
    if candidates:
        return max(candidates, key=_version_key)

    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        for path in (Path(pg_ctl).parent, Path(pg_ctl).resolve().parent):
            if _has_server_binaries(path):
                return path

    bundled = _bundled_bin_dir()
    if bundled is not None:
        return bundled

    raise PostgresNotFoundError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. Install PostgreSQL "
        "(e.g. `apt-get install postgresql`, or `pip install pgserver` for bundled binaries), set PG_BIN "
        "to its bin directory, or point TEST_DATABASE_URL / DATABASE_URL at an existing server."
    )


def _bundled_bin_dir() -> Path | None:
    # Where `make` unpacks the wheel (sys.prefix/pgserver), else an installed pgserver: find_spec locates a
    # top-level package without importing it.
    unpacked = Path(sys.prefix) / "pgserver" / "pgserver"
    spec = importlib.util.find_spec("pgserver")
    installed = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    for package in (unpacked, installed):
        if package is not None and _has_server_binaries(package / "pginstall" / "bin"):
            return package / "pginstall" / "bin"
    return None


# --------------------------------------------------------------------------------------------------
# Running as the postgres OS user when we are root
# --------------------------------------------------------------------------------------------------


def _is_root() -> bool:
    return os.geteuid() == 0


def _pg_account() -> pwd.struct_passwd | None:
    """The OS account that runs the server, or None to run as the current user."""
    if not _is_root():
        return None
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        log.info("creating system user %r to run PostgreSQL (it refuses to run as root)", PG_OS_USER)
        _run(["useradd", "--system", "--no-create-home", PG_OS_USER], what="useradd")
        return pwd.getpwnam(PG_OS_USER)


def _as_pg_user(cmd: Sequence[str]) -> list[str]:
    if _pg_account() is None:
        return list(cmd)
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterError("running as root but `runuser` is missing; cannot drop to the postgres user")
    return [runuser, "-u", PG_OS_USER, "--", *cmd]


def _give_to_pg_user(path: Path) -> None:
    account = _pg_account()
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


def _make_reachable(path: Path) -> None:
    """Make sure the postgres OS user can traverse every ancestor of ``path`` (adds o+x if needed)."""
    account = _pg_account()
    if account is None:
        return
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == account.pw_uid or st.st_mode & stat.S_IXOTH:
            continue
        log.warning("adding o+x to %s so the %r user can reach %s", parent, PG_OS_USER, path)
        parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _run(cmd: Sequence[str], *, what: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        # cwd="/": the postgres user may not be able to enter our working directory.
        proc = subprocess.run(
            list(cmd),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise ClusterError(f"{what}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ClusterError(f"{what} timed out after {timeout}s: {shlex.join(cmd)}") from exc
    if proc.returncode != 0:
        raise ClusterError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}".rstrip()
        )
    return proc


# --------------------------------------------------------------------------------------------------
# postmaster.pid handling
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PidFile:
    pid: int
    port: int | None
    socket_dir: Path | None


def _read_pid_file(data_dir: Path) -> _PidFile | None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as exc:
        raise ClusterError(f"cannot read {data_dir / 'postmaster.pid'}: {exc}") from exc
    if not lines or not lines[0].strip().lstrip("-").isdigit():
        return _PidFile(pid=0, port=None, socket_dir=None)  # truncated file: treat as stale
    pid = abs(int(lines[0]))
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
    return _PidFile(pid=pid, port=port, socket_dir=socket_dir)


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) process that looks like a postgres server."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():
        return True  # no procfs: trust kill(0)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        comm = (proc / "comm").read_text().strip()
    except (OSError, IndexError):
        return False
    # A killed postmaster can linger as a zombie if nobody reaps it; a recycled pid is another program.
    return state not in ("Z", "X") and comm.startswith("postgres")


def _running_pid(data_dir: Path) -> int | None:
    info = _read_pid_file(data_dir)
    if info is None or not _pid_alive(info.pid):
        return None
    return info.pid


def _clear_stale_lock_files(data_dir: Path) -> None:
    """Remove lock files left by a crashed server (e.g. after ``kill -9``).

    PostgreSQL removes them itself when their pid is gone, but not when the pid is a zombie or has been
    recycled by another process, so do it here once we know no server owns them.
    """
    info = _read_pid_file(data_dir)
    if info is None or _pid_alive(info.pid):
        return
    log.info("removing stale postmaster.pid (pid %s) in %s", info.pid, data_dir)
    if info.socket_dir is not None and info.port is not None:
        lock = info.socket_dir / f".s.PGSQL.{info.port}.lock"
        with contextlib.suppress(OSError):
            lock_pid = int(lock.read_text().splitlines()[0])
            if not _pid_alive(abs(lock_pid)):
                lock.unlink()
    with contextlib.suppress(FileNotFoundError):
        (data_dir / "postmaster.pid").unlink()


# --------------------------------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------------------------------


def _log_file(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}.log"


def _log_tail(log_file: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with log_file.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no server log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(server log is empty)"


def _default_socket_dir(data_dir: Path) -> Path:
    if len(str(data_dir)) <= MAX_SOCKET_DIR_LEN:
        return data_dir
    # Too long for a unix socket path: use a short per-data-dir directory under the temp dir.
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"devstack-pg-{digest}"


def _connect(port: int, database: str = "postgres", timeout: float = 5.0) -> pg8000.native.Connection:
    return pg8000.native.Connection(user=SUPERUSER, host=HOST, port=port, database=database, timeout=timeout)


@dataclass(frozen=True)
class Cluster:
    """A running local PostgreSQL server (trust auth, superuser ``postgres``, TCP on 127.0.0.1)."""

    data_dir: Path
    port: int
    socket_dir: Path

    @property
    def log_file(self) -> Path:
        return _log_file(self.data_dir)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+pg8000://postgres@127.0.0.1:5433/postgres``."""
        return URL.create(
            "postgresql+pg8000", username=SUPERUSER, host=HOST, port=self.port, database=database
        ).render_as_string(hide_password=False)

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it already exists."""
        conn = _connect(self.port)
        try:
            if conn.run("SELECT 1 FROM pg_database WHERE datname = :name", name=name):
                return
            try:
                conn.run(f"CREATE DATABASE {pg8000.native.identifier(name)}")
            except pg8000.native.DatabaseError as exc:
                details = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                if details.get("C") != DUPLICATE_DATABASE:  # lost a race with a concurrent creator
                    raise
        finally:
            conn.close()

    def stop(self) -> None:
        """Fast shutdown (``pg_ctl -m fast stop``). Does nothing if the server is not running."""
        stop_cluster(self.data_dir)


@dataclass(frozen=True)
class ServerCertificate:
    """What a cluster started with it presents to clients: TLS on (``ssl=on``), this certificate (PEM, its chain
    after it) and its private key (PEM, unencrypted). Without one the server has no TLS at all (``ssl=off``)."""

    certificate_pem: bytes
    private_key_pem: bytes


def _install_certificate(data_dir: Path, certificate: ServerCertificate) -> dict[str, str]:
    """Write the certificate and key into the data directory, readable by the server alone (PostgreSQL refuses a
    key others can read); returns the server settings that turn TLS on with them."""
    paths = {"ssl_cert_file": data_dir / "server.crt", "ssl_key_file": data_dir / "server.key"}
    for path, content in zip(paths.values(), (certificate.certificate_pem, certificate.private_key_pem), strict=True):
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        _give_to_pg_user(path)
    return {"ssl": "on", **{name: str(path) for name, path in paths.items()}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _initdb(bin_dir: Path, data_dir: Path) -> None:
    started = time.monotonic()
    _run(
        _as_pg_user(
            [
                str(bin_dir / "initdb"),
                "--no-sync",
                *("-A", "trust"),
                *("-U", SUPERUSER),
                *("-E", "UTF8"),
                "--locale=C",
                *("-D", str(data_dir)),
            ]
        ),
        what="initdb",
    )
    log.info("initdb %s took %.2fs", data_dir, time.monotonic() - started)


def _wait_ready(cluster: Cluster, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            _connect(cluster.port, timeout=2.0).close()
            return
        except Exception as exc:  # any connection failure means "not ready yet"
            last_error = exc
            time.sleep(0.05)
    raise ClusterError(
        f"PostgreSQL in {cluster.data_dir} does not accept connections on {HOST}:{cluster.port} "
        f"after {timeout}s ({last_error})\n--- tail of {cluster.log_file} ---\n{_log_tail(cluster.log_file)}"
    )


def _is_retryable(log_text: str) -> bool:
    # Leftovers of a crashed server whose children have not exited yet.
    return "pre-existing shared memory block" in log_text or "lock file" in log_text


def _reuse_running(data_dir: Path, port: int | None) -> Cluster | None:
    info = _read_pid_file(data_dir)
    if info is None or not _pid_alive(info.pid):
        return None
    if info.port is None:
        raise ClusterError(f"server {info.pid} is running on {data_dir} but postmaster.pid has no port")
    if port is not None and port != info.port:
        log.warning("server already running on %s with port %s (asked for %s)", data_dir, info.port, port)
    log.info("reusing running PostgreSQL %s on port %s", data_dir, info.port)
    cluster = Cluster(data_dir=data_dir, port=info.port, socket_dir=info.socket_dir or data_dir)
    _wait_ready(cluster)
    return cluster


def _prepare(bin_dir: Path, data_dir: Path) -> Path:
    """initdb the data directory if needed; create the socket dir and log file. Returns the socket dir."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists() and not data_dir.is_dir():
        raise ClusterError(f"{data_dir} exists and is not a directory")
    if not data_dir.exists() or not any(data_dir.iterdir()):
        data_dir.mkdir(mode=0o700, exist_ok=True)
        _give_to_pg_user(data_dir)
        _make_reachable(data_dir)
        _initdb(bin_dir, data_dir)
    elif not (data_dir / "PG_VERSION").exists():
        raise ClusterError(f"{data_dir} is not empty and is not a PostgreSQL data directory")

    socket_dir = _default_socket_dir(data_dir)
    if socket_dir != data_dir:
        socket_dir.mkdir(mode=0o755, exist_ok=True)
        _give_to_pg_user(socket_dir)
    _make_reachable(data_dir)
    _make_reachable(socket_dir)
    log_file = _log_file(data_dir)
    log_file.touch(exist_ok=True)
    _give_to_pg_user(log_file)
    return socket_dir


def _pg_ctl_start_cmd(bin_dir: Path, cluster: Cluster, settings: dict[str, str] | None = None) -> list[str]:
    options = ["-p", str(cluster.port), "-k", str(cluster.socket_dir)]
    for key, value in {**SERVER_SETTINGS, **(settings or {})}.items():
        options += ["-c", f"{key}={value}"]
    # pg_ctl hands -o to a shell, hence shlex.join.
    return _as_pg_user(
        [
            str(bin_dir / "pg_ctl"),
            *("-D", str(cluster.data_dir)),
            *("-l", str(cluster.log_file)),
            "-w",
            *("-t", str(START_TIMEOUT_S)),
            *("-o", shlex.join(options)),
            "start",
        ]
    )


def start_cluster(data_dir: Path, port: int | None = None, *, certificate: ServerCertificate | None = None) -> Cluster:
    """Start (creating it first if needed) a cluster in ``data_dir`` and wait until it accepts connections.

    ``initdb`` runs only when ``data_dir`` is missing or empty, so existing data is kept. The server
    listens on ``port`` (a free port when None). If a server is already running on ``data_dir`` it is
    reused as is, on whatever port it listens on. The server log is ``<data_dir>.log`` next to the
    data directory. With a ``certificate`` the server speaks TLS (clients may still connect without it, as
    trust auth over TCP allows both).
    """
    data_dir = Path(data_dir).expanduser().resolve()
    bin_dir = find_bin_dir()
    running = _reuse_running(data_dir, port)
    if running is not None:
        return running

    socket_dir = _prepare(bin_dir, data_dir)
    settings = _install_certificate(data_dir, certificate) if certificate is not None else {}
    log_file = _log_file(data_dir)
    attempts = 5
    for attempt in range(1, attempts + 1):
        cluster = Cluster(data_dir=data_dir, port=free_port() if port is None else port, socket_dir=socket_dir)
        _clear_stale_lock_files(data_dir)
        offset = log_file.stat().st_size
        started = time.monotonic()
        try:
            _run(_pg_ctl_start_cmd(bin_dir, cluster, settings), what="pg_ctl start", timeout=START_TIMEOUT_S + 10)
        except ClusterError as exc:
            new_log = _log_tail(log_file, offset)
            if attempt < attempts and port is None and "Address already in use" in new_log:
                log.info("port %s was taken, retrying on another one", cluster.port)
                continue
            if attempt < attempts and _is_retryable(new_log):
                log.info("leftovers of a previous server in %s, retrying", data_dir)
                time.sleep(0.2 * attempt)
                continue
            raise ClusterError(f"{exc}\n--- tail of {log_file} ---\n{new_log}") from exc
        log.info("started PostgreSQL %s on port %s in %.2fs", data_dir, cluster.port, time.monotonic() - started)
        _wait_ready(cluster)
        return cluster
    raise AssertionError("unreachable")  # pragma: no cover


def stop_cluster(data_dir: Path) -> None:
    """Fast shutdown of the server running on ``data_dir``, if any (idempotent)."""
    data_dir = Path(data_dir).expanduser().resolve()
    pid = _running_pid(data_dir)
    if pid is None:
        return
    bin_dir = find_bin_dir()
    cmd = _as_pg_user([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "-t", "60", "stop"])
    try:
        _run(cmd, what="pg_ctl stop", timeout=70)
        socket_dir = _default_socket_dir(data_dir)
        if socket_dir != data_dir:
            with contextlib.suppress(OSError):
                socket_dir.rmdir()  # only when empty
    except ClusterError:
        if _running_pid(data_dir) is None:
            return  # stopped concurrently
        if pid > 0:
            # Last resort so that no server is left behind.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        raise


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m devstack.postgres", description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="create if needed and start a cluster; prints its URL")
    start.add_argument("--data-dir", type=Path, required=True)
    start.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    start.add_argument("--database", default="postgres", help="also create this database; used in the URL")
    stop = sub.add_parser("stop", help="stop the cluster running on a data directory")
    stop.add_argument("--data-dir", type=Path, required=True)
    sub.add_parser("bin-dir", help="print the directory of the PostgreSQL binaries that would be used")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.command == "start":
            cluster = start_cluster(args.data_dir, args.port)
            if args.database != "postgres":
                cluster.create_database(args.database)
            print(cluster.url(args.database))
        elif args.command == "bin-dir":
            print(find_bin_dir())
        else:
            stop_cluster(args.data_dir)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
