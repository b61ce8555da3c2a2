"""One tick of the scheduler function (EventBridge Scheduler, every minute): queue the jobs of the sync
rules that are due, never a second while one of the same action is active, and record each outcome.

A tick opens PostgreSQL only when a rule can be due: its due time (crosslist.due_times, `sync_rules`) holds when
the soonest rule is due for the users connected then; a user connecting or leaving (the scan of live users
differs), a rule changed, an account connected, refused or disconnected make it look again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aws_lambda_powertools import Logger

from crosslist.due_times import DueTimes, fingerprint_of
from crosslist.errors import CrosslistError
from crosslist.jobs.service import ScheduledJob
from crosslist.marketplaces import Marketplace
from crosslist.sync_rules.rules import INTERNAL_ERROR, WAITING_OUTCOME, Outcome, OutcomeCode, tick_of
from crosslist.sync_rules.store import DueRule, SyncRuleStore

logger = Logger(child=True)

# Rules handled per tick, oldest due first; the rest are due at the next tick. Each may create a job (a
# few tens of ms): this keeps a tick well within the function's timeout.
MAX_RULES_PER_TICK = 500
# Far enough ahead that every rule that can run is due by then (the longest interval is a week): asking the store
# for the one rule due first by then gives the next due time (it lists rules oldest due first).
_HORIZON = timedelta(days=366)


class JobScheduler(Protocol):
    def schedule(
        self, user_id: str, marketplace: Marketplace, action: str, *, idempotency_key: str
    ) -> ScheduledJob: ...


@dataclass(frozen=True)
class TickReport:
    due: int
    outcomes: dict[OutcomeCode, int]
    looked: bool = True  # False: no rule could be due, PostgreSQL was left alone

    def as_dict(self) -> dict[str, int]:
        return {"due_rules": self.due, **{code: self.outcomes.get(code, 0) for code in _REPORTED}}


_REPORTED: tuple[OutcomeCode, ...] = (
    "queued",
    "skipped_active_job",
    "waiting_for_connection",
    "reauth_required",
    "failed",
)


class SyncScheduler:
    def __init__(
        self,
        store: SyncRuleStore,
        live_users: Callable[[], Collection[str]],
        jobs: JobScheduler,
        clock: Callable[[], datetime] | None = None,
        max_rules: int = MAX_RULES_PER_TICK,
        *,
        due_times: DueTimes | None = None,
    ) -> None:
        """`due_times` None: every tick looks at PostgreSQL (no DueTimes table)."""
        self._store = store
        self._live_users = live_users
        self._jobs = jobs
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_rules = max_rules
        self._due_times = due_times

    def run(self) -> TickReport:
        now = self._clock()
        live_users = self._live_users()
        if self._due_times is None:
            return self._tick(live_users, now)
        # The rules that can run depend on who is connected: a look holds only for the users it saw.
        look = self._due_times.look(now, fingerprint_of(live_users))
        if look is None:
            return TickReport(due=0, outcomes={}, looked=False)
        report = self._tick(live_users, now)
        look.found(self._next_due(live_users, now))
        return report

    def _next_due(self, live_users: Collection[str], now: datetime) -> datetime:
        """When the soonest rule is due, as the rules stand after this tick (one never run: now)."""
        first = self._store.due(live_users, now + _HORIZON, 1)
        if not first:
            return now + _HORIZON  # none before then
        return first[0].rule.due_at() or now

    def _tick(self, live_users: Collection[str], now: datetime) -> TickReport:
        due = self._store.due(live_users, now, self._max_rules)
        outcomes: Counter[OutcomeCode] = Counter()
        for candidate in due:
            # The store narrows the rules down in one query; whether one is due is decided here.
            if not candidate.rule.is_due(now) or candidate.rule.already_waiting(candidate.connection):
                continue
            outcome = self._run(candidate, tick_of(now))
            outcomes[outcome.code] += 1
            try:
                self._store.record(candidate.rule, outcome)
            except Exception:  # one rule's failure must not stop the others'; it is due again at the next tick
                logger.exception("sync rule outcome not recorded", extra=_context(candidate))
        return TickReport(due=len(due), outcomes=dict(outcomes))

    def _run(self, candidate: DueRule, tick: datetime) -> Outcome:
        rule = candidate.rule
        waiting = WAITING_OUTCOME.get(candidate.connection)
        if waiting is not None:
            return Outcome(waiting, tick)
        try:
            scheduled = self._jobs.schedule(
                rule.user_id, rule.marketplace, rule.action, idempotency_key=rule.idempotency_key()
            )
        except CrosslistError as refused:  # e.g. the action is not available: trying every minute would not help
            logger.warning("sync rule job refused", extra={**_context(candidate), "code": refused.code})
            return Outcome("failed", tick, reason=refused.code, message=refused.message)
        except Exception:
            logger.exception("sync rule job not created", extra=_context(candidate))
            return Outcome("failed", tick, reason=INTERNAL_ERROR, message="the job could not be created; tried again")
        if scheduled.queued:
            return Outcome("queued", tick, job_id=scheduled.job_id)
        return Outcome("skipped_active_job", tick, job_id=scheduled.job_id)


def _context(candidate: DueRule) -> dict[str, str]:
    rule = candidate.rule
    return {"user_id": rule.user_id, "marketplace": rule.marketplace, "kind": rule.kind}
