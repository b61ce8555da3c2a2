"""What a sync rule is and when it is due: pure, no I/O (the scheduler and the API share it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from crosslist.marketplaces import Marketplace

Kind = Literal["listings", "orders"]
KINDS: tuple[Kind, ...] = get_args(Kind)

MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 7 * 24 * 60
# Orders drive auto-delist: a sale must be noticed within 15 minutes. Listings drift slowly.
DEFAULT_INTERVAL_MINUTES: dict[Kind, int] = {"listings": 60, "orders": 15}

# Whether the rule's marketplace account can run a job now: Vinted's while the user has an open
# WebSocket connection (the extension runs the calls), eBay's and Etsy's while their OAuth credential works.
Connection = Literal["connected", "not_connected", "reauth_required"]

OutcomeCode = Literal["queued", "skipped_active_job", "waiting_for_connection", "reauth_required", "failed"]
# The outcome a rule records while its account cannot run it: it waits, its time does not move on.
WAITING_OUTCOME: dict[Connection, OutcomeCode] = {
    "not_connected": "waiting_for_connection",
    "reauth_required": "reauth_required",
}
# A failure the scheduler did not expect (not a refusal of the job): the rule is tried again at the next tick.
INTERNAL_ERROR = "internal_error"


def action_for(marketplace: Marketplace, kind: Kind) -> str:
    """The job action a rule queues (crosslist.marketplaces.ACTION_TYPES)."""
    if kind == "listings":
        return "sync"
    return "orders" if marketplace == "vinted" else "sync_orders"


def tick_of(now: datetime) -> datetime:
    """The scheduler tick `now` belongs to: its minute. A rule that ran at a tick is due again `interval`
    after the tick, not after the (a few seconds late) invocation, so its runs do not drift."""
    return now.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Outcome:
    code: OutcomeCode
    at: datetime
    job_id: uuid.UUID | None = None  # queued: the new job; skipped_active_job: the one still active
    reason: str | None = None  # failed: the error's code
    message: str | None = None  # failed: what went wrong

    @property
    def ran(self) -> bool:
        """The rule's run happened (its time moves on): not while it waits for its account, nor after an
        unexpected error (it is tried again at the next tick)."""
        return self.code not in WAITING_OUTCOME.values() and self.reason != INTERNAL_ERROR

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "at": self.at.isoformat()}
        if self.job_id is not None:
            data["job_id"] = str(self.job_id)
        if self.reason is not None:
            data["reason"] = self.reason
        if self.message is not None:
            data["message"] = self.message
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Outcome | None:
        if not data:
            return None
        job_id = data.get("job_id")
        return cls(
            code=data["code"],
            at=datetime.fromisoformat(data["at"]),
            job_id=uuid.UUID(job_id) if job_id else None,
            reason=data.get("reason"),
            message=data.get("message"),
        )


@dataclass(frozen=True)
class SyncRule:
    user_id: str
    marketplace: Marketplace
    kind: Kind
    enabled: bool = True
    chosen_interval_minutes: int | None = None  # None: the kind's default
    last_run_at: datetime | None = None
    last_outcome: Outcome | None = None
    last_job_id: uuid.UUID | None = None

    @property
    def interval_minutes(self) -> int:
        chosen = self.chosen_interval_minutes
        return chosen if chosen is not None else DEFAULT_INTERVAL_MINUTES[self.kind]

    @property
    def action(self) -> str:
        return action_for(self.marketplace, self.kind)

    def due_at(self) -> datetime | None:
        """When the rule is next due; None when it never ran (due at once)."""
        if self.last_run_at is None:
            return None
        return self.last_run_at + timedelta(minutes=self.interval_minutes)

    def is_due(self, now: datetime) -> bool:
        due = self.due_at()
        return self.enabled and (due is None or due <= now)

    def already_waiting(self, connection: Connection) -> bool:
        """It recorded that it waits for this very thing: nothing new to write."""
        waiting = WAITING_OUTCOME.get(connection)
        return waiting is not None and self.last_outcome is not None and self.last_outcome.code == waiting

    def next_run_at(self, now: datetime, connection: Connection) -> datetime | None:
        """When the scheduler will queue its job (at the first tick from then), as far as is known now:
        None while disabled or while its account cannot run it (it runs at the first tick once it can)."""
        if not self.enabled or connection != "connected":
            return None
        due = self.due_at()
        return now if due is None or due < now else due

    def idempotency_key(self) -> str:
        """One job per rule and due time: a retried scheduler invocation (the job created, the run not yet
        recorded) finds the job it created instead of queueing a second."""
        due = self.due_at()
        return f"sync-rule:{self.marketplace}:{self.kind}:{int(due.timestamp()) if due else 'first'}"


def default_rule(user_id: str, marketplace: Marketplace, kind: Kind) -> SyncRule:
    """The rule of a user who never changed it: enabled at the kind's default interval."""
    return SyncRule(user_id, marketplace, kind)
