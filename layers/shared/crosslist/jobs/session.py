"""What a (re)loaded tab needs to show the truth: its user's active jobs and where each stands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import ACTIVE_JOB_STATUSES, MarketplaceJob
from crosslist.jobs.queued import QUEUED, lane_holders, queued_behind
from crosslist.realtime.messages import active_jobs_message
from crosslist.realtime.notifier import Notifier
from crosslist.workflows.registry import find_workflow

# Far more than a screen shows, and well inside a WebSocket message's 128 KB.
MAX_JOBS_SHOWN = 100
MAX_ERROR_MESSAGE_SHOWN = 200


class SessionState:
    def __init__(self, sessions: sessionmaker[Session], notifier: Notifier) -> None:
        self._sessions = sessions
        self._notifier = notifier

    def send(self, user_id: str, connection_id: str) -> int:
        """Send the tab its user's active jobs, oldest first (the order they run in); returns how many."""
        with transaction(self._sessions) as session:
            jobs = list(
                session.scalars(
                    select(MarketplaceJob)
                    .where(MarketplaceJob.user_id == user_id, MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES))
                    .order_by(MarketplaceJob.created_at, MarketplaceJob.id)
                    .limit(MAX_JOBS_SHOWN + 1)
                )
            )
            holders = lane_holders(session, user_id)
        now = datetime.now(UTC)
        shown = [_state(job, queued_behind(job, holders.get(job.marketplace), now)) for job in jobs[:MAX_JOBS_SHOWN]]
        self._notifier.to_connection(connection_id, active_jobs_message(shown, truncated=len(jobs) > MAX_JOBS_SHOWN))
        return len(shown)


def _step_name(job: MarketplaceJob) -> str | None:
    """The step the job is at (running, or next to run)."""
    workflow = find_workflow(job.marketplace, job.action_code)
    if workflow is None:
        return None
    steps = workflow.steps(job.input)
    return steps[job.current_step].name if job.current_step < len(steps) else None


def _state(job: MarketplaceJob, waiting_for: uuid.UUID | None) -> dict[str, Any]:
    """`waiting_for`: the job it is queued behind, if it waits for its lane."""
    error = job.error
    return {
        "job_id": str(job.id),
        "marketplace": job.marketplace,
        "action": job.action_code,
        "product_id": str(job.product_id) if job.product_id else None,
        "batch_id": str(job.batch_id) if job.batch_id else None,
        "status": job.status.value,
        # What it waits for (pacing, backoff, no_plugin, plugin_not_ready, plugin_logged_out, challenge,
        # rate_limited, reauth_required; queued: behind the job waiting_for_job_id) and until when, if it waits.
        "wait_reason": QUEUED if waiting_for is not None else job.wait_reason,
        "wait_until": None if waiting_for is not None or job.wait_until is None else job.wait_until.isoformat(),
        "waiting_for_job_id": str(waiting_for) if waiting_for is not None else None,
        "step": _step_name(job),
        "current_step": job.current_step,
        "total_steps": job.total_steps,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "cancel_requested": job.cancel_requested_at is not None,
        # The last failure of a job being retried.
        "error": {"code": error["code"], "message": str(error["message"])[:MAX_ERROR_MESSAGE_SHOWN]} if error else None,
    }
