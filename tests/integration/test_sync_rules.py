"""Sync rules end to end (real PostgreSQL, moto, the real handlers): GET/PUT /sync-rules and the scheduler
function's ticks, on a clock the tests move."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from crosslist import runtime
from crosslist.sync_rules.rules import tick_of
from crosslist.sync_rules.store import PostgresSyncRuleStore
from crosslist.workflows.registry import find_workflow
from devstack.lambdas import LambdaContext, load_handler
from tests.conftest import REPO
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration

Tick = Callable[[], dict[str, int]]


class Clock:
    """The scheduler's time: it moves only when a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(tick_of(datetime.now(UTC)) + timedelta(seconds=2))  # a tick fires a few seconds late
    build = runtime.sync_scheduler
    monkeypatch.setattr(runtime, "sync_scheduler", lambda: build(clock=clock))
    return clock


@pytest.fixture
def tick(backend: Backend, clock: Clock) -> Tick:
    """One invocation of the scheduler function, as its EventBridge schedule sends it."""
    handler = load_handler(REPO / "functions" / "scheduler")
    return lambda: dict(handler({"schedule": "sync_rules"}, LambdaContext("scheduler")))


def rules(backend: Backend, user: str = "alice") -> dict[tuple[str, str], dict[str, Any]]:
    reply = backend.http("GET", "/sync-rules", user=user)
    assert reply.status == 200, reply.body
    return {(rule["marketplace"], rule["kind"]): rule for rule in reply.body["rules"]}


def change(backend: Backend, *changes: dict[str, Any], user: str = "alice") -> dict[tuple[str, str], dict[str, Any]]:
    reply = backend.http("PUT", "/sync-rules", user=user, body={"rules": list(changes)})
    assert reply.status == 200, reply.body
    return {(rule["marketplace"], rule["kind"]): rule for rule in reply.body["rules"]}


def jobs(sql: Any, user: str = "alice") -> list[tuple[str, str, int, str]]:
    """The user's jobs, oldest first: (marketplace, action, priority, status)."""
    with sql.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT marketplace, action_code, priority, status FROM marketplace_jobs WHERE user_id = :user"
                " ORDER BY created_at, action_code"
            ),
            {"user": user},
        ).all()
    return [tuple(row) for row in rows]


def actions(sql: Any, user: str = "alice") -> list[str]:
    return sorted(f"{marketplace}:{action}" for marketplace, action, _, _ in jobs(sql, user))


def connect_account(sql: Any, marketplace: str, user: str = "alice", status: str = "active") -> None:
    """An eBay or Etsy credential as the OAuth callback stores it (the tokens are not read here)."""
    with sql.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO oauth_credentials (id, user_id, marketplace, access_token_encrypted, scopes, expires_at,"
                " status, created_at, updated_at) VALUES (:id, :user, :marketplace, :token, '', now() + interval"
                " '1 hour', :status, now(), now())"
                " ON CONFLICT (user_id, marketplace) DO UPDATE SET status = EXCLUDED.status"
            ),
            {"id": uuid.uuid4(), "user": user, "marketplace": marketplace, "token": b"sealed", "status": status},
        )


def outcome(backend: Backend, marketplace: str, kind: str, user: str = "alice") -> dict[str, Any]:
    """The rule's last outcome (it has one), its time as a datetime."""
    found = rules(backend, user)[(marketplace, kind)]["last_outcome"]
    assert found is not None, f"{marketplace} {kind}: no outcome"
    return {**found, "at": moment(found["at"])}


def moment(shown: str | None) -> datetime | None:
    return datetime.fromisoformat(shown) if shown is not None else None


