"""What the due-time tests share (crosslist.due_times): the DueTimes table in memory, one clock for the schedules'
`now` and the functions' wall clock, a JobsQueue that records or loses wake-ups, and a count of what reaches
PostgreSQL through an engine."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event

from crosslist.due_times import LastLook, Watched
from crosslist.jobs.queue import CarriedReply, LaneWake


class UnreadableStore(Exception):
    """The DueTimes table cannot be reached."""


class InMemoryDueTimeStore:
    """The DueTimes table (crosslist.due_times.DueTimeStore) in memory, keeping what DynamoDueTimeStore keeps: a
    change never moves `changed_at` back; a look replaces `looked_at`, `due_at` and `fingerprint`. `failing`
    makes every call raise, as DynamoDB would when it cannot be reached."""

    def __init__(self) -> None:
        self.items: dict[Watched, LastLook] = {}
        self.failing = False
        self.reads = 0

    def last_look(self, watched: Watched) -> LastLook:
        self._fail()
        self.reads += 1
        return self.items.get(watched, LastLook())

    def changed(self, watched: Collection[Watched], at: float) -> None:
        self._fail()
        for name in watched:
            item = self.items.get(name, LastLook())
            if item.changed_at is None or item.changed_at < at:
                self.items[name] = replace(item, changed_at=at)

    def looked(self, watched: Watched, *, looked_at: float, due_at: float | None, fingerprint: str) -> None:
        self._fail()
        item = self.items.get(watched, LastLook())
        self.items[watched] = replace(item, looked_at=looked_at, due_at=due_at, fingerprint=fingerprint)

    def _fail(self) -> None:
        if self.failing:
            raise UnreadableStore("DynamoDB is unreachable")


class FakeClock:
    """One clock for everything a test runs: the schedule's `now` (call it) and the wall clock the functions
    compare their looks and announcements with (`wall`), moved on by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def wall(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class RecordingJobQueue:
    """The JobsQueue (crosslist.jobs.queue.JobQueue) that keeps what it accepted. While `losing`, every send
    fails as if SQS could not be reached (or the function died before sending): the wake-up is lost."""

    woken: list[LaneWake] = field(default_factory=list)
    losing: bool = False

    def wake(self, user_id: str, marketplace: str, cause: str, reply: CarriedReply | None = None) -> None:
        if self.losing:
            raise ConnectionError("SQS unreachable")
        self.woken.append(LaneWake(user_id=user_id, marketplace=marketplace, cause=cause, reply=reply))

    def wake_many(self, wakes: list[LaneWake]) -> set[str]:
        if self.losing:
            return {wake.cause for wake in wakes}
        self.woken.extend(wakes)
        return set()

    def causes(self) -> list[str]:
        return [wake.cause for wake in self.woken]


class DatabaseUse:
    """What reaches PostgreSQL through `engine`: connections taken from its pool and statements sent."""

    def __init__(self, engine: Engine) -> None:
        self.checkouts = 0
        self.statements: list[str] = []
        event.listen(engine, "checkout", self._checked_out)
        event.listen(engine, "before_cursor_execute", self._executing)

    def _checked_out(self, *_: Any) -> None:
        self.checkouts += 1

    def _executing(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    def since(self, mark: tuple[int, int]) -> tuple[int, int]:
        """(connections, statements) since `mark` (an earlier `now()`)."""
        return self.checkouts - mark[0], len(self.statements) - mark[1]

    def now(self) -> tuple[int, int]:
        return self.checkouts, len(self.statements)
