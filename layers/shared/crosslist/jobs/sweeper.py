"""The sweeper (every minute): whatever was lost, a lane is woken again and moves on by itself.

It never changes a job or a lane itself: it only wakes lanes, and the engine, holding the lane's lock,
decides. It finds lanes whose wake-up is overdue (a lost timer or message, a command past its deadline,
a parked lane due for its expiry check, a pause or backoff that ended) and jobs whose creation could
not queue their wake-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crosslist.jobs.lanes import LaneStore
from crosslist.jobs.queue import JobQueue, LaneWake

# A lane's own timer normally wakes it: the sweeper steps in only once that is clearly overdue.
OVERDUE_AFTER = timedelta(seconds=30)
# A job's creating request queues its lane itself; give it this long (it may be retried by the client).
UNQUEUED_AFTER = timedelta(minutes=1)
MAX_PER_SWEEP = 1000


@dataclass(frozen=True)
class SweepReport:
    overdue_lanes: int
    unqueued_jobs: int


class Sweeper:
    def __init__(self, store: LaneStore, jobs: JobQueue) -> None:
        self._store = store
        self._jobs = jobs

    def sweep(self) -> SweepReport:
        now = datetime.now(UTC)
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
        return SweepReport(overdue_lanes=len(overdue), unqueued_jobs=len(unqueued))