# ---------------------------------------------------------------------- the API
def test_without_any_change_every_rule_shows_its_default_and_whether_it_can_run(backend: Backend, sql: Any) -> None:
    backend.open_tab("alice")
    connect_account(sql, "ebay")

    shown = rules(backend)

    assert list(shown) == [(m, k) for m in ("vinted", "ebay", "etsy") for k in ("listings", "orders")]
    assert {key: (rule["enabled"], rule["interval_minutes"]) for key, rule in shown.items()} == {
        key: (True, 60 if key[1] == "listings" else 15) for key in shown
    }
    assert {key: rule["action"] for key, rule in shown.items()} == {
        ("vinted", "listings"): "sync",
        ("vinted", "orders"): "orders",
        ("ebay", "listings"): "sync",
        ("ebay", "orders"): "sync_orders",
        ("etsy", "listings"): "sync",
        ("etsy", "orders"): "sync_orders",
    }
    assert {key: rule["connected"] for key, rule in shown.items()} == {
        key: key[0] in ("vinted", "ebay") for key in shown
    }
    assert all(rule["last_run_at"] is None and rule["last_outcome"] is None for rule in shown.values())
    # Never run and connected: due now. Etsy is not connected: no time is known.
    assert shown[("etsy", "orders")]["next_run_at"] is None
    due = datetime.fromisoformat(shown[("vinted", "orders")]["next_run_at"])
    assert abs((due - datetime.now(UTC)).total_seconds()) < 60
    # Another user, with nothing connected, sees the same defaults, none of them able to run.
    assert not any(rule["connected"] for rule in rules(backend, "bob").values())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ([{"marketplace": "vinted", "kind": "orders", "interval_minutes": 4}], "rules.0.interval_minutes"),
        ([{"marketplace": "vinted", "kind": "orders", "interval_minutes": 0}], "greater than or equal to 5"),
        ([{"marketplace": "amazon", "kind": "orders", "enabled": True}], "rules.0.marketplace"),
        ([{"marketplace": "vinted", "kind": "prices", "enabled": True}], "rules.0.kind"),
        ([{"marketplace": "vinted", "kind": "orders"}], "needs enabled or interval_minutes"),
        ([{"marketplace": "vinted", "kind": "orders", "enabled": "yes"}], "rules.0.enabled"),
        ([{"marketplace": "vinted", "kind": "orders", "enabled": True, "every": 5}], "rules.0.every"),
        (
            [
                {"marketplace": "ebay", "kind": "orders", "enabled": False},
                {"marketplace": "ebay", "kind": "orders", "interval_minutes": 30},
            ],
            "may appear only once",
        ),
        ([], "rules"),
    ],
)
def test_a_change_that_is_not_valid_is_refused_with_its_reason_and_changes_nothing(
    backend: Backend, changes: list[dict[str, Any]], reason: str
) -> None:
    before = rules(backend)

    reply = backend.http("PUT", "/sync-rules", body={"rules": changes})

    assert reply.status == 422, reply.body
    assert reply.body["code"] == "invalid_request"
    assert reason in reply.body["message"], reply.body["message"]
    assert rules(backend) == before


def test_a_change_sets_only_what_it_names_and_null_brings_the_default_back(backend: Backend) -> None:
    changed = change(
        backend,
        {"marketplace": "vinted", "kind": "orders", "interval_minutes": 5},
        {"marketplace": "etsy", "kind": "listings", "enabled": False},
    )
    assert (changed[("vinted", "orders")]["enabled"], changed[("vinted", "orders")]["interval_minutes"]) == (True, 5)
    assert (changed[("etsy", "listings")]["enabled"], changed[("etsy", "listings")]["interval_minutes"]) == (False, 60)
    assert changed[("vinted", "listings")]["interval_minutes"] == 60  # not named: unchanged

    again = change(backend, {"marketplace": "vinted", "kind": "orders", "enabled": False})
    assert (again[("vinted", "orders")]["enabled"], again[("vinted", "orders")]["interval_minutes"]) == (False, 5)

    reset = change(backend, {"marketplace": "vinted", "kind": "orders", "interval_minutes": None, "enabled": True})
    assert (reset[("vinted", "orders")]["enabled"], reset[("vinted", "orders")]["interval_minutes"]) == (True, 15)
    assert rules(backend) == reset


# ---------------------------------------------------------------------- the scheduler
def test_a_due_rule_queues_exactly_one_job_and_a_second_tick_in_the_same_minute_none(
    backend: Backend, sql: Any, tick: Tick, clock: Clock
) -> None:
    backend.open_tab("alice")

    first = tick()
    clock.advance(seconds=30)
    second = tick()  # the same minute: a late duplicate of the tick

    assert (first["due_rules"], first["queued"]) == (2, 2)
    assert (second["due_rules"], second["queued"]) == (0, 0)
    assert sorted(jobs(sql)) == [("vinted", "orders", 8, "pending"), ("vinted", "sync", 8, "pending")]
    shown = rules(backend)
    for kind in ("listings", "orders"):
        recorded = shown[("vinted", kind)]
        assert recorded["last_outcome"]["code"] == "queued"
        assert moment(recorded["last_run_at"]) == moment(recorded["last_outcome"]["at"]) == tick_of(clock.now)
    job_ids = {shown[("vinted", kind)]["last_outcome"]["job_id"] for kind in ("listings", "orders")}
    assert {backend.job(job_id)["action"] for job_id in job_ids} == {"sync", "orders"}
    # The jobs run like any other: the extension syncs the wardrobe and imports the orders.
    backend.run_queue()
    assert {status for _, _, _, status in jobs(sql)} == {"completed"}


