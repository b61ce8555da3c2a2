"""When a lane's next Vinted call may go out: spaced like a person, with pauses and an hourly write budget.

No sleeping: a Lambda that sleeps between calls is billed for idling, holds a worker that other lanes
need, and can run out of time mid-job. So this module only answers *when*; the engine sets a timer for
that moment and ends the invocation (see MARKETPLACES.md, "Anti-bot (DataDome) and pacing").

Stored draws: the lane's state lives as JSON in PostgreSQL between invocations and `due_at` may be
asked again on every wake-up. Drawing the gap there would move the target on each ask (and, asked
repeatedly, drift towards short gaps). So every random value is drawn once, in `record`, and kept in
the state; `due_at` is then a pure function of (state, kind, config). The next call's kind is not
known at `record` time, so the gap is stored as a fraction of whichever kind's range applies.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from crosslist.workflows.base import CallKind

if TYPE_CHECKING:
    from crosslist.settings import Settings

HOUR = 3600.0
# Writes and deletes share the hourly budget; reads do not count and are never held by it.
BUDGETED: frozenset[CallKind] = frozenset({"write", "delete"})


@dataclass(frozen=True)
class PacingConfig:
    enabled: bool
    read: tuple[float, float]
    write: tuple[float, float]
    delete: tuple[float, float]
    min_gap: float
    pause_every: tuple[int, int]
    pause: tuple[float, float]
    writes_per_hour: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PacingConfig:
        def seconds(value: tuple[float, float]) -> tuple[float, float]:
            return float(value[0]), float(value[1])

        every = settings.pacing_pause_every
        return cls(
            enabled=settings.pacing,
            read=seconds(settings.pacing_read_seconds),
            write=seconds(settings.pacing_write_seconds),
            delete=seconds(settings.pacing_delete_seconds),
            min_gap=float(settings.pacing_min_gap_seconds),
            pause_every=(round(every[0]), round(every[1])),
            pause=seconds(settings.pacing_pause_seconds),
            writes_per_hour=settings.pacing_writes_per_hour,
        )

    def gap_range(self, kind: CallKind) -> tuple[float, float]:
        return {"read": self.read, "write": self.write, "delete": self.delete}[kind]


@dataclass(frozen=True)
class PacingState:
    last_call_at: float | None = None  # epoch seconds of the lane's previous call
    gap_draw: float = 0.0  # in [0, 1): where the next gap falls within its kind's range
    calls_since_pause: int = 0
    pause_after: int = 0  # 0 = not drawn yet
    pause_draw: float = 0.0
    write_times: tuple[float, ...] = ()  # epoch seconds of writes/deletes still inside the last hour

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "write_times": list(self.write_times)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PacingState:
        """Unknown keys are ignored; a missing or unreadable value takes its default (a fresh lane)."""
        if not isinstance(data, dict):
            return cls()
        fresh, values = cls(), {}
        for field in fields(cls):
            default = getattr(fresh, field.name)
            try:
                values[field.name] = _parse(field.name, data.get(field.name, default), default)
            except (TypeError, ValueError):
                values[field.name] = default
        return cls(**values)


def _parse(name: str, value: Any, default: Any) -> Any:
    if value is None or value is default:
        return default
    if name == "write_times":
        return tuple(sorted(float(time) for time in value))
    return int(value) if isinstance(default, int) else float(value)


def _within(low_high: tuple[float, float], draw: float) -> float:
    low, high = low_high
    return low + draw * (high - low)


def pause_due(state: PacingState, config: PacingConfig) -> bool:
    """Whether the gap before the next call includes the long pause.

    So the engine can tell the user "pausing like a person" rather than just "waiting".
    """
    return state.pause_after > 0 and state.calls_since_pause >= state.pause_after


def due_at(state: PacingState, kind: CallKind, config: PacingConfig) -> float:
    """Epoch seconds at which a call of `kind` may be sent (0.0 when it may go at once).

    The hourly budget has no `now` to measure "the last hour" from, so it is measured from the lane's
    previous call: a write older than `last_call_at - 1 h` cannot hold any call, since every call is
    after `last_call_at` anyway. With the budget used up, the call is due when the oldest write that
    still counts leaves the hour (`oldest + 1 h`), i.e. once fewer than `writes_per_hour` remain in it.
    """
    if not config.enabled or state.last_call_at is None:
        return 0.0
    gap = max(config.min_gap, _within(config.gap_range(kind), state.gap_draw))
    if pause_due(state, config):
        gap += _within(config.pause, state.pause_draw)
    due = state.last_call_at + gap
    if kind in BUDGETED:
        counted = [time for time in state.write_times if time > state.last_call_at - HOUR]
        if len(counted) >= config.writes_per_hour:
            due = max(due, counted[-config.writes_per_hour] + HOUR)
    return due


def record(state: PacingState, kind: CallKind, now: float, config: PacingConfig, rng: random.Random) -> PacingState:
    """The state after a call of `kind` was sent at `now`: draws the next gap (and pause) and counts the write."""
    calls, pause_after, pause_draw = state.calls_since_pause + 1, state.pause_after, state.pause_draw
    if pause_after == 0 or pause_due(state, config):  # a fresh lane, or this call came after the pause
        calls = 1
        pause_after = max(1, rng.randint(*sorted(config.pause_every)))
        pause_draw = rng.random()
    write_times = [time for time in state.write_times if time > now - HOUR]
    if kind in BUDGETED:
        write_times.append(now)
    return PacingState(
        last_call_at=now,
        gap_draw=rng.random(),
        calls_since_pause=calls,
        pause_after=pause_after,
        pause_draw=pause_draw,
        # Only the latest `writes_per_hour` can ever hold a call: keep the JSON small.
        write_times=tuple(sorted(write_times)[-config.writes_per_hour :]),
    )
