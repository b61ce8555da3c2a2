"""A job that waits for its lane says so: queued behind the started job holding the lane (`wait_reason`
"queued", and that job's id). Worked out when a job is read, from the lane's active job, rather than written by
the engine: the jobs behind would otherwise be rewritten each time the job ahead starts or ends."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crosslist.db.models import ACTIVE_JOB_STATUSES, JobLane, JobStatus, MarketplaceJob

QUEUED = "queued"


def lane_holders(session: Session, user_id: str) -> dict[str, uuid.UUID]:
    """Marketplace -> the started job holding the user's lane there (one that has not ended)."""
    rows = session.execute(
        select(JobLane.marketplace, JobLane.active_job_id)
        .join(MarketplaceJob, MarketplaceJob.id == JobLane.active_job_id)
        .where(JobLane.user_id == user_id, MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES))
    ).all()
    return {marketplace: job_id for marketplace, job_id in rows if job_id is not None}


def queued_behind(job: MarketplaceJob, holder: uuid.UUID | None, now: datetime) -> uuid.UUID | None:
    """The job `job` waits for, when it is queued behind `holder` (the job holding its lane). A wait of its
    own that is not over (a backoff, pacing, a paused lane, the extension) is what it shows instead."""
    if holder is None or holder == job.id or job.status not in (JobStatus.PENDING, JobStatus.WAITING):
        return None
    waits_on_its_own = job.wait_reason is not None and (job.wait_until is None or job.wait_until > now)
    return None if waits_on_its_own else holder
