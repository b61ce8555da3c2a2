"""The periodic functions leave PostgreSQL alone while nothing can be due, and still find everything that is
(crosslist.due_times): real PostgreSQL, the DueTimes table in moto, the real stores, and one clock the tests
move for the schedules' `now` and the functions' wall clock alike.

The tests run with the default settle window (120 s) unless they say why not: on the shared clock, the runs
a minute apart after a change look at PostgreSQL while it lasts, as in AWS. What reaches PostgreSQL is counted
on the engine (connections taken from the pool, statements sent).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from crosslist.auth.credentials import REFRESH_WINDOW, CredentialStore, DueCredential, TokenSet
from crosslist.auth.refresh import scheduled_refresh
from crosslist.auth.vault import KmsKeys
from crosslist.db.engine import make_engine, make_session_factory, transaction
from crosslist.db.models import JobLane
from crosslist.due_times import (
    SETTLE_SECONDS,
    TRUST_SECONDS,
    DueTimes,
    DynamoDueTimeStore,
    LastLook,
    Watched,
    announce,
    announce_before_commit,
)
from crosslist.errors import ServiceUnavailable
from crosslist.jobs import service as job_service
from crosslist.jobs.lanes import PostgresLaneStore
from crosslist.jobs.schemas import CreateJobRequest
from crosslist.jobs.service import JobService
from crosslist.jobs.sweeper import OVERDUE_AFTER, UNQUEUED_AFTER, Sweeper, SweepReport
from crosslist.sync_rules.rules import tick_of
from crosslist.sync_rules.scheduler import SyncScheduler, TickReport
from crosslist.sync_rules.store import PostgresSyncRuleStore, RuleChange
from tests.integration.conftest import count
from tests.support.due_times import DatabaseUse, FakeClock, RecordingJobQueue

pytestmark = pytest.mark.integration

SETTLED = timedelta(seconds=SETTLE_SECONDS)


@dataclass
class World:
    """The functions' side: sessions announcing what they change, the DueTimes item, a JobsQueue."""

    engine: Engine
    sessions: sessionmaker[Session]
    store: DynamoDueTimeStore
    clock: FakeClock
    use: DatabaseUse
    queue: RecordingJobQueue = field(default_factory=RecordingJobQueue)
    settle_seconds: float = SETTLE_SECONDS

    def due_times(self, watched: Watched) -> DueTimes:
        return DueTimes(self.store, watched, settle_seconds=self.settle_seconds, wall_clock=self.clock.wall)

    @property
    def lanes(self) -> PostgresLaneStore:
        return PostgresLaneStore(self.sessions)

    @property
    def jobs(self) -> JobService:
        return JobService(self.sessions, self.queue)

    def sweep(self) -> tuple[SweepReport, tuple[int, int]]:
        """One run of the sweeper function (a new instance each time: only the DueTimes item carries over), and
        what it asked of PostgreSQL: (connections, statements)."""
        mark = self.use.now()
        report = Sweeper(self.lanes, self.queue, self.due_times("lanes"), clock=self.clock).sweep()
        return report, self.use.since(mark)

    def sweep_until_quiet(self) -> None:
        """Sweep every minute until a sweep leaves PostgreSQL alone: the changes made so far have settled."""
        for _ in range(5):
            self.clock.advance(minutes=1)
            if not self.sweep()[0].looked:
                return
        raise AssertionError("the sweeper never stopped looking at PostgreSQL")

    def swept_lanes(self) -> list[tuple[str, str]]:
        return [(wake.user_id, wake.marketplace) for wake in self.queue.woken if wake.cause.startswith("sweep:")]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # to the millisecond, as the item keeps times
    monkeypatch.setattr(job_service, "_job_clock", clock)  # jobs are created at the test's time too
    return clock


@pytest.fixture
def world(database: str, aws: dict[str, Any], clock: FakeClock) -> Iterator[World]:
    engine = make_engine(database)
    sessions = make_session_factory(engine)
    table = boto3.resource("dynamodb").Table(aws["provisioned"].tables["DueTimesTable"])
    store = DynamoDueTimeStore(table)
    announce_before_commit(sessions, store, wall_clock=clock.wall)  # as runtime.sessions() does in AWS
    yield World(engine, sessions, store, clock, DatabaseUse(engine))
    engine.dispose()


def job_ids(sql: Any) -> list[str]:
    with sql.connect() as connection:
        return [str(row[0]) for row in connection.execute(text("SELECT id FROM marketplace_jobs"))]


# ------------------------------------------------------------------ announcing before the commit


