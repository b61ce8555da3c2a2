"""Cold start: import each function's module in a fresh interpreter, as Lambda's init phase does.

Twice: with the dependencies' bytecode at hand (what `make sam-build` and `make deploy` ship), and from sources
alone (what a plain `sam build` ships: Lambda's code directories are read-only, so every cold start compiled each
module it imported and could keep nothing).
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import fmt, median, number, section, table

REPO = Path(__file__).resolve().parent.parent
# The WebSocket handlers are on the user's path: they must not load the database side at all.
NO_DATABASE = ("ws_connect", "ws_message")
# What each function's first invocation builds through crosslist.runtime (clients, engine, services:
# nothing that sends a request), so that an import made lazy shows up here instead of disappearing.
FIRST_USE = {
    "create_job": ("token_verifier", "job_service"),
    "oauth_refresh": ("sessions",),
    "process_job": ("lane_engine",),
    "products": ("token_verifier", "product_service"),
    "ws_connect": ("token_verifier", "connections"),
    "ws_message": ("plugin_results",),
}

# Runs in the child: time load_module alone (not the interpreter's start), count what it loaded, and
# record every socket connect so an import that reaches for the network shows up. Then time building
# what the first invocation asks crosslist.runtime for (argv[2:]): the rest of the cold start.
_PROBE = """
import json, socket, sys, time
from pathlib import Path

attempts = []
_connect = socket.socket.connect

def _recording_connect(self, address):
    attempts.append(repr(address))
    return _connect(self, address)

socket.socket.connect = _recording_connect
from devstack.lambdas import load_module

before = set(sys.modules)
started = time.perf_counter()
load_module(Path(sys.argv[1]))
elapsed_ms = (time.perf_counter() - started) * 1000
loaded = set(sys.modules) - before
sqlalchemy = [m for m in sys.modules if m == "sqlalchemy" or m.startswith("sqlalchemy.")]

from crosslist import runtime

started = time.perf_counter()
for factory in sys.argv[2:]:
    getattr(runtime, factory)()