def test_a_retried_tick_whose_run_was_not_recorded_finds_the_job_it_queued(
    backend: Backend, sql: Any, tick: Tick, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.open_tab("alice")
    record = PostgresSyncRuleStore.record
    failures = iter([RuntimeError("the database went away"), RuntimeError("the database went away")])

    def record_after_failing(store: PostgresSyncRuleStore, *args: Any) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        record(store, *args)

    monkeypatch.setattr(PostgresSyncRuleStore, "record", record_after_failing)

    tick()  # the jobs are queued, their runs not recorded
    clock.advance(minutes=1)
    tick()  # the schedule's retry, a minute later

    assert sorted(jobs(sql)) == [("vinted", "orders", 8, "pending"), ("vinted", "sync", 8, "pending")]
    shown = rules(backend)
    assert {shown[("vinted", kind)]["last_outcome"]["code"] for kind in ("listings", "orders")} == {"queued"}


def test_while_its_job_is_active_a_due_rule_queues_none_and_says_so(
    backend: Backend, sql: Any, tick: Tick, clock: Clock
) -> None:
    backend.open_tab("alice")
    change(backend, {"marketplace": "vinted", "kind": "orders", "interval_minutes": 5})
    tick()
    queued = outcome(backend, "vinted", "orders")
    assert queued["code"] == "queued"

    clock.advance(minutes=5)  # due again; its job has not run yet
    report = tick()

    assert (report["queued"], report["skipped_active_job"]) == (0, 1)
    skipped = outcome(backend, "vinted", "orders")
    assert skipped == {**queued, "code": "skipped_active_job", "at": tick_of(clock.now)}
    assert actions(sql) == ["vinted:orders", "vinted:sync"]

    backend.run_queue()
    clock.advance(minutes=5)
    assert tick()["queued"] == 1  # the previous one ended: the next is queued
    assert actions(sql) == ["vinted:orders", "vinted:orders", "vinted:sync"]


def test_each_rule_runs_at_its_own_interval(backend: Backend, sql: Any, tick: Tick, clock: Clock) -> None:
    backend.open_tab("alice")
    change(
        backend,
        {"marketplace": "vinted", "kind": "orders", "interval_minutes": 5},
        {"marketplace": "vinted", "kind": "listings", "interval_minutes": 10},
    )
    queued: list[tuple[int, list[str]]] = []
    for minute in range(21):
        before = len(jobs(sql))
        tick()
        backend.run_queue()
        new = [action for _, action, _, _ in jobs(sql)[before:]]
        if new:
            queued.append((minute, sorted(new)))
        clock.advance(minutes=1)

    assert queued == [
        (0, ["orders", "sync"]),
        (5, ["orders"]),
        (10, ["orders", "sync"]),
        (15, ["orders"]),
        (20, ["orders", "sync"]),
    ]
    shown = rules(backend)[("vinted", "orders")]
    assert moment(shown["next_run_at"]) == tick_of(clock.now) + timedelta(minutes=4)


def test_a_vinted_rule_waits_without_a_connection_and_runs_at_the_first_tick_after_one(
    backend: Backend, sql: Any, tick: Tick, clock: Clock
) -> None:
    connection_id, _ = backend.open_tab("alice")
    tick()
    backend.run_queue()
    backend.disconnect(connection_id)

    clock.advance(minutes=15)  # the orders rule is due: no tab to run it
    assert tick()["waiting_for_connection"] == 1
    waiting = outcome(backend, "vinted", "orders")
    assert waiting["code"] == "waiting_for_connection"
    shown = rules(backend)[("vinted", "orders")]
    assert (shown["connected"], shown["next_run_at"]) == (False, None)
    clock.advance(minutes=30)  # still no tab: it keeps waiting, nothing new is written
    assert tick()["due_rules"] == 0
    assert outcome(backend, "vinted", "orders") == waiting
    assert actions(sql) == ["vinted:orders", "vinted:sync"]

    backend.open_tab("alice")
    clock.advance(minutes=1)
    report = tick()

    # The first tick after the tab opened runs it; the listings rule is not due before its hour is over.
    assert (report["queued"], report["waiting_for_connection"]) == (1, 0)
    assert actions(sql) == ["vinted:orders", "vinted:orders", "vinted:sync"]
    ran = outcome(backend, "vinted", "orders")
    assert (ran["code"], ran["at"]) == ("queued", tick_of(clock.now))
    assert backend.job(ran["job_id"])["action"] == "orders"


def test_a_user_who_never_connected_gets_nothing_queued_nor_recorded(backend: Backend, sql: Any, tick: Tick) -> None:
    assert tick() == {
        "due_rules": 0,
        "queued": 0,
        "skipped_active_job": 0,
        "waiting_for_connection": 0,
        "reauth_required": 0,
        "failed": 0,
    }
    assert jobs(sql) == []
    with sql.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM sync_rules")).scalar_one() == 0


def test_an_ebay_rule_waits_while_the_account_must_be_connected_again(
    backend: Backend, sql: Any, tick: Tick, clock: Clock
) -> None:
    connect_account(sql, "ebay", status="needs_reauth")

    assert tick()["reauth_required"] == 2
    shown = rules(backend)
    for kind in ("listings", "orders"):
        assert shown[("ebay", kind)]["last_outcome"]["code"] == "reauth_required"
        assert (shown[("ebay", kind)]["connected"], shown[("ebay", kind)]["last_run_at"]) == (False, None)
    clock.advance(minutes=20)
    assert tick()["due_rules"] == 0  # already recorded: nothing new
    assert jobs(sql) == []

    connect_account(sql, "ebay", status="active")  # the user connected it again
    clock.advance(minutes=1)
    report = tick()

    assert report["reauth_required"] == 0
    ran = outcome(backend, "ebay", "orders")
    assert ran["at"] == tick_of(clock.now)
    if find_workflow("ebay", "sync_orders") is not None:
        assert ran["code"] == "queued"
        assert actions(sql) == ["ebay:sync", "ebay:sync_orders"]
    else:  # the eBay jobs are not built yet: the job is refused, and the rule says why
        assert (ran["code"], ran["reason"]) == ("failed", "action_not_available")
        assert jobs(sql) == []


def test_an_ebay_rule_of_an_account_that_was_disconnected_waits_for_a_connection(
    backend: Backend, sql: Any, tick: Tick
) -> None:
    connect_account(sql, "ebay")
    change(backend, {"marketplace": "ebay", "kind": "orders", "interval_minutes": 30})
    with sql.begin() as connection:
        connection.execute(text("DELETE FROM oauth_credentials"))  # DELETE /marketplaces/ebay

    assert tick()["waiting_for_connection"] == 1  # the listings rule has no row: nothing to wait for
    waiting = outcome(backend, "ebay", "orders")
    assert waiting["code"] == "waiting_for_connection"


def test_a_disabled_rule_never_fires(backend: Backend, sql: Any, tick: Tick, clock: Clock) -> None:
    backend.open_tab("alice")
    change(backend, {"marketplace": "vinted", "kind": "orders", "enabled": False})

    for _ in range(4):
        tick()
        backend.run_queue()
        clock.advance(minutes=20)

    assert actions(sql) == ["vinted:sync", "vinted:sync"]  # the listings rule, every 60 minutes
    shown = rules(backend)[("vinted", "orders")]
    assert (shown["last_run_at"], shown["last_outcome"], shown["next_run_at"]) == (None, None, None)


def test_a_users_rules_and_jobs_do_not_affect_another_users(
    backend: Backend, sql: Any, tick: Tick, clock: Clock
) -> None:
    backend.open_tab("alice")
    backend.open_tab("bob")
    change(backend, {"marketplace": "vinted", "kind": "listings", "enabled": False}, user="alice")
    change(backend, {"marketplace": "vinted", "kind": "orders", "interval_minutes": 30}, user="bob")

    tick()  # alice's orders job stays pending: bob's rules do not wait for it
    clock.advance(minutes=15)
    tick()

    assert actions(sql, "alice") == ["vinted:orders"]
    assert actions(sql, "bob") == ["vinted:orders", "vinted:sync"]
    alice, bob = rules(backend, "alice"), rules(backend, "bob")
    assert alice[("vinted", "orders")]["last_outcome"]["code"] == "skipped_active_job"
    assert bob[("vinted", "orders")]["last_outcome"]["code"] == "queued"  # 30 minutes: not due again yet
    assert (alice[("vinted", "orders")]["interval_minutes"], bob[("vinted", "orders")]["interval_minutes"]) == (15, 30)
    assert (alice[("vinted", "listings")]["enabled"], bob[("vinted", "listings")]["enabled"]) == (False, True)
    assert alice[("vinted", "orders")]["last_outcome"]["job_id"] != bob[("vinted", "orders")]["last_outcome"]["job_id"]