def test_a_committed_change_is_announced_at_its_commit(world: World, clock: FakeClock) -> None:
    with transaction(world.sessions) as session:
        announce(session, "lanes", "tokens")
        clock.advance(seconds=5)  # the rest of the transaction: the announcement is written when it commits
        committed_at = clock.wall()

    assert world.store.last_look("lanes") == LastLook(changed_at=committed_at)
    assert world.store.last_look("tokens") == LastLook(changed_at=committed_at)
    assert world.store.last_look("sync_rules") == LastLook()


def test_a_change_rolled_back_is_never_announced(world: World, sql: Any) -> None:
    def failing_request() -> None:
        with transaction(world.sessions) as session:
            session.add(JobLane(user_id="alice", marketplace="vinted", wake_at=world.clock()))
            announce(session, "lanes")
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        failing_request()

    assert world.store.last_look("lanes") == LastLook()
    assert count(sql, "SELECT count(*) FROM job_lanes") == 0


def test_a_job_whose_announcement_cannot_be_written_is_not_created(world: World, sql: Any) -> None:
    """DynamoDB refuses the write: the job would be one the sweeper could miss for a day, so there is none (the
    request fails and can be sent again) and nothing was queued."""
    unwritable = DynamoDueTimeStore(boto3.resource("dynamodb").Table("NoSuchTable"))
    sessions = make_session_factory(world.engine)
    announce_before_commit(sessions, unwritable)

    with pytest.raises(ClientError):
        JobService(sessions, world.queue).create("alice", CreateJobRequest(marketplace="vinted", action="sync"))

    assert job_ids(sql) == []
    assert world.queue.woken == []


def test_a_change_in_a_savepoint_is_announced_by_the_commit_that_keeps_it(world: World, clock: FakeClock) -> None:
    """A batch creates each job in a savepoint: the job's announcement is written by the time it commits."""
    with transaction(world.sessions) as session:
        with session.begin_nested():
            announce(session, "lanes")
        clock.advance(seconds=1)
        committed_at = clock.wall()

    changed_at = world.store.last_look("lanes").changed_at
    assert changed_at is not None
    assert committed_at - SETTLE_SECONDS < changed_at <= committed_at


# ------------------------------------------------------------------ the sweeper


def test_an_idle_system_is_swept_without_touching_postgresql_after_the_first_look(
    world: World, clock: FakeClock
) -> None:
    first, used = world.sweep()
    assert first.looked
    assert used[1] > 0

    for _ in range(30):  # half an hour of sweeps, each by a new instance
        clock.advance(minutes=1)
        report, used = world.sweep()
        assert not report.looked
        assert used == (0, 0)


@pytest.mark.parametrize("phase", [0, 1, 30, 59], ids=lambda s: f"sweeping {s}s after each minute of creation")
def test_a_job_whose_wake_up_was_lost_is_woken_by_a_sweep_within_two_minutes(
    world: World, clock: FakeClock, sql: Any, phase: int
) -> None:
    # Transactions of a few seconds: with the default window every sweep of the two minutes after the creation
    # would look at PostgreSQL because of it, and the due time the first of them records would go untested.
    world.settle_seconds = 5
    world.sweep()  # nothing to find: the sweeper would leave PostgreSQL alone from now on
    clock.advance(seconds=10)
    world.queue.losing = True  # SQS unreachable: the job is stored, its wake-up never sent
    with pytest.raises(ServiceUnavailable) as unqueued:
        world.jobs.create("alice", CreateJobRequest(marketplace="vinted", action="sync"))
    world.queue.losing = False
    job_id = unqueued.value.details["job_id"]
    created = clock()

    clock.advance(seconds=phase)
    woken_at = None
    while woken_at is None and clock() < created + timedelta(minutes=10):  # the schedule, every minute
        report, _ = world.sweep()
        if f"created:{job_id}" in world.queue.causes():
            woken_at = clock()
            assert report.unqueued_jobs == 1
        clock.advance(minutes=1)

    assert woken_at is not None
    assert UNQUEUED_AFTER < woken_at - created <= UNQUEUED_AFTER + timedelta(minutes=1)
    assert count(sql, "SELECT count(*) FROM marketplace_jobs WHERE enqueued_at IS NOT NULL") == 1
    assert world.queue.causes() == [f"created:{job_id}"]  # once: the next sweeps find it queued


