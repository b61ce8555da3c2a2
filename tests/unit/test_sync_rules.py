"""When a sync rule is due, and what the scheduler does about it, on an in-memory store and job service."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from crosslist.errors import InvalidRequest
from crosslist.jobs.service import ScheduledJob
from crosslist.marketplaces import MARKETPLACES, Marketplace
from crosslist.sync_rules.rules import KINDS, Connection, Kind, Outcome, SyncRule, action_for, tick_of
from crosslist.sync_rules.scheduler import SyncScheduler
from crosslist.sync_rules.store import DueRule

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class InMemoryRules:
    """The store's contract without its SQL: every rule that could be due is a candidate (defaults of the
    accounts that can run, or wait for a new authorization), so the scheduler's own checks decide."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, Marketplace, Kind], SyncRule] = {}
        self.credentials: dict[tuple[str, Marketplace], Connection] = {}  # eBay, Etsy
        self.writes = 0

    def due(self, live_users: Collection[str], now: datetime, limit: int) -> list[DueRule]:
        accounts: dict[tuple[str, Marketplace], Connection] = {(user, "vinted"): "connected" for user in live_users}
        accounts |= self.credentials
        candidates = dict(self.rules)
        for user, marketplace in accounts:
            for kind in KINDS:
                candidates.setdefault((user, marketplace, kind), SyncRule(user, marketplace, kind))
        return [
            DueRule(rule, accounts.get((rule.user_id, rule.marketplace), "not_connected"))
            for rule in candidates.values()
            if rule.enabled
        ][:limit]

    def record(self, rule: SyncRule, outcome: Outcome) -> None:
        self.writes += 1
        stored = self.rules.get((rule.user_id, rule.marketplace, rule.kind), rule)
        self.rules[(rule.user_id, rule.marketplace, rule.kind)] = replace(
            stored,
            last_run_at=outcome.at if outcome.ran else stored.last_run_at,
            last_outcome=outcome,
            last_job_id=outcome.job_id if outcome.code == "queued" else stored.last_job_id,
        )

    def rule(self, user: str, marketplace: Marketplace, kind: Kind) -> SyncRule:
        return self.rules[(user, marketplace, kind)]


class InMemoryJobs:
    """JobService.schedule's contract: one job per idempotency key, none while one of the action is active."""

    def __init__(self) -> None:
        self.by_key: dict[str, uuid.UUID] = {}
        self.active: dict[tuple[str, str, str], uuid.UUID] = {}
        self.queued: list[tuple[datetime, str, str, str]] = []  # (when, user, marketplace, action)
        self.refused: set[str] = set()  # actions refused (e.g. not available yet)
        self.broken = False  # the database is away: every call fails
        self.clock = T0

    def schedule(self, user_id: str, marketplace: Marketplace, action: str, *, idempotency_key: str) -> ScheduledJob:
        if self.broken:
            raise ConnectionError("the database went away")
        if idempotency_key in self.by_key:
            return ScheduledJob(self.by_key[idempotency_key], queued=True)
        if (user_id, marketplace, action) in self.active:
            return ScheduledJob(self.active[(user_id, marketplace, action)], queued=False)
        if action in self.refused:
            raise InvalidRequest(f"{action} on {marketplace} is not available yet", code="action_not_available")
        job_id = uuid.uuid4()
        self.by_key[idempotency_key] = job_id
        self.active[(user_id, marketplace, action)] = job_id
        self.queued.append((self.clock, user_id, marketplace, action))
        return ScheduledJob(job_id, queued=True)

    def finish_all(self) -> None:
        self.active.clear()


