"""An orders import now, at the top of its lane: what a pushed sale asks for.

In the notification's transaction, per user: an import of that marketplace not started yet is raised to priority 1
(it is next in its lane); one already started may have read the orders before this sale came, so another is queued
after it; none: one is created at priority 1, its idempotency key derived from the notification. Two notifications
of one user at once (eBay sends one per line item) take a transaction-scoped advisory lock on the user's lane of
imports: the second finds the import the first queued, and raises it rather than queueing a second. Once the
transaction has committed, the lane is woken (`carry_out`); a lost wake-up is the sweeper's, as for any job.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aws_lambda_powertools import Logger
from sqlalchemy import func, select

from crosslist.db.models import ACTIVE_JOB_STATUSES, MarketplaceJob
from crosslist.errors import CrosslistError, ServiceUnavailable
from crosslist.jobs.schemas import CreateJobRequest
from crosslist.jobs.service import JobService

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crosslist.jobs.queue import JobQueue
    from crosslist.marketplaces import Marketplace

logger = Logger(child=True)

PUSH_PRIORITY = 1
IMPORT_ACTION = "sync_orders"
LOCK_CLASS = 0x70757368  # "push": the advisory lock's class, apart from any other lock crosslist takes
MAX_KEY_LENGTH = 200

Outcome = Literal["created", "raised", "already_next", "refused"]


@dataclass(frozen=True)
class QueuedImport:
    user_id: str
    marketplace: Marketplace
    outcome: Outcome
    job_id: uuid.UUID | None = None
    reason: str | None = None  # why it was refused (the job's error code)


@dataclass
class ImportsToWake:
    """What a notification's transaction queued, to carry out once it has committed."""

    cause: str
    created: list[MarketplaceJob] = field(default_factory=list)
    raised: list[QueuedImport] = field(default_factory=list)


def idempotency_key(source: str, message_id: str) -> str:
    """The job key of the import a notification asks for (a long id is hashed: the key has 200 characters)."""
    key = f"push:{source}:{message_id}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"push:{source}:sha256:{hashlib.sha256(message_id.encode()).hexdigest()}"


class OrdersImports:
    def __init__(self, jobs: JobService, queue: JobQueue) -> None:
        self._jobs = jobs
        self._queue = queue

    def import_now(
        self, session: Session, user_id: str, marketplace: Marketplace, key: str, woken: ImportsToWake
    ) -> QueuedImport:
        """Have the user's orders on `marketplace` imported next, in the caller's transaction (see the module)."""
        session.execute(select(func.pg_advisory_xact_lock(LOCK_CLASS, func.hashtext(f"{user_id}:{marketplace}"))))
        waiting = session.scalar(
            select(MarketplaceJob)
            .where(
                MarketplaceJob.user_id == user_id,
                MarketplaceJob.marketplace == marketplace,
                MarketplaceJob.action_code == IMPORT_ACTION,
                MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
                MarketplaceJob.started_at.is_(None),
            )
            .order_by(MarketplaceJob.priority, MarketplaceJob.created_at)
            .limit(1)
            .with_for_update()
        )
        if waiting is not None:
            outcome: Outcome = "raised" if waiting.priority > PUSH_PRIORITY else "already_next"
            waiting.priority = min(waiting.priority, PUSH_PRIORITY)
            queued = QueuedImport(user_id, marketplace, outcome, waiting.id)
            woken.raised.append(queued)
            return queued
        request = CreateJobRequest(
            marketplace=marketplace, action=IMPORT_ACTION, priority=PUSH_PRIORITY, idempotency_key=key
        )
        try:
            with session.begin_nested():  # a refused job undoes only its own writes
                job = JobService.new_job(session, user_id, request)
                session.flush()
        except CrosslistError as refused:  # not connected any more, settings missing: polling would fail too
            return QueuedImport(user_id, marketplace, "refused", reason=refused.code)
        woken.created.append(job)
        return QueuedImport(user_id, marketplace, "created", job.id)

    def carry_out(self, woken: ImportsToWake) -> None:
        """After the commit: queue the created imports, wake the lanes of the raised ones. A failure is logged: the
        sweeper queues a job never marked queued; a raised one runs when its lane is next woken."""
        for job in woken.created:
            try:
                self._jobs.enqueue(job)
            except ServiceUnavailable:
                logger.exception("a pushed import is stored but not queued: the sweeper queues it")
        for lane in {(raised.user_id, raised.marketplace) for raised in woken.raised}:
            try:
                self._queue.wake(*lane, cause=woken.cause)
            except Exception:
                logger.exception("the lane of a raised import was not woken", extra={"lane": lane[1]})
