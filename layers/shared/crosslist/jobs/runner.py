"""Run a queued job: claim it atomically, run its remaining steps, save progress after each one.

Nothing is lost and nothing runs twice:
- a claim is one UPDATE … WHERE status = 'pending' (or a running job whose lease expired): a duplicate
  delivery or a concurrent Lambda finds nothing to claim;
- every later write presents the claim's lease token, so a run that lost its lease changes nothing;
- progress (current step and accumulated data) is committed after each step, so a retry resumes at
  the step that failed and never repeats one that succeeded;
- a job that must run again is committed as pending *before* its message is queued; if queueing
  fails the current SQS message is reported failed, and its redelivery claims the job.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aws_lambda_powertools import Logger
from sqlalchemy import Table, and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import JobStatus, ListingStatus, MarketplaceJob, MarketplaceListing, Product
from crosslist.jobs.queue import JobQueue
from crosslist.realtime.messages import (
    batch_progress_message,
    cancelled_message,
    completed_message,
    failed_message,
    progress_message,
)
from crosslist.realtime.notifier import Notifier
from crosslist.realtime.relay import ConnectionLost, NoPluginConnection, PluginRelay, PluginTimeout
from crosslist.workflows.base import Completion, JobContext, Reply, Step, StepAction, StepFailed
from crosslist.workflows.registry import find_workflow

logger = Logger(child=True)

# Time kept in hand after a step's own timeout for the writes around it.
STEP_SAFETY_MARGIN_MS = 10_000
# How many tabs a repeatable command may be sent to when each closes before answering.
MAX_SENDS_ON_LOST_TABS = 3
# A claim's lease outlives the invocation that holds it by this much.
LEASE_MARGIN = timedelta(seconds=30)


class RunOutcome(enum.StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    RETRY_QUEUED = "retry_queued"
    CONTINUED = "continued"  # out of invocation time: progress saved, job queued to go on
    NOT_CLAIMED = "not_claimed"  # duplicate delivery, already running elsewhere, or already finished
    CANCELLED = "cancelled"
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    user_id: str
    marketplace: str
    action_code: str
    product_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    input: dict[str, Any]
    accumulated: dict[str, Any]
    current_step: int
    attempts: int
    max_attempts: int
    step_timeout_ms: int
    lease_token: uuid.UUID
    cancel_requested: bool

    @property
    def batch_ref(self) -> str | None:
        return str(self.batch_id) if self.batch_id is not None else None


class LeaseLost(Exception):
    pass


class JobRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        queue: JobQueue,
        notifier: Notifier,
        plugin: PluginRelay,
    ) -> None:
        self._sessions = sessions
        self._queue = queue
        self._notifier = notifier
        self._plugin = plugin

    def run(self, job_id: uuid.UUID, user_id: str, remaining_ms: Callable[[], int]) -> RunOutcome:
        job = self._claim(job_id, user_id, lease=timedelta(milliseconds=remaining_ms()) + LEASE_MARGIN)
        if job is None:
            logger.info("job not claimed", extra={"job_id": str(job_id)})
            return RunOutcome.NOT_CLAIMED
        logger.append_keys(job_id=str(job.id), user_id=job.user_id)
        try:
            return self._run_claimed(job, remaining_ms)
        except LeaseLost:
            logger.warning("lease lost: another run owns this job now")
            return RunOutcome.LEASE_LOST
        finally:
            logger.remove_keys(["job_id", "user_id"])

    def _run_claimed(self, job: ClaimedJob, remaining_ms: Callable[[], int]) -> RunOutcome:
        if job.attempts > job.max_attempts:  # earlier runs died without releasing their lease
            return self._fail(job, StepFailed("attempts_exhausted", "the job's runs kept dying", retryable=False))
        workflow = find_workflow(job.marketplace, job.action_code)
        if workflow is None:
            failure = StepFailed("action_not_available", f"no workflow runs {job.action_code}_{job.marketplace}")
            return self._fail(job, failure)

        steps = workflow.steps(job.input)
        context = JobContext(
            job_id=str(job.id),
            user_id=job.user_id,
            input=job.input,
            accumulated=dict(job.accumulated),
            step_timeout_ms=job.step_timeout_ms,
        )
        cancel_requested = job.cancel_requested
        for index in range(job.current_step, len(steps)):
            if cancel_requested:  # never in the middle of a marketplace call: between two steps
                return self._cancel(job)
            if remaining_ms() < job.step_timeout_ms + STEP_SAFETY_MARGIN_MS:
                return self._continue_later(job)
            step = steps[index]
            try:
                action = workflow.plan(step, context)
                context.accumulated = workflow.apply(step, context, self._perform(job, step, action))
            except StepFailed as failure:
                logger.info("step failed", extra={"step": step.name, "error": failure.error})
                return self._retry_or_fail(job, failure)
            except Exception as error:
                # DynamoDB, the gateway or a bug failing mid-step: the job must not stay "running" until
                # SQS redelivers its message (30 minutes). It is retried now, like any retryable failure.
                logger.exception("step failed on an infrastructure error", extra={"step": step.name})
                reason = f"{type(error).__name__}: {str(error)[:200]}"
                return self._retry_or_fail(job, StepFailed("infrastructure_error", reason))
            cancel_requested = self._save_progress(job, context.accumulated, index + 1)
            self._notifier.to_user(
                job.user_id,
                progress_message(
                    str(job.id), step.name, index + 1, len(steps), step.description, batch_id=job.batch_ref
                ),
            )
        completion = workflow.complete(context)
        self._complete(job, context.accumulated, completion)
        self._notifier.to_user(job.user_id, completed_message(str(job.id), completion.result))
        self._report_batch(job)
        return RunOutcome.COMPLETED

    def _perform(self, job: ClaimedJob, step: Step, action: StepAction) -> Reply:
        """Carry out what a step asked for. Vinted commands go to the user's browser extension; when the tab
        running one closes without answering, a repeatable command goes to the user's next tab at once,
        without using up an attempt."""
        sends = 0
        while True:
            sends += 1
            try:
                reply = self._plugin.call(
                    user_id=job.user_id,
                    job_id=str(job.id),
                    step=step.name,
                    command=action.command,
                    timeout_ms=job.step_timeout_ms,
                )
            except ConnectionLost:
                if action.repeatable and sends < MAX_SENDS_ON_LOST_TABS:
                    logger.info("tab closed mid-command: sending it to the next tab", extra={"step": step.name})
                    continue
                raise StepFailed(
                    "connection_lost", "the tab running the command closed before answering; it will be retried"
                ) from None
            except NoPluginConnection as unavailable:
                raise StepFailed(unavailable.code, unavailable.message, retryable=False) from None
            except PluginTimeout:
                raise StepFailed(
                    "plugin_timeout", f"the browser extension did not answer within {job.step_timeout_ms} ms"
                ) from None
            return Reply(reply.success, reply.result, reply.error)

    def _claim(self, job_id: uuid.UUID, user_id: str, lease: timedelta) -> ClaimedJob | None:
        job_table = cast(Table, MarketplaceJob.__table__)
        lease_expired = and_(job_table.c.status == JobStatus.RUNNING, job_table.c.lease_expires_at < func.now())
        token = uuid.uuid4()
        statement = (
            update(job_table)
            .where(
                job_table.c.id == job_id,
                job_table.c.user_id == user_id,
                or_(job_table.c.status == JobStatus.PENDING, lease_expired),
            )
            .values(
                status=JobStatus.RUNNING,
                lease_token=token,
                lease_expires_at=func.now() + lease,
                started_at=func.coalesce(job_table.c.started_at, func.now()),
                # Re-claiming a job whose run died counts as a new attempt.
                attempts=case((lease_expired, job_table.c.attempts + 1), else_=func.greatest(job_table.c.attempts, 1)),
                updated_at=func.now(),
            )
            .returning(job_table)
        )
        with transaction(self._sessions) as session:
            row = session.execute(statement).mappings().one_or_none()
        if row is None:
            return None
        return ClaimedJob(
            id=row["id"],
            user_id=row["user_id"],
            marketplace=row["marketplace"],
            action_code=row["action_code"],
            product_id=row["product_id"],
            batch_id=row["batch_id"],
            input=row["input"],
            accumulated=row["accumulated_data"] or {},
            current_step=row["current_step"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            step_timeout_ms=row["step_timeout_ms"],
            lease_token=token,
            cancel_requested=row["cancel_requested_at"] is not None,
        )

    def _update_owned(self, session: Session, job: ClaimedJob, **values: Any) -> bool:
        """Write the job if this run still owns it (else LeaseLost); returns whether a cancel was asked."""
        cancel_requested_at = session.execute(
            update(MarketplaceJob)
            .where(
                MarketplaceJob.id == job.id,
                MarketplaceJob.user_id == job.user_id,
                MarketplaceJob.status == JobStatus.RUNNING,
                MarketplaceJob.lease_token == job.lease_token,
            )
            .values(updated_at=func.now(), **values)
            .returning(MarketplaceJob.cancel_requested_at)
        ).one_or_none()
        if cancel_requested_at is None:
            raise LeaseLost(str(job.id))
        return cancel_requested_at[0] is not None

    def _save_progress(self, job: ClaimedJob, accumulated: dict[str, Any], completed_steps: int) -> bool:
        """Commit a step's result; returns whether the user asked to cancel meanwhile."""
        with transaction(self._sessions) as session:
            return self._update_owned(session, job, accumulated_data=accumulated, current_step=completed_steps)

    def _cancel(self, job: ClaimedJob) -> RunOutcome:
        self._end(job, JobStatus.CANCELLED)
        logger.info("job cancelled at a step boundary")
        self._notifier.to_user(job.user_id, cancelled_message(str(job.id)))
        self._report_batch(job)
        return RunOutcome.CANCELLED

    def _end(self, job: ClaimedJob, status: JobStatus, **values: Any) -> None:
        """The job is over (failed or cancelled): its lease goes with it."""
        with transaction(self._sessions) as session:
            self._update_owned(
                session, job, status=status, lease_token=None, lease_expires_at=None, completed_at=func.now(), **values
            )

    def _complete(self, job: ClaimedJob, accumulated: dict[str, Any], completion: Completion) -> None:
        # Job and listing change in one transaction: the result is applied exactly once.
        with transaction(self._sessions) as session:
            if completion.listing is not None and job.product_id is not None:
                # Taken first, as job creation takes it: a publish created meanwhile either sees this
                # listing or is refused by the one-active-job index, never both missed.
                session.execute(select(Product.id).where(Product.id == job.product_id).with_for_update())
            self._update_owned(
                session,
                job,
                status=JobStatus.COMPLETED,
                accumulated_data=accumulated,
                result=completion.result,
                error=None,
                lease_token=None,
                lease_expires_at=None,
                completed_at=func.now(),
            )
            if completion.listing is not None and job.product_id is not None:
                listing = completion.listing
                upsert = insert(MarketplaceListing).values(
                    id=uuid.uuid4(),
                    user_id=job.user_id,
                    product_id=job.product_id,
                    marketplace=job.marketplace,
                    external_id=listing.external_id,
                    url=listing.url,
                    status=ListingStatus.ACTIVE,
                    last_synced_at=func.now(),
                )
                session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["user_id", "product_id", "marketplace"],
                        set_={
                            "external_id": upsert.excluded.external_id,
                            "url": upsert.excluded.url,
                            "status": upsert.excluded.status,
                            "last_synced_at": func.now(),
                            "updated_at": func.now(),
                        },
                    )
                )

    def _retry_or_fail(self, job: ClaimedJob, failure: StepFailed) -> RunOutcome:
        if not failure.retryable or job.attempts >= job.max_attempts:
            return self._fail(job, failure)
        self._release(job, attempts=job.attempts + 1, error=failure.error)
        self._queue.enqueue(job.id, job.user_id, job.marketplace, deduplication_id=f"{job.id}:retry:{job.attempts}")
        self._notifier.to_user(job.user_id, failed_message(str(job.id), failure.error, retryable=True))
        return RunOutcome.RETRY_QUEUED

    def _continue_later(self, job: ClaimedJob) -> RunOutcome:
        logger.info("out of invocation time: job continues in a new invocation")
        self._release(job, attempts=job.attempts, error=None)
        self._queue.enqueue(job.id, job.user_id, job.marketplace, deduplication_id=f"{job.id}:continue:{uuid.uuid4()}")
        return RunOutcome.CONTINUED

    def _release(self, job: ClaimedJob, attempts: int, error: dict[str, str] | None) -> None:
        with transaction(self._sessions) as session:
            self._update_owned(
                session,
                job,
                status=JobStatus.PENDING,
                attempts=attempts,
                error=error,
                lease_token=None,
                lease_expires_at=None,
                next_attempt_at=datetime.now(UTC),
            )

    def _fail(self, job: ClaimedJob, failure: StepFailed) -> RunOutcome:
        self._end(job, JobStatus.FAILED, error=failure.error)
        self._notifier.to_user(job.user_id, failed_message(str(job.id), failure.error, retryable=False))
        self._report_batch(job)
        return RunOutcome.FAILED

    def _report_batch(self, job: ClaimedJob) -> None:
        """A job of a batch ended: the user sees the batch's counts move."""
        if job.batch_id is None:
            return
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(MarketplaceJob.status, func.count())
                .where(MarketplaceJob.batch_id == job.batch_id, MarketplaceJob.user_id == job.user_id)
                .group_by(MarketplaceJob.status)
            ).all()
        counts = dict.fromkeys((status.value for status in JobStatus), 0)
        counts.update({status.value: total for status, total in rows})
        self._notifier.to_user(job.user_id, batch_progress_message(str(job.batch_id), counts))
