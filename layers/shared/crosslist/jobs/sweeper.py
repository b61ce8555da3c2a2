"""The sweeper (every minute): whatever was lost, a lane is woken again and moves on by itself.

It never changes a job or a lane itself: it only wakes lanes, and the engine, holding the lane's lock,
decides. It finds lanes whose wake-up is overdue (a lost timer or message, a command past its deadline,
a parked lane due for its expiry check, a pause or backoff that ended) and jobs whose creation could
not queue their wake-up. It also delivers the events left in the outbox by a Lambda that died between its
commit and their dispatch (crosslist.events.dispatch), once they are UNDISPATCHED_AFTER old.

It opens PostgreSQL only when that can find something: its due time (crosslist.due_times, `lanes`) says when
the soonest lane's wake-up becomes overdue, the oldest unqueued job or undispatched event becomes due, and every
change that could make any of them sooner is announced there before it commits (an event recorded announces it).
An idle system is swept without a query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crosslist.due_times import DueTimes
from crosslist.jobs.lanes import Earliest, SweptLanes
from crosslist.jobs.queue import JobQueue, LaneWake

# A lane's own timer normally wakes it: the sweeper steps in only once that is clearly overdue.
OVERDUE_AFTER = timedelta(seconds=30)
# A job's creating request queues its lane itself; give it this long (it may be retried by the client).
UNQUEUED_AFTER = timedelta(minutes=1)
MAX_PER_SWEEP = 1000
# An event is dispatched right after its commit: the sweeper delivers it only once that has clearly not happened.
UNDISPATCHED_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class SweepReport:
    overdue_lanes: int
    unqueued_jobs: int
    looked: bool = True
    undispatched_events: int = 0  # False: nothing could be found, PostgreSQL was left alone


class Sweeper:
    def __init__(
        self,
        store: SweptLanes,
        jobs: JobQueue,
        due_times: DueTimes | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        redeliver: Callable[[datetime], int] | None = None,
    ) -> None:
        """`due_times` None: every sweep looks at PostgreSQL (no DueTimes table). `redeliver`: delivers the
        events recorded before the time it is given and never dispatched, returns how many
        (crosslist.events.dispatch.Dispatcher.redeliver); None: events are not swept."""
        self._store = store
        self._redeliver = redeliver
        self._jobs = jobs
        self._due_times = due_times
        self._clock = clock or (lambda: datetime.now(UTC))

    def sweep(self) -> SweepReport:
        now = self._clock()
        if self._due_times is None:
            return self._sweep(now)
        look = self._due_times.look(now)
        if look is None:
            return SweepReport(overdue_lanes=0, unqueued_jobs=0, looked=False)
        report = self._sweep(now)
        look.found(next_sweep_finds(self._store.earliest()))
        return report

    def _sweep(self, now: datetime) -> SweepReport:
        minute = int(now.timestamp() // 60)
        overdue = self._store.overdue_lanes(now - OVERDUE_AFTER, MAX_PER_SWEEP)
        self._jobs.wake_many(
            [LaneWake(user_id=user, marketplace=marketplace, cause=f"sweep:{minute}") for user, marketplace in overdue]
        )
        unqueued = self._store.unqueued_lanes(now - UNQUEUED_AFTER, MAX_PER_SWEEP)
        wakes = {
            job_id: LaneWake(user_id=user, marketplace=mp, cause=f"created:{job_id}") for user, mp, job_id in unqueued
        }
        failed = self._jobs.wake_many(list(wakes.values()))
        self._store.mark_queued([job_id for job_id, wake in wakes.items() if wake.cause not in failed])
        events = self._redeliver(now - UNDISPATCHED_AFTER) if self._redeliver is not None else 0
        return SweepReport(overdue_lanes=len(overdue), unqueued_jobs=len(unqueued), undispatched_events=events)


def next_sweep_finds(earliest: Earliest) -> datetime | None:
    """The first moment a sweep can find something (a sweep at that moment may not yet): a lane's wake-up overdue,
    an unqueued job or an undispatched event old enough. None: nothing, whenever it runs."""
    finds: list[datetime] = []
    if earliest.wake_at is not None:
        finds.append(earliest.wake_at + OVERDUE_AFTER)
    if earliest.unqueued_created_at is not None:
        finds.append(earliest.unqueued_created_at + UNQUEUED_AFTER)
    if earliest.undispatched_created_at is not None:
        finds.append(earliest.undispatched_created_at + UNDISPATCHED_AFTER)
    return min(finds, default=None)
