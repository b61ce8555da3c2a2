"""What other parts of crosslist do when a job ends or an import stores orders, without the jobs package
knowing them: the composition root (crosslist.runtime) hands the job side a JobReactions (auto-delist's,
crosslist.orders.delist.AutoDelist). `crosslist.orders` imports `crosslist.jobs`, never the reverse.

A reaction runs in the caller's transaction (a sale's delete jobs are stored with its order, or not at all) and
leaves in an AfterCommit what to carry out once that transaction has committed: lanes to wake, messages for the
user, events to dispatch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crosslist.db.models import MarketplaceJob
    from crosslist.events.events import Event
    from crosslist.jobs.queue import JobQueue
    from crosslist.workflows.base import Duplicate, OrderRecord

logger = Logger(child=True)
JsonDict = dict[str, Any]


@dataclass(frozen=True)
class LaneToWake:
    user_id: str
    marketplace: str
    cause: str  # deduplicates the wake-up (see crosslist.jobs.queue.LaneWake)
    job_ids: tuple[uuid.UUID, ...] = ()  # jobs created there: marked queued once it is woken


@dataclass
class AfterCommit:
    """What a transaction did beyond its own lane, to carry out once it has committed."""

    lanes: list[LaneToWake] = field(default_factory=list)
    messages: list[JsonDict] = field(default_factory=list)  # for the user's connections
    events: list[Event] = field(default_factory=list)  # recorded in the outbox: for the dispatcher


class JobReactions(Protocol):
    def job_ended(self, session: Session, job: MarketplaceJob, after: AfterCommit) -> None:
        """A job reached its final status, in the caller's transaction (which holds it locked)."""

    def orders_added(
        self,
        session: Session,
        user_id: str,
        marketplace: str,
        orders: list[tuple[uuid.UUID, OrderRecord]],
        after: AfterCommit,
    ) -> None:
        """Orders (stored id, order) an import just stored, in its transaction."""

    def synced(
        self, session: Session, user_id: str, marketplace: str, duplicates: list[Duplicate], after: AfterCommit
    ) -> JsonDict:
        """A sync of `marketplace` is completing, in its transaction: what else the catalogue needs
        (reconciliation); returns more of the sync's result."""


class NoReactions:
    """Nothing reacts (a store built without the composition root: tests of the job side alone)."""

    def job_ended(self, session: Session, job: MarketplaceJob, after: AfterCommit) -> None:
        pass

    def orders_added(
        self,
        session: Session,
        user_id: str,
        marketplace: str,
        orders: list[tuple[uuid.UUID, OrderRecord]],
        after: AfterCommit,
    ) -> None:
        pass

    def synced(
        self, session: Session, user_id: str, marketplace: str, duplicates: list[Duplicate], after: AfterCommit
    ) -> JsonDict:
        return {}


def wake_lanes(lanes: list[LaneToWake], queue: JobQueue, mark_queued: Callable[[list[uuid.UUID]], None]) -> None:
    """Wake each lane a committed transaction queued work in (once), and mark its new jobs queued. A failure is
    logged, not raised: the sweeper wakes the lanes of jobs never marked queued."""
    by_lane: dict[tuple[str, str], list[LaneToWake]] = {}
    for lane in lanes:
        by_lane.setdefault((lane.user_id, lane.marketplace), []).append(lane)
    for (user_id, marketplace), wakes in by_lane.items():
        try:
            queue.wake(user_id, marketplace, cause=wakes[0].cause)
            mark_queued([job_id for wake in wakes for job_id in wake.job_ids])
        except Exception:
            logger.exception(
                "a lane a sale queued work in was not woken: the sweeper will", extra={"lane": marketplace}
            )