@pytest.mark.parametrize("phase", [0, 15, 45], ids=lambda s: f"sweeping {s}s after each minute of the change")
def test_a_lane_due_sooner_whose_timer_was_lost_is_woken_once_overdue_and_postgresql_left_alone_until_then(
    world: World, clock: FakeClock, phase: int
) -> None:
    start = clock()
    with world.lanes.locked("alice", "vinted") as tx:  # a parked lane, checked again in 6 hours
        tx.lane.wake_at = start + timedelta(hours=6)
    world.sweep_until_quiet()  # the sweeper knows: nothing before 6 hours

    with world.lanes.locked("alice", "vinted") as tx:  # a backoff ending in 10 minutes; its timer is lost
        wake_at = clock() + timedelta(minutes=10)
        tx.lane.wake_at = wake_at
    changed = clock()

    clock.advance(seconds=phase)
    woken_at = None
    while woken_at is None and clock() < start + timedelta(hours=1):
        clock.advance(minutes=1)
        report, used = world.sweep()
        if world.swept_lanes():
            woken_at = clock()
            assert report.overdue_lanes == 1
        elif clock() > changed + SETTLED + timedelta(minutes=1):
            # A look that began once the change had settled said when: until then, nothing is asked.
            assert used == (0, 0), f"PostgreSQL asked {clock() - changed} after the change, nothing to find"

    assert woken_at is not None
    assert wake_at + OVERDUE_AFTER < woken_at <= wake_at + OVERDUE_AFTER + timedelta(minutes=1)
    assert world.swept_lanes() == [("alice", "vinted")]


def test_a_lane_due_later_does_not_make_the_sweeper_look(world: World, clock: FakeClock) -> None:
    with world.lanes.locked("alice", "vinted") as tx:
        tx.lane.wake_at = clock() + timedelta(minutes=30)
    world.sweep_until_quiet()  # the item says: in 30 minutes

    with world.lanes.locked("alice", "vinted") as tx:  # pushed back: the earlier due time is merely early
        tx.lane.wake_at = clock() + timedelta(hours=2)
    clock.advance(minutes=1)
    assert world.sweep()[1] == (0, 0)


def test_a_lane_made_overdue_by_hand_is_still_swept_once_the_last_look_is_a_day_old(
    world: World, clock: FakeClock, sql: Any
) -> None:
    with world.lanes.locked("alice", "vinted"):
        pass  # a lane with nothing due
    world.sweep()
    looked = clock()
    with sql.begin() as connection:  # in psql, announced to nobody
        connection.execute(text("UPDATE job_lanes SET wake_at = now() - interval '5 minutes'"))

    for after in (timedelta(minutes=1), timedelta(hours=12), timedelta(seconds=TRUST_SECONDS)):
        clock.now = looked + after
        assert not world.sweep()[0].looked
    assert world.swept_lanes() == []

    clock.now = looked + timedelta(seconds=TRUST_SECONDS, minutes=1)
    report, _ = world.sweep()
    assert report.looked
    assert world.swept_lanes() == [("alice", "vinted")]


def test_a_lane_resumed_after_reauth_is_swept_if_its_wake_up_is_lost(world: World, clock: FakeClock) -> None:
    with world.lanes.locked("alice", "ebay") as tx:  # waits for the user to connect eBay again
        tx.lane.pause_reason = "reauth_required"
        tx.lane.paused_until = clock() + timedelta(days=30)
    world.sweep_until_quiet()  # nothing due while it waits

    assert world.lanes.resume_after_reauth("alice", "ebay")  # connected again; the wake-up that follows is lost
    clock.advance(minutes=1)
    world.sweep()
    assert world.swept_lanes() == [("alice", "ebay")]


# ------------------------------------------------------------------ the scheduler


@dataclass
class Scheduler:
    world: World
    live_users: set[str] = field(default_factory=set)

    def tick(self) -> tuple[TickReport, tuple[int, int]]:
        mark = self.world.use.now()
        report = SyncScheduler(
            PostgresSyncRuleStore(self.world.sessions),
            lambda: set(self.live_users),
            self.world.jobs,
            self.world.clock,
            due_times=self.world.due_times("sync_rules"),
        ).run()
        return report, self.world.use.since(mark)


@pytest.fixture
def scheduler(world: World, clock: FakeClock) -> Scheduler:
    clock.now = tick_of(clock()) + timedelta(seconds=2)  # a tick fires a few seconds after its minute
    return Scheduler(world)


