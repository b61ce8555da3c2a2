"""When the periodic functions may leave PostgreSQL alone: what they watch, and when it is next due, in DynamoDB.

The sweeper and the scheduler run every minute and oauth_refresh every 15 minutes. Each used to query
PostgreSQL every time, so a serverless PostgreSQL (Aurora Serverless v2 with auto-pause, Neon), which pauses only
after minutes without a connection, never paused. Now each first reads one DynamoDB item (one strongly consistent
GetItem) and opens PostgreSQL only when that item cannot prove that nothing is due:

- `lanes` (the sweeper): the earliest a lane's wake-up can be overdue, or a job whose wake-up was never queued
  can be found;
- `sync_rules` (the scheduler): the earliest a sync rule is due, for the users who were connected then;
- `tokens` (oauth_refresh): the earliest an eBay or Etsy token enters its refresh window.

The item may only ever be too early, never too late (a stale "nothing due" would strand a lane for good):

- Whoever looks at PostgreSQL records when it began looking (`looked_at`) and the earliest due time it found.
- Whoever makes something due sooner than PostgreSQL said before (a lane's `wake_at` set or moved earlier, a job
  created, a sync rule changed, an account connected, disconnected or refused…) announces it in its transaction
  (`announce`), and the announcement is written to the item (`changed_at`) *before* that transaction commits: a
  crash after the commit cannot lose it (the very case the sweeper is there for), and a failed write fails the
  transaction. A change that makes things due later, or not at all, needs no announcement: the item was already
  early enough for it.
- A look proves nothing about a change announced shortly before it began: that change's transaction may have
  committed only after the look read PostgreSQL. So PostgreSQL is left alone only when the last announced change
  came SETTLE_SECONDS before the last look began (by then every transaction that announced it has committed or
  rolled back), that look's due time has not come, what it depended on is unchanged (the scheduler's connected
  users), and it is younger than TRUST_SECONDS (a net for a change made behind the code's back, by hand in psql).
- Anything unreadable (no item yet, DynamoDB failing) means: look.

This module keeps the rule (`LastLook.proves_nothing_due`) and the DynamoDB item; the sweeper, the scheduler and
oauth_refresh each say what their look found. It never imports SQLAlchemy at module level: the WebSocket handlers
never load it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

logger = Logger(child=True)

Watched = Literal["lanes", "sync_rules", "tokens"]

# How long a transaction that announced a change may take to commit or roll back: the announcement is written
# right before the commit, and every function that announces times out within 60 s (template.yaml's Timeout; a
# test keeps them below this), after which Lambda ends its process and PostgreSQL rolls back what it left open.
SETTLE_SECONDS = 120.0
# A look is trusted this long at most: a change nobody announced (an edit by hand) is still seen within a day.
TRUST_SECONDS = 24 * 3600.0
_MILLISECOND = Decimal("0.001")  # what the item keeps of a time (see _number)
# Where announcements wait in a session until it commits.
_ANNOUNCED = "crosslist.due_times.announced"


@dataclass(frozen=True)
class LastLook:
    """What a DynamoDB item says: the last look at PostgreSQL, and the last change announced since any look.

    Times are epoch seconds. `looked_at` and `changed_at` are wall-clock times of the functions (they are compared
    with each other); `due_at` is in the looking function's own clock, compared with that function's `now`.
    """

    looked_at: float | None = None
    due_at: float | None = None  # None: nothing was due at all
    changed_at: float | None = None
    fingerprint: str = ""  # what else the look depended on (the scheduler: who was connected)

    def proves_nothing_due(
        self, now: float, wall_now: float, fingerprint: str = "", settle_seconds: float = SETTLE_SECONDS
    ) -> bool:
        """Whether PostgreSQL, if asked at `now`, could not show anything due: the schedule may skip it."""
        if self.looked_at is None or wall_now - self.looked_at > TRUST_SECONDS:
            return False
        if self.changed_at is not None and self.changed_at >= self.looked_at - settle_seconds:
            return False  # changed since (or too shortly before) the look: the look may not have seen it
        if fingerprint != self.fingerprint:
            return False
        return self.due_at is None or now < self.due_at


class DueTimeStore(Protocol):
    def last_look(self, watched: Watched) -> LastLook:
        """The item (an empty LastLook when there is none)."""

    def changed(self, watched: Collection[Watched], at: float) -> None:
        """Something watched may be due sooner than the last look said: record when (never moving it back)."""

    def looked(self, watched: Watched, *, looked_at: float, due_at: float | None, fingerprint: str) -> None:
        """Record a look at PostgreSQL: when it began, and the earliest due time it found."""


class DynamoDueTimeStore:
    """One item per watched thing in the DueTimes table (key `watched`)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def last_look(self, watched: Watched) -> LastLook:
        item = self._table.get_item(Key={"watched": watched}, ConsistentRead=True).get("Item") or {}
        return LastLook(
            looked_at=_seconds(item.get("looked_at")),
            due_at=_seconds(item.get("due_at")),
            changed_at=_seconds(item.get("changed_at")),
            fingerprint=str(item.get("fingerprint", "")),
        )

    def changed(self, watched: Collection[Watched], at: float) -> None:
        for name in sorted(watched):
            try:
                self._table.update_item(
                    Key={"watched": name},
                    UpdateExpression="SET changed_at = :at",
                    # A later change recorded by another function stays: the latest one is what counts.
                    ConditionExpression="attribute_not_exists(changed_at) OR changed_at < :at",
                    ExpressionAttributeValues={":at": _number(at, ROUND_CEILING)},
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    def looked(self, watched: Watched, *, looked_at: float, due_at: float | None, fingerprint: str) -> None:
        values: dict[str, Any] = {":looked": _number(looked_at, ROUND_FLOOR), ":fingerprint": fingerprint}
        if due_at is None:
            expression = "SET looked_at = :looked, fingerprint = :fingerprint REMOVE due_at"
        else:
            expression = "SET looked_at = :looked, fingerprint = :fingerprint, due_at = :due"
            values[":due"] = _number(due_at, ROUND_FLOOR)
        self._table.update_item(Key={"watched": watched}, UpdateExpression=expression, ExpressionAttributeValues=values)


@dataclass(frozen=True)
class Look:
    """A look at PostgreSQL that has begun: once it knows, it says when what it watches is next due."""

    due_times: DueTimes
    started: float  # wall clock, taken before the first query
    fingerprint: str

    def found(self, next_due: datetime | None) -> None:
        """The earliest anything watched is due, as PostgreSQL showed it after this look (None: nothing). Not
        recording it is safe (the item keeps an earlier look): a failure is logged, never raised."""
        try:
            self.due_times.store.looked(
                self.due_times.watched,
                looked_at=self.started,
                due_at=next_due.timestamp() if next_due is not None else None,
                fingerprint=self.fingerprint,
            )
        except Exception:
            logger.warning("the due time was not recorded: the next run looks at PostgreSQL", exc_info=True)


@dataclass(frozen=True)
class DueTimes:
    """One schedule's item: whether it must look at PostgreSQL now."""

    store: DueTimeStore
    watched: Watched
    settle_seconds: float = SETTLE_SECONDS
    wall_clock: Callable[[], float] = time.time

    def look(self, now: datetime, fingerprint: str = "") -> Look | None:
        """A look to make, or None when the item proves nothing can be due at `now` (PostgreSQL is left alone)."""
        wall_now = self.wall_clock()
        try:
            last = self.store.last_look(self.watched)
        except Exception:  # unreadable: look, as if there were no item
            logger.warning("the due time could not be read: looking at PostgreSQL", exc_info=True)
            last = LastLook()
        if last.proves_nothing_due(now.timestamp(), wall_now, fingerprint, self.settle_seconds):
            return None
        return Look(self, wall_now, fingerprint)


def fingerprint_of(values: Iterable[str]) -> str:
    """A short digest of a set of strings (who was connected): equal sets, equal digests."""
    digest = hashlib.sha256("\n".join(sorted(set(values))).encode()).hexdigest()
    return digest[:32]


def announce(session: Session, *watched: Watched) -> None:
    """This transaction makes `watched` due sooner than PostgreSQL said before: written to the DueTimes table
    before it commits (see `announce_before_commit`)."""
    announced: set[Watched] = session.info.setdefault(_ANNOUNCED, set())
    announced.update(watched)


def announce_before_commit(
    sessions: sessionmaker[Session], store: DueTimeStore, wall_clock: Callable[[], float] = time.time
) -> None:
    """Every session of `sessions` writes what its transaction announced right before committing it; if that
    write fails, the commit does not happen (the change is never left unannounced)."""
    from sqlalchemy import event

    def write_announced(session: Session) -> None:
        # Kept until a commit: an announcement of a transaction (or savepoint) that rolled back is merely early.
        announced = session.info.pop(_ANNOUNCED, None)
        if announced:
            store.changed(announced, wall_clock())

    event.listen(sessions, "before_commit", write_announced)


def _number(seconds: float, rounding: str) -> Decimal:
    """To the millisecond (what the item keeps), rounded the safe way: a look's start and due time down, a
    change up, so that the item read back is only ever earlier than what was written, never later."""
    return Decimal(seconds).quantize(_MILLISECOND, rounding=rounding)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)
