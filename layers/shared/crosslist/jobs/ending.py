"""The one place a job ends: its final status set, its end recorded as an event (the outbox, in the same
transaction), what waited for it told (JobReactions: auto-delist's waiting actions, a product to delete once
delisted).

The engine ends its jobs through its lane transaction (crosslist.jobs.lanes: `save` of a job that reached a
final status calls `job_ended`); a cancel over HTTP and a job a sale supersedes call `end_job`. Either way
the same event is recorded and the same reactions run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crosslist.db.models import JobStatus, MarketplaceJob
from crosslist.events import outbox
from crosslist.events.events import Event, EventType
from crosslist.realtime.messages import cancelled_message, completed_message, failed_message

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crosslist.jobs.reactions import AfterCommit, JobReactions

JsonDict = dict[str, Any]

EVENT_TYPES: dict[JobStatus, EventType] = {
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}


def end_message(job_id: str, status: JobStatus, *, result: JsonDict | None, error: JsonDict | None) -> JsonDict:
    """What the user's connections are told of a job's end (docs/websocket-protocol.md)."""
    if status is JobStatus.COMPLETED:
        return completed_message(job_id, result or {})
    if status is JobStatus.FAILED:
        return failed_message(job_id, error or {}, retryable=False)
    return cancelled_message(job_id)


def end_job(
    session: Session,
    job: MarketplaceJob,
    status: JobStatus,
    *,
    reactions: JobReactions,
    after: AfterCommit,
    error: JsonDict | None = None,
    tell: bool = True,
) -> Event:
    """End `job` (locked by the caller) with `status`, in the caller's transaction. `tell`: the user's
    connections are told of it (a cancel over HTTP is answered by its response instead)."""
    final_status(job, status, error=error)
    return job_ended(session, job, reactions=reactions, after=after, tell=tell)


def final_status(job: MarketplaceJob, status: JobStatus, *, error: JsonDict | None = None) -> None:
    """The fields of a job's end, set (a caller that must flush them before `job_ended`: a superseded job)."""
    job.status = status
    job.completed_at = datetime.now(UTC)
    job.wait_reason = job.wait_until = None
    if error is not None:
        job.error = error


def job_ended(
    session: Session, job: MarketplaceJob, *, reactions: JobReactions, after: AfterCommit, tell: bool = True
) -> Event:
    """`job` has just reached its final status in this transaction: its event is recorded, its reactions run."""
    message = end_message(str(job.id), job.status, result=job.result, error=job.error) if tell else None
    event = Event(
        type=EVENT_TYPES[job.status],
        user_id=job.user_id,
        payload={
            "job_id": str(job.id),
            "marketplace": job.marketplace,
            "action": job.action_code,
            "product_id": str(job.product_id) if job.product_id is not None else None,
            "status": job.status.value,
            "message": message,
        },
    )
    outbox.record(session, event)
    after.events.append(event)
    reactions.job_ended(session, job, after)
    return event
