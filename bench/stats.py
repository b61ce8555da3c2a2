"""Small helpers: percentiles, readable numbers, plain-text tables, what machine this ran on."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence

Cell = str | int | float | None


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (fraction in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def fmt(value: Cell, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]
        return (indent + "  ".join(parts)).rstrip()

    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def section(title: str) -> str:
    return f"\n== {title} " + "=" * max(0, 96 - len(title))


def number(value: float | None, digits: int = 1) -> float | None:
    """A figure for bench/results.json: rounded, and None for a missing or NaN value (JSON has no NaN)."""
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


def machine_info() -> dict[str, str | int | None]:
    """What machine this ran on, as bench/results.json records it."""
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_optimize": sys.flags.optimize,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def machine() -> str:
    info = machine_info()
    return f"machine: nproc {info['nproc']} (cpu_count {info['cpu_count']}), {info['python']}, {info['platform']}" + (
        "" if sys.flags.optimize == 0 else f", python -O{sys.flags.optimize}"
    )


@contextlib.contextmanager
def phase(phases: dict[str, float], name: str) -> Iterator[None]:
    """Time the block into `phases[name]` (seconds), whether it ends or raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - started