first_use_ms = (time.perf_counter() - started) * 1000
print(json.dumps({
    "ms": elapsed_ms, "first_use_ms": first_use_ms, "modules": len(loaded), "sqlalchemy": len(sqlalchemy),
    "connects": attempts,
}))
"""


@dataclass
class ColdStart:
    function: str
    import_ms: list[float] = field(default_factory=list)
    first_use_ms: list[float] = field(default_factory=list)  # the adapters its first invocation builds
    process_ms: list[float] = field(default_factory=list)  # interpreter start + import + first use + exit
    modules: int = 0
    sqlalchemy_modules: int = 0
    connects: list[str] = field(default_factory=list)
    error: str | None = None
    # The same, from sources alone (no bytecode for the dependencies and crosslist; the runtime's own has it).
    source_import_ms: list[float] = field(default_factory=list)
    source_first_use_ms: list[float] = field(default_factory=list)


def probe_environment() -> dict[str, str]:
    """Like the test suite's: a region, fake credentials, no tracing, a JWT secret, a database URL
    that nothing may connect to (the discard port: a connection attempt fails loudly)."""
    kept = ("PATH", "HOME", "LANG", "TZ", "SYSTEMROOT")
    return {
        **{k: os.environ[k] for k in kept if k in os.environ},
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "crosslist",
        "POWERTOOLS_METRICS_NAMESPACE": "Crosslist",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "JWT_ALGORITHM": "HS256",
        "JWT_SECRET": secrets.token_urlsafe(32),
        "DATABASE_URL": "postgresql+pg8000://bench@127.0.0.1:9/not-connected",
        "CONNECTIONS_TABLE": "ConnectionsTable",
        "PENDING_COMMANDS_TABLE": "PendingCommandsTable",
        "WEBSOCKET_ENDPOINT": "https://websocket.invalid/prod",
        "JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo",
        "TIMERS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/timers",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def function_names(root: Path = REPO) -> list[str]:
    return sorted(p.name for p in (root / "functions").iterdir() if (p / "app.py").is_file())


def _probe_once(name: str, environment: dict[str, str], result: ColdStart, sources: Path | None = None) -> None:
    """One cold start of `name`; from the `sources` tree alone (see `sources_only`) when given."""
    command = [sys.executable, "-c", _PROBE]
    if sources is not None:  # the bare interpreter: no site-packages, only the tree (and the repo, for the probe)
        command = [getattr(sys, "_base_executable", sys.executable), "-S", "-c", _PROBE]
        environment = {**environment, "PYTHONPATH": str(sources)}
    started = time.perf_counter()
    completed = subprocess.run(
        [*command, str(Path("functions") / name), *FIRST_USE.get(name, ())],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        result.error = lines[-1] if lines else f"exit {completed.returncode}"
        return
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    if sources is not None:
        result.source_import_ms.append(float(measured["ms"]))
        result.source_first_use_ms.append(float(measured["first_use_ms"]))
        return
    result.import_ms.append(float(measured["ms"]))
    result.first_use_ms.append(float(measured["first_use_ms"]))
    result.process_ms.append(wall_ms)
    result.modules = int(measured["modules"])
    result.sqlalchemy_modules = int(measured["sqlalchemy"])
    result.connects = [str(c) for c in measured["connects"]]


@contextmanager
def sources_only() -> Iterator[Path]:
    """The installed dependencies and crosslist as a plain `sam build` ships them: sources, no bytecode. Hard
    links where the file system allows (a copy otherwise); PYTHONDONTWRITEBYTECODE keeps it so."""
    with tempfile.TemporaryDirectory(
        prefix="cold-sources-", dir=REPO / "build" if (REPO / "build").is_dir() else None
    ) as tmp:
        tree = Path(tmp) / "site"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pth", "__editable__*")

        def link(source: str, target: str) -> None:
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)

        shutil.copytree(sysconfig.get_paths()["purelib"], tree, ignore=skip, copy_function=link)
        shutil.copytree(REPO / "layers" / "shared" / "crosslist", tree / "crosslist", ignore=skip, copy_function=link)
        yield tree


def measure(runs: int = 3, root: Path = REPO) -> list[ColdStart]:
    names = function_names(root)
    results = {name: ColdStart(name) for name in names}
    environment = probe_environment()
    with sources_only() as sources:
        for _ in range(runs):  # round-robin: a slow moment of the machine spreads over every function
            for name in names:
                if results[name].error is None:
                    _probe_once(name, environment, results[name])
                if results[name].error is None:
                    _probe_once(name, environment, results[name], sources)
    return [results[name] for name in names]


@dataclass(frozen=True)
class Before:
    """An earlier run's cold section (bench/results.json), shown beside this one's."""

    label: str  # its Python and date
    figures: dict[str, Any]

    def median(self, function: str, measure: str) -> float | None:
        value = self.figures.get("functions", {}).get(function, {}).get(measure)
        value = value.get("median") if isinstance(value, dict) else value
        return float(value) if isinstance(value, int | float) else None


def before(document: dict[str, Any]) -> Before | None:
    """The cold section of a results document, if it has one."""
    figures = document.get("sections", {}).get("cold")
    if not isinstance(figures, dict):
        return None
    python = figures.get("python") or document.get("machine", {}).get("python", "?")
    stamp = str(document.get("runs", {}).get("cold", {}).get("generated_at", "?"))[:10]
    return Before(f"{python}, {stamp}", figures)


def report(results: list[ColdStart], runs: int, previous: Before | None = None) -> str:
    errors = any(r.error for r in results)
    headers = [
        "function",
        "import ms",
        "min",
        "max",
        "first use ms",
        "process ms",
        "import, sources only",
        "first use, sources only",
        *(["import before", "process before"] if previous else []),
        "modules loaded",
        "sqlalchemy mods",
        "connects",
    ]
    rows = []
    for r in results:
        row = [
            r.function,
            fmt(median(r.import_ms)),
            fmt(min(r.import_ms) if r.import_ms else None),
            fmt(max(r.import_ms) if r.import_ms else None),
            fmt(median(r.first_use_ms)),
            fmt(median(r.process_ms)),
            fmt(median(r.source_import_ms)),
            fmt(median(r.source_first_use_ms)),
            *(
                [fmt(previous.median(r.function, "import_ms")), fmt(previous.median(r.function, "process_ms"))]
                if previous
                else []
            ),
            fmt(r.modules),
            fmt(r.sqlalchemy_modules),
            fmt(len(r.connects)),
        ]
        rows.append([*row, r.error or ""] if errors else row)
    lines = [
        section(f"cold start: import of each function's module in a fresh interpreter (median of {runs})"),
        table([*headers, "error"] if errors else headers, rows),
        "  import ms: load_module alone; first use ms: then building what its first invocation asks crosslist.runtime"
        " for (clients, engine, services; no request sent); process ms: interpreter start + import + first use +"
        " exit, seen from outside; sources only: the same without any bytecode for the dependencies and crosslist,"
        " as Lambda ran a plain `sam build` (make sam-build and make deploy compile it: compile-build)"
        + (f"; before: the previous run's figures ({previous.label}, with bytecode)" if previous else ""),
    ]
    by_name = {r.function: r for r in results}
    for name in NO_DATABASE:
        handler = by_name.get(name)
        if handler is None:
            lines.append(f"  check: {name} not found in functions/")
            continue
        verdict = "OK" if handler.error is None and handler.sqlalchemy_modules == 0 else "NOT OK"
        lines.append(
            f"  check: {name} loads {handler.sqlalchemy_modules} sqlalchemy module(s) (expected 0) ........ {verdict}"
        )
    connecting = [r.function for r in results if r.connects]
    lines.append(
        "  check: no import opened a socket ........ "
        + ("OK" if not connecting else f"NOT OK ({', '.join(connecting)})")
    )
    return "\n".join(lines)


def figures(results: list[ColdStart], runs: int) -> dict[str, Any]:
    """The section's figures for bench/results.json: what `report` prints, as numbers."""
    by_name = {r.function: r for r in results}
    return {
        "runs": runs,
        "python": platform.python_version(),
        "functions": {
            r.function: {
                "import_ms": {
                    "median": number(median(r.import_ms)),
                    "min": number(min(r.import_ms) if r.import_ms else None),
                    "max": number(max(r.import_ms) if r.import_ms else None),
                },
                "first_use_ms": number(median(r.first_use_ms)),
                "process_ms": number(median(r.process_ms)),
                "sources_only": {
                    "import_ms": number(median(r.source_import_ms)),
                    "first_use_ms": number(median(r.source_first_use_ms)),
                },
                "modules": r.modules,
                "sqlalchemy_modules": r.sqlalchemy_modules,
                "connects": len(r.connects),
                "error": r.error,
            }
            for r in results
        },
        "checks": {
            "no_database": {
                name: (handler := by_name.get(name)) is not None
                and handler.error is None
                and handler.sqlalchemy_modules == 0
                for name in NO_DATABASE
            },
            "no_socket": not any(r.connects for r in results),
        },
    }