class World:
    def __init__(self) -> None:
        self.store = InMemoryRules()
        self.jobs = InMemoryJobs()
        self.live: set[str] = set()
        self.now = T0
        self.scheduler = SyncScheduler(self.store, lambda: self.live, self.jobs, clock=lambda: self.now)

    def tick_at(self, moment: datetime) -> dict[str, int]:
        self.now = self.jobs.clock = moment
        return self.scheduler.run().as_dict()

    def run_minutes(self, minutes: int, late_by: timedelta = timedelta(seconds=3)) -> None:
        """The schedule fires every minute, a few seconds late; every job ends before the next tick."""
        for minute in range(minutes):
            self.tick_at(T0 + timedelta(minutes=minute) + late_by)
            self.jobs.finish_all()

    def queued_minutes(self, action: str) -> list[int]:
        return [int((when - T0).total_seconds() // 60) for when, _, _, queued in self.jobs.queued if queued == action]


@pytest.fixture
def world() -> World:
    return World()


# ---------------------------------------------------------------------- the rule alone
def test_a_rule_is_due_when_its_interval_since_the_last_run_has_passed_and_only_while_enabled() -> None:
    never_ran = SyncRule("alice", "vinted", "orders")
    ran = replace(never_ran, last_run_at=T0)

    assert never_ran.is_due(T0)
    assert not ran.is_due(T0 + timedelta(minutes=15) - timedelta(seconds=1))
    assert ran.is_due(T0 + timedelta(minutes=15))
    assert not replace(ran, enabled=False).is_due(T0 + timedelta(days=1))
    assert not replace(ran, chosen_interval_minutes=30).is_due(T0 + timedelta(minutes=29))
    assert replace(ran, kind="listings").interval_minutes == 60


def test_the_next_run_is_known_only_while_the_rule_can_run() -> None:
    ran = SyncRule("alice", "ebay", "orders", last_run_at=T0)

    assert ran.next_run_at(T0 + timedelta(minutes=1), "connected") == T0 + timedelta(minutes=15)
    assert ran.next_run_at(T0 + timedelta(minutes=40), "connected") == T0 + timedelta(minutes=40)  # overdue: now
    assert ran.next_run_at(T0, "reauth_required") is None
    assert ran.next_run_at(T0, "not_connected") is None
    assert replace(ran, enabled=False).next_run_at(T0, "connected") is None


def test_each_kind_queues_the_marketplaces_own_action() -> None:
    assert {(m, k): action_for(m, k) for m in MARKETPLACES for k in KINDS} == {
        ("vinted", "listings"): "sync",
        ("vinted", "orders"): "orders",
        ("ebay", "listings"): "sync",
        ("ebay", "orders"): "sync_orders",
        ("etsy", "listings"): "sync",
        ("etsy", "orders"): "sync_orders",
    }


def test_one_idempotency_key_per_rule_and_due_time() -> None:
    rule = SyncRule("alice", "vinted", "orders")
    ran = replace(rule, last_run_at=T0)

    assert rule.idempotency_key() == "sync-rule:vinted:orders:first"
    assert ran.idempotency_key() == f"sync-rule:vinted:orders:{int((T0 + timedelta(minutes=15)).timestamp())}"
    assert replace(ran, kind="listings").idempotency_key() != ran.idempotency_key()
    assert replace(ran, last_run_at=T0 + timedelta(minutes=15)).idempotency_key() != ran.idempotency_key()


def test_a_tick_is_its_minute() -> None:
    assert tick_of(T0 + timedelta(seconds=59, microseconds=5)) == T0


# ---------------------------------------------------------------------- the scheduler
def test_defaults_run_every_15_and_60_minutes_without_drifting_although_ticks_come_late(world: World) -> None:
    world.live.add("alice")

    world.run_minutes(121)

    assert world.queued_minutes("orders") == [0, 15, 30, 45, 60, 75, 90, 105, 120]
    assert world.queued_minutes("sync") == [0, 60, 120]


def test_a_second_tick_in_the_same_minute_queues_nothing_and_writes_nothing(world: World) -> None:
    world.live.add("alice")
    world.tick_at(T0 + timedelta(seconds=1))
    writes = world.store.writes

    assert world.tick_at(T0 + timedelta(seconds=50))["queued"] == 0
    assert world.store.writes == writes
    assert len(world.jobs.queued) == 2


def test_a_rule_whose_job_is_still_active_records_it_and_waits_its_interval(world: World) -> None:
    world.live.add("alice")
    world.tick_at(T0)
    first = world.store.rule("alice", "vinted", "orders").last_outcome
    assert first is not None

    report = world.tick_at(T0 + timedelta(minutes=15))  # the import is still running

    assert (report["queued"], report["skipped_active_job"]) == (0, 1)
    skipped = world.store.rule("alice", "vinted", "orders")
    assert skipped.last_outcome == Outcome("skipped_active_job", T0 + timedelta(minutes=15), job_id=first.job_id)
    assert skipped.last_run_at == T0 + timedelta(minutes=15)  # the running job stands for this run
    assert skipped.last_job_id == first.job_id


def test_waiting_is_recorded_once_and_the_rule_runs_at_the_first_tick_its_account_can(world: World) -> None:
    world.store.credentials[("alice", "etsy")] = "reauth_required"
    world.run_minutes(30)

    orders = world.store.rule("alice", "etsy", "orders")
    assert orders.last_outcome == Outcome("reauth_required", T0)  # the tick, not the late invocation
    assert orders.last_run_at is None
    assert world.store.writes == 2  # one per rule, not one per tick
    assert world.jobs.queued == []

    world.store.credentials[("alice", "etsy")] = "connected"
    world.tick_at(T0 + timedelta(minutes=30, seconds=3))

    assert [(m, a) for _, _, m, a in world.jobs.queued] == [("etsy", "sync"), ("etsy", "sync_orders")]


def test_a_rule_of_an_account_that_is_gone_waits_for_a_connection(world: World) -> None:
    world.live.add("alice")
    world.tick_at(T0)
    world.jobs.finish_all()
    world.live.clear()

    assert world.tick_at(T0 + timedelta(minutes=15))["waiting_for_connection"] == 1
    assert world.tick_at(T0 + timedelta(minutes=16))["waiting_for_connection"] == 0  # already said
    assert world.store.rule("alice", "vinted", "orders").last_run_at == T0

    world.live.add("alice")
    assert world.tick_at(T0 + timedelta(minutes=17))["queued"] == 1


def test_a_refused_job_fails_the_run_and_an_unexpected_error_is_tried_again_at_the_next_tick(world: World) -> None:
    world.store.credentials[("alice", "ebay")] = "connected"
    world.jobs.refused.add("sync_orders")
    world.jobs.broken = True

    world.tick_at(T0)
    broken = world.store.rule("alice", "ebay", "orders")
    assert (broken.last_outcome and broken.last_outcome.reason, broken.last_run_at) == ("internal_error", None)

    world.jobs.broken = False
    world.tick_at(T0 + timedelta(minutes=1))
    refused = world.store.rule("alice", "ebay", "orders")
    assert refused.last_outcome == Outcome(
        "failed",
        T0 + timedelta(minutes=1),
        reason="action_not_available",
        message="sync_orders on ebay is not available yet",
    )
    assert refused.last_run_at == T0 + timedelta(minutes=1)  # tried again at its next interval, not every minute
    assert world.tick_at(T0 + timedelta(minutes=2))["failed"] == 0


def test_a_disabled_rule_is_never_run(world: World) -> None:
    world.live.add("alice")
    world.store.rules[("alice", "vinted", "orders")] = SyncRule("alice", "vinted", "orders", enabled=False)

    world.run_minutes(61)

    assert world.queued_minutes("orders") == []
    assert world.queued_minutes("sync") == [0, 60]
