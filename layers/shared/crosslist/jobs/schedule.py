"""The periodic sync: for every user with an open connection (their browser extension can run Vinted
calls), a Vinted `sync` and `orders` job, unless one is still active. Run by the sweeper function's
sync schedule (every 30 minutes by default: the SyncIntervalMinutes parameter of template.yaml)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from crosslist.marketplaces import Marketplace

if TYPE_CHECKING:
    from crosslist.jobs.service import JobService
    from crosslist.realtime.connections import ConnectionStore

logger = Logger(child=True)

SCHEDULED: tuple[tuple[Marketplace, str], ...] = (("vinted", "sync"), ("vinted", "orders"))


@dataclass(frozen=True)
class ScheduleReport:
    users: int
    created: int
    skipped: int  # one still active, or already created by this tick
    failed: int


class ScheduledSync:
    def __init__(self, connections: ConnectionStore, jobs: JobService, clock: Callable[[], float] = time.time) -> None:
        self._connections = connections
        self._jobs = jobs
        self._clock = clock

    def run(self, interval_minutes: int) -> ScheduleReport:
        # One tick per interval: a retried schedule invocation creates nothing twice.
        tick = int(self._clock() // (interval_minutes * 60))
        users = sorted(self._connections.live_users())
        created = skipped = failed = 0
        for user_id in users:
            for marketplace, action in SCHEDULED:
                try:
                    if self._jobs.schedule(user_id, marketplace, action, tick=tick):
                        created += 1
                    else:
                        skipped += 1
                except Exception:  # one user's failure must not stop the others' syncs
                    logger.exception("scheduled job not created", extra={"user_id": user_id, "action": action})
                    failed += 1
        return ScheduleReport(users=len(users), created=created, skipped=skipped, failed=failed)
