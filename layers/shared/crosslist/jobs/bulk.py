"""Bulk calls: one marketplace call carrying the same step of several jobs of one batch (eBay's bulk API).

When the lane's job belongs to a batch and its step can go in bulk (crosslist.workflows.bulk), the engine looks at
the batch's next jobs queued in the lane (`LaneTransaction.batch_queue`, at most the workflow's `max_bulk`):
- one still at an earlier step, ready to go, goes first: the batch's jobs reach each bulk step together (a job
  whose offer existed and needs its own PUT, one verifying a lost write, catches up instead of going alone);
- else those at the same step (ready, nothing to verify) go with it: one call. Jobs alone, outside a batch, or
  verifying a write whose reply was lost take the single-call path as before.

What the lane records. The call is the lane's one call in flight, recorded and committed before it is sent, as any
call: `in_flight` names the lane's job (`job_id`, which holds the lane) and, under `bulk`, every job it carries and
its item ([{"job_id", "item"}], e.g. the SKU). The other jobs it carries are `running` while it is in flight (a
cancel waits for the step boundary); between calls they are `pending` again, with their progress saved, so the
lane's queue finds them, the user may cancel one at once (it leaves the group), and a job of higher priority goes
before the next bulk call (crosslist.jobs.engine gives way for it: never held up more than one call).

A lost reply (the invocation died, a 5xx, a timeout) is handled per carried job as the engine handles a single one:
a write that is not repeatable (eBay's bulkCreateOffer) marks each job's step unconfirmed, and each job verifies
its own (getOffers by SKU) before anything is created again; a repeatable one (inventory items, publishing) is
simply planned again. A reply is split by the workflow: each job applies its own part, fails alone, or (left out:
not carried out) goes again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from crosslist.db.models import JobStatus
from crosslist.jobs.lanes import Job

BULK = "bulk"  # in_flight's list of the jobs a bulk call carries


def ready(job: Job, now: float) -> bool:
    """Whether a queued job of the batch may go now: not waiting out a backoff, not asked to stop, not parked."""
    return (
        not job.cancel_requested
        and job.status is not JobStatus.WAITING_FOR_PLUGIN
        and (job.next_attempt_at is None or job.next_attempt_at.timestamp() <= now)
    )


def behind(window: list[Job], job: Job, now: float) -> Job | None:
    """The first of the batch's next jobs still at an earlier step than `job`, ready to catch up."""
    return next(
        (
            other
            for other in window
            if other.id != job.id
            and other.action_code == job.action_code
            and other.current_step < job.current_step
            and ready(other, now)
        ),
        None,
    )


def alongside(window: list[Job], job: Job, now: float) -> list[Job]:
    """The batch's next jobs at `job`'s step that a call may carry with it (not one verifying a lost write)."""
    return [
        other
        for other in window
        if other.id != job.id
        and other.action_code == job.action_code
        and other.current_step == job.current_step
        and other.unconfirmed_step != other.current_step
        and ready(other, now)
    ]


def carry(job: Job, now: float) -> None:
    """A job a call carries beside the lane's own: running while the call is in flight."""
    job.status = JobStatus.RUNNING
    job.wait_reason = job.wait_until = job.waiting_since = job.next_attempt_at = None
    job.attempts = max(job.attempts, 1)
    job.started_at = job.started_at or datetime.fromtimestamp(now, UTC)


def record(carried: list[tuple[Job, str]]) -> list[dict[str, str]]:
    """What in_flight keeps of a bulk call: each job it carries and its item, the lane's job first."""
    return [{"job_id": str(job.id), "item": item} for job, item in carried]


def carried(flight: dict[str, Any]) -> list[uuid.UUID]:
    """The jobs a call in flight carries (just its own job for a single call)."""
    return [uuid.UUID(entry["job_id"]) for entry in flight.get(BULK) or [{"job_id": flight["job_id"]}]]
