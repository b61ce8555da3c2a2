"""bench/results.json: every section's figures in one document, merged across runs.

    {"machine": {...}, "generated_at": "...", "runs": {section: {"generated_at", "argv"}},
     "sections": {"cold": {...}, "loop": {...}, "memory": {...}, "flood": {...}, "engine": {...}}}

A run replaces the sections it measured and keeps the others already in the file (`--only X` updates X
alone); `runs` says when, and with which arguments, each section was last measured. The file is
replaced atomically: a reader never sees half of it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import machine_info

RESULTS = Path(__file__).resolve().parent / "results.json"
SECTIONS = ("cold", "loop", "memory", "flood", "engine")  # the order they run and are written in


def read(path: Path = RESULTS) -> dict[str, Any]:
    """The document in `path`; empty if there is none, or it is not a JSON object (then it is rewritten)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def merge(
    previous: Mapping[str, Any], sections: Mapping[str, Any], argv: Sequence[str], now: datetime | None = None
) -> dict[str, Any]:
    """`previous` with `sections` replacing those of the same names, stamped as measured now with `argv`."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    kept = previous.get("sections")
    kept_runs = previous.get("runs")
    merged: dict[str, Any] = {**(kept if isinstance(kept, dict) else {}), **sections}
    runs: dict[str, Any] = {
        **(kept_runs if isinstance(kept_runs, dict) else {}),
        **{name: {"generated_at": stamp, "argv": list(argv)} for name in sections},
    }
    order = [*(name for name in SECTIONS if name in merged), *sorted(set(merged) - set(SECTIONS))]
    return {
        "machine": machine_info(),
        "generated_at": stamp,
        "runs": {name: runs[name] for name in order if name in runs},
        "sections": {name: merged[name] for name in order},
    }


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has neither."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write(sections: Mapping[str, Any], argv: Sequence[str], path: Path = RESULTS) -> dict[str, Any]:
    """Merge `sections` into the document at `path` and replace it atomically; returns what was written."""
    document = _finite(merge(read(path), sections, argv))
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), path.stat().st_mode & 0o777 if path.exists() else 0o644)  # not mkstemp's 0600
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return dict(document)
