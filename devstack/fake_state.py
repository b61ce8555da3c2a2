"""What lets the fake marketplaces outlive a devstack restart: ids never handed out twice, and their state
saved to a file and loaded back.

The devstack keeps its PostgreSQL across restarts, and its fakes used to start their ids again: a new
item got the id of an old product's listing, and a sync tied the two together. A unique sequence hands
out ids above both the last id any unique sequence of this process handed out and the wall clock's
microseconds since 2024: a run started later begins above every id of an earlier one, unless that one
handed out more than one id per microsecond for longer than the restart took, which Python cannot (the
devstack also saves each fake's last id with its state, see `resume_after`). The ids have 14 digits, below
JavaScript's 2**53 until the 2300s. Tests that pin ids use plain sequences.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

logger = logging.getLogger("devstack")

EPOCH_SECONDS = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


class _ProcessIds:
    """The highest id any unique sequence of this process handed out."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.highest = 0


_PROCESS_IDS = _ProcessIds()


class IdSequence:
    """Increasing ids from `first`; `unique` ones are also above the clock and every unique id of this
    process (see the module). `last` is the last id handed out (`first - 1` before any)."""

    def __init__(self, first: int = 1, *, unique: bool = False) -> None:
        self.last = first - 1
        self.unique = unique
        self._lock = threading.Lock()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> int:
        with self._lock:
            if not self.unique:
                self.last += 1
                return self.last
            with _PROCESS_IDS.lock:
                # The wall clock, not a fake's own clock: tests move that one, even backwards.
                clock_floor = int((time.time() - EPOCH_SECONDS) * 1_000_000)
                self.last = max(self.last, _PROCESS_IDS.highest, clock_floor - 1) + 1
                _PROCESS_IDS.highest = self.last
                return self.last

    def resume_after(self, last: int) -> None:
        """Go on above `last`, the last id a saved run of this fake handed out."""
        with self._lock:
            self.last = max(self.last, last)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a fake's state as JSON, whole or not at all (a crash mid-write leaves the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state))
    partial.replace(path)


def load_state(path: Path) -> dict[str, Any] | None:
    """A fake's saved state; None when there is none, or it cannot be read (said in the log: the fake then
    starts empty, its ids still unique)."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as unreadable:
        logger.warning("could not read %s (%s): starting that fake empty", path, unreadable)
        return None
    return state if isinstance(state, dict) else None