def test_ticks_leave_postgresql_alone_until_the_next_rule_is_due(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.live_users = {"alice"}
    first, _ = scheduler.tick()
    assert first.outcomes == {"queued": 2}  # alice's Vinted listings and orders, due at once

    for _ in range(14):  # the orders rule is due again 15 minutes later
        clock.advance(minutes=1)
        report, used = scheduler.tick()
        assert not report.looked
        assert used == (0, 0)

    clock.advance(minutes=1)
    report, _ = scheduler.tick()
    assert report.looked
    assert report.outcomes == {"skipped_active_job": 1}  # its first job still waits for the extension


def test_a_user_connecting_or_leaving_makes_the_next_tick_look(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.live_users = {"alice"}
    scheduler.tick()
    clock.advance(minutes=1)
    assert not scheduler.tick()[0].looked

    scheduler.live_users = {"alice", "bob"}
    clock.advance(minutes=1)
    report, _ = scheduler.tick()
    assert report.outcomes == {"queued": 2}  # bob's rules, at the first tick he is there

    clock.advance(minutes=1)
    assert not scheduler.tick()[0].looked
    scheduler.live_users = {"alice"}
    clock.advance(minutes=1)
    assert scheduler.tick()[0].looked


def test_a_rule_changed_to_run_sooner_runs_at_its_new_time(scheduler: Scheduler, clock: FakeClock) -> None:
    scheduler.live_users = {"alice"}
    scheduler.tick()
    ran = tick_of(clock())
    clock.advance(minutes=3)
    assert not scheduler.tick()[0].looked

    PostgresSyncRuleStore(scheduler.world.sessions).change(
        "alice", [RuleChange(marketplace="vinted", kind="orders", interval_minutes=5, interval_given=True)]
    )
    ticks: dict[datetime, TickReport] = {}
    for _ in range(3):
        clock.advance(minutes=1)
        ticks[tick_of(clock())] = scheduler.tick()[0]

    assert ticks[ran + timedelta(minutes=5)].outcomes == {"skipped_active_job": 1}  # not at 15 minutes
    assert ticks[ran + timedelta(minutes=6)].outcomes == {}


# ------------------------------------------------------------------ oauth_refresh


@pytest.fixture
def credentials(world: World, clock: FakeClock) -> CredentialStore:
    kms = boto3.client("kms")
    key_id = kms.create_key(Description="crosslist credentials")["KeyMetadata"]["KeyId"]
    return CredentialStore(world.sessions, KmsKeys(kms, key_id), clock=clock)


@dataclass
class Refreshes:
    world: World
    due: list[list[str]] = field(default_factory=list)

    def run(self) -> tuple[bool, tuple[int, int]]:
        """One run of oauth_refresh: whether it looked (then `due` has what it was handed), and what it asked
        of PostgreSQL."""

        def refresh(due: list[DueCredential]) -> int:
            self.due.append(sorted(f"{credential.user_id}:{credential.marketplace}" for credential in due))
            return len(due)

        mark = self.world.use.now()
        report = scheduled_refresh(self.world.sessions, self.world.due_times("tokens"), refresh, self.world.clock())
        return report is not None, self.world.use.since(mark)


def test_oauth_refresh_leaves_postgresql_alone_until_a_token_enters_its_refresh_window(
    world: World, clock: FakeClock, credentials: CredentialStore
) -> None:
    expires = clock() + timedelta(hours=2, minutes=7)
    credentials.save("alice", "etsy", TokenSet("access", expires, refresh_token="refresh"))
    refreshes = Refreshes(world)
    clock.advance(minutes=15)
    assert refreshes.run()[0]  # the first run looks: nothing to refresh yet
    assert refreshes.due == [[]]

    while clock() + timedelta(minutes=15) < expires - REFRESH_WINDOW:  # every 15 minutes
        clock.advance(minutes=15)
        assert refreshes.run() == (False, (0, 0))

    clock.advance(minutes=15)  # 23 minutes before it expires
    assert refreshes.run()[0]
    assert refreshes.due == [[], ["alice:etsy"]]


def test_a_new_credential_makes_the_next_oauth_refresh_look(
    world: World, clock: FakeClock, credentials: CredentialStore
) -> None:
    refreshes = Refreshes(world)
    refreshes.run()
    clock.advance(minutes=15)
    assert not refreshes.run()[0]

    # Connected with a token that lasts 40 minutes: due for refresh at once.
    credentials.save("bob", "ebay", TokenSet("access", clock() + timedelta(minutes=40), refresh_token="refresh"))
    clock.advance(minutes=15)
    assert refreshes.run()[0]
    assert refreshes.due[-1] == ["bob:ebay"]


def test_a_credential_without_a_refresh_token_never_makes_oauth_refresh_look(
    world: World, clock: FakeClock, credentials: CredentialStore
) -> None:
    credentials.save("alice", "ebay", TokenSet("access", clock() + timedelta(minutes=1)))  # nothing to refresh
    refreshes = Refreshes(world)
    clock.advance(minutes=15)
    assert refreshes.run()[0]
    for _ in range(4):
        clock.advance(minutes=15)
        assert refreshes.run() == (False, (0, 0))
    assert refreshes.due == [[]]
