"""When a periodic function may leave PostgreSQL alone (crosslist.due_times): the rule, a look's record, and the
DynamoDB item. A wrong "nothing is due" strands a lane or a sync rule: every way the item can fall short must
make the schedule look."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from crosslist.due_times import (
    SETTLE_SECONDS,
    TRUST_SECONDS,
    DueTimes,
    DynamoDueTimeStore,
    LastLook,
    Look,
    fingerprint_of,
)
from devstack.aws import provision
from tests.conftest import REPO
from tests.support.due_times import FakeClock, InMemoryDueTimeStore

START = datetime(2030, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store() -> InMemoryDueTimeStore:
    return InMemoryDueTimeStore()


def due_times(store: InMemoryDueTimeStore, clock: FakeClock, settle: float = SETTLE_SECONDS) -> DueTimes:
    return DueTimes(store, "lanes", settle_seconds=settle, wall_clock=clock.wall)


def look_finding(times: DueTimes, clock: FakeClock, next_due: datetime | None, fingerprint: str = "") -> None:
    """A run that looks at PostgreSQL now (it must be allowed to) and finds `next_due`."""
    look = times.look(clock(), fingerprint)
    assert look is not None
    look.found(next_due)


# ------------------------------------------------------------------ the rule


def test_without_an_item_the_schedule_looks(store: InMemoryDueTimeStore, clock: FakeClock) -> None:
    assert due_times(store, clock).look(clock()) is not None


def test_after_a_look_nothing_is_looked_at_again_until_its_due_time(
    store: InMemoryDueTimeStore, clock: FakeClock
) -> None:
    times = due_times(store, clock)
    due = START + timedelta(minutes=10)
    look_finding(times, clock, due)

    clock.advance(minutes=9, seconds=59)
    assert times.look(clock()) is None
    clock.now = due  # due at that very moment: PostgreSQL would show it
    assert times.look(clock()) is not None
    clock.advance(minutes=5)
    assert times.look(clock()) is not None


def test_a_look_that_found_nothing_due_holds_until_something_changes(
    store: InMemoryDueTimeStore, clock: FakeClock
) -> None:
    times = due_times(store, clock)
    look_finding(times, clock, None)

    clock.advance(hours=23)
    assert times.look(clock()) is None
    store.changed({"lanes"}, clock.wall())
    assert times.look(clock()) is not None


def test_a_change_announced_after_the_look_began_makes_the_next_run_look(
    store: InMemoryDueTimeStore, clock: FakeClock
) -> None:
    times = due_times(store, clock, settle=0)
    look = times.look(clock())
    assert look is not None
    clock.advance(seconds=2)
    store.changed({"lanes"}, clock.wall())  # while the look read PostgreSQL: it may not have seen it
    clock.advance(seconds=1)
    look.found(START + timedelta(hours=1))  # recorded after the change, yet the look began before it

    clock.advance(minutes=1)
    assert times.look(clock()) is not None


def test_a_change_announced_shortly_before_a_look_began_makes_the_next_run_look_until_it_settled(
    store: InMemoryDueTimeStore, clock: FakeClock
) -> None:
    times = due_times(store, clock, settle=120)
    store.changed({"lanes"}, clock.wall())  # its transaction may commit up to 120 s later
    clock.advance(seconds=119)
    look_finding(times, clock, START + timedelta(hours=1))  # may have read PostgreSQL before that commit

    clock.advance(minutes=1)
    assert times.look(clock()) is not None
    look_finding(times, clock, START + timedelta(hours=1))  # began 179 s after the change: it saw it

    clock.advance(minutes=1)
    assert times.look(clock()) is None


def test_a_change_exactly_settle_seconds_before_the_look_still_counts(
    store: InMemoryDueTimeStore, clock: FakeClock
) -> None:
    times = due_times(store, clock, settle=120)
    store.changed({"lanes"}, clock.wall())
    clock.advance(seconds=120)
    look_finding(times, clock, None)

    clock.advance(minutes=1)
    assert times.look(clock()) is not None


def test_a_change_to_another_watched_thing_leaves_this_one_alone(store: InMemoryDueTimeStore, clock: FakeClock) -> None:
    times = due_times(store, clock)
    look_finding(times, clock, None)

    store.changed({"sync_rules", "tokens"}, clock.wall())
    clock.advance(minutes=1)
    assert times.look(clock()) is None


def test_a_look_holds_only_for_the_fingerprint_it_was_made_with(store: InMemoryDueTimeStore, clock: FakeClock) -> None:
    times = DueTimes(store, "sync_rules", wall_clock=clock.wall)
    alice = fingerprint_of(["alice"])
    look_finding(times, clock, None, alice)

    clock.advance(minutes=1)
    assert times.look(clock(), fingerprint_of(["alice", "alice"])) is None  # the same users
    assert times.look(clock(), fingerprint_of(["alice", "bob"])) is not None
    assert times.look(clock(), fingerprint_of([])) is not None
    assert times.look(clock()) is not None


def test_fingerprints_depend_on_the_set_of_users_only() -> None:
    assert fingerprint_of(["bob", "alice"]) == fingerprint_of(["alice", "bob", "alice"])
    assert fingerprint_of(["alice"]) != fingerprint_of(["alice", "bob"])
    assert fingerprint_of([]) != fingerprint_of(["alice"])


def test_a_look_is_trusted_for_a_day_at_most(store: InMemoryDueTimeStore, clock: FakeClock) -> None:
    times = due_times(store, clock)
    look_finding(times, clock, None)

    clock.advance(seconds=TRUST_SECONDS)
    assert times.look(clock()) is None
    clock.advance(seconds=1)  # a change made by hand in psql, never announced, is seen now
    assert times.look(clock()) is not None


def test_an_unreadable_item_makes_the_schedule_look(store: InMemoryDueTimeStore, clock: FakeClock) -> None:
    times = due_times(store, clock)
    look_finding(times, clock, None)
    clock.advance(minutes=1)
    assert times.look(clock()) is None

    store.failing = True
    assert times.look(clock()) is not None


def test_a_look_that_cannot_be_recorded_is_not_an_error_and_the_next_run_looks(
    store: InMemoryDueTimeStore, clock: FakeClock
) -> None:
    times = due_times(store, clock)
    look_finding(times, clock, START + timedelta(minutes=5))
    clock.advance(minutes=5)
    look = times.look(clock())
    assert look is not None

    store.failing = True
    look.found(START + timedelta(hours=5))  # logged, never raised: the run's own work is done
    store.failing = False
    clock.advance(minutes=1)
    assert times.look(clock()) is not None  # the item still holds the earlier look: due, so look


def test_the_due_time_is_compared_with_the_schedules_now_and_the_looks_age_with_the_wall_clock() -> None:
    """`due_at` is compared with the schedule's `now`; the look's age and the changes with the wall clock."""
    last = LastLook(looked_at=1000.0, due_at=5000.0, changed_at=None)
    assert last.proves_nothing_due(now=4999.0, wall_now=1000.0 + TRUST_SECONDS)
    assert not last.proves_nothing_due(now=5000.0, wall_now=1001.0)
    assert not last.proves_nothing_due(now=0.0, wall_now=1001.0 + TRUST_SECONDS)


# ------------------------------------------------------------------ properties

instants = st.floats(min_value=0, max_value=10 * TRUST_SECONDS, allow_nan=False)
maybe_instants = st.none() | instants


@given(
    last=st.builds(
        LastLook,
        looked_at=maybe_instants,
        due_at=maybe_instants,
        changed_at=maybe_instants,
        fingerprint=st.sampled_from(["", "a", "b"]),
    ),
    now=instants,
    wall_now=instants,
    fingerprint=st.sampled_from(["", "a", "b"]),
    settle=st.floats(min_value=0, max_value=3 * SETTLE_SECONDS, allow_nan=False),
)
def test_nothing_due_is_proved_only_by_a_recent_settled_look_whose_due_time_has_not_come(
    last: LastLook, now: float, wall_now: float, fingerprint: str, settle: float
) -> None:
    if last.proves_nothing_due(now, wall_now, fingerprint, settle):
        assert last.looked_at is not None
        assert wall_now - last.looked_at <= TRUST_SECONDS
        assert last.due_at is None or now < last.due_at
        assert last.changed_at is None or last.changed_at < last.looked_at - settle
        assert fingerprint == last.fingerprint


BASE_MS = int(START.timestamp() * 1000)


def _seconds(low: int, high: int) -> st.SearchStrategy[int]:
    """Whole seconds, in ms: on a coarse grid events meet often (a change while a look reads)."""
    return st.integers(low, high).map(lambda seconds: seconds * 1000)


@dataclass(frozen=True)
class Sooner:
    """Something becomes due `due` after `at` (before it, if negative): announced at `at`, committed `commit_delay`
    later (within the settle window: a function's transaction never lasts longer)."""

    at: int
    due: int
    commit_delay: int


@dataclass(frozen=True)
class Later:
    """Something due is handled or pushed back (never announced: the item was early enough for it)."""

    at: int
    which: int
    pushed_by: int | None  # None: gone


@dataclass(frozen=True)
class Run:
    """A schedule's run at `at`; if it looks, it reads PostgreSQL `read_delay` after it began and records what
    it found `record_delay` after that."""

    at: int
    read_delay: int
    record_delay: int


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp((BASE_MS + ms) / 1000, UTC)


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, list[Sooner | Later | Run]]:
    """Changes at random moments of a minute, and a schedule running every few seconds through them."""
    settle_ms = draw(st.sampled_from([0, 2_000, 10_000]))
    at = _seconds(0, 60)
    changes = draw(
        st.lists(
            st.one_of(
                st.builds(Sooner, at, _seconds(-10, 60), _seconds(0, settle_ms // 1000)),
                st.builds(Later, at, st.integers(0, 10), st.none() | _seconds(1, 60)),
            ),
            max_size=8,
        )
    )
    period = draw(st.sampled_from([1, 2, 5]))
    runs = [Run(second * 1000, draw(_seconds(0, 3)), draw(_seconds(0, 3))) for second in range(0, 90, period)]
    return settle_ms, [*changes, *runs]


class World:
    """PostgreSQL (what is due, and when, in ms) and the DueTimes item, with everything that happens to them run
    in time order: the real DueTimes decides whether each run looks."""

    def __init__(self, settle_ms: int) -> None:
        self.store = InMemoryDueTimeStore()
        self.wall = 0.0
        self.times = DueTimes(self.store, "lanes", settle_seconds=settle_ms / 1000, wall_clock=lambda: self.wall)
        self.committed: dict[int, int] = {}
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def at(self, ms: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (ms, next(self._order), action))

    def run(self) -> None:
        while self._queue:
            ms, _, action = heapq.heappop(self._queue)
            self.wall = _moment(ms).timestamp()
            action()

    def sooner(self, key: int, event: Sooner) -> None:
        self.at(event.at, lambda: self.store.changed({"lanes"}, self.wall))  # announced right before the commit
        self.at(event.at + event.commit_delay, lambda: self.committed.__setitem__(key, event.at + event.due))

    def later(self, event: Later) -> None:
        def change() -> None:
            if self.committed:
                key = sorted(self.committed)[event.which % len(self.committed)]
                if event.pushed_by is None:
                    del self.committed[key]
                else:
                    self.committed[key] += event.pushed_by

        self.at(event.at, change)

    def schedule(self, event: Run) -> None:
        def run() -> None:
            look = self.times.look(_moment(event.at))
            if look is None:
                soonest = min(self.committed.values(), default=None)
                assert soonest is None or soonest > event.at, f"skipped at {event.at}, {soonest} was due"
            else:
                self.at(event.at + event.read_delay, lambda: read(look))

        def read(look: Look) -> None:
            soonest = min(self.committed.values(), default=None)
            found = None if soonest is None else _moment(soonest)
            self.at(event.at + event.read_delay + event.record_delay, lambda: look.found(found))

        self.at(event.at, run)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_whenever_a_run_leaves_postgresql_alone_postgresql_shows_nothing_due(
    history: tuple[int, list[Sooner | Later | Run]],
) -> None:
    """Any interleaving of changes (announced before they commit, committed within the settle window; those
    that make things due later unannounced) and runs (which read PostgreSQL some time after they begin, and
    record what they found later still): a run that skips PostgreSQL would have found nothing due in it."""
    settle_ms, events = history
    world = World(settle_ms)
    for key, event in enumerate(events):
        match event:
            case Sooner():
                world.sooner(key, event)
            case Later():
                world.later(event)
            case Run():
                world.schedule(event)
    world.run()


# ------------------------------------------------------------------ the DynamoDB item


@pytest.fixture
def table() -> Iterator[Any]:
    """The DueTimes table as template.yaml declares it, in moto."""
    with mock_aws():
        provision(REPO / "template.yaml", boto3.client("dynamodb"), boto3.client("sqs"))
        yield boto3.resource("dynamodb").Table("DueTimesTable")


def test_the_item_keeps_the_latest_look_and_the_latest_change(table: Any) -> None:
    store = DynamoDueTimeStore(table)
    assert store.last_look("lanes") == LastLook()

    store.looked("lanes", looked_at=1000.25, due_at=2000.5, fingerprint="f")
    store.changed({"lanes", "tokens"}, 1500.0)
    store.changed({"lanes"}, 1400.0)  # an older change recorded late: the later one stays
    assert store.last_look("lanes") == LastLook(looked_at=1000.25, due_at=2000.5, changed_at=1500.0, fingerprint="f")
    assert store.last_look("tokens") == LastLook(changed_at=1500.0)
    assert store.last_look("sync_rules") == LastLook()

    store.looked("lanes", looked_at=1600.0, due_at=None, fingerprint="")  # nothing due any more
    assert store.last_look("lanes") == LastLook(looked_at=1600.0, due_at=None, changed_at=1500.0)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    looked_at=st.floats(1.6e9, 1.9e9),
    offsets=st.tuples(st.floats(-3600, 3600), st.none() | st.floats(-600, 600), st.floats(-3600, 3600)),
    settle=st.sampled_from([0.0, 0.001, 120.0]),
)
def test_the_stored_item_never_proves_more_than_what_was_written(
    table: Any, looked_at: float, offsets: tuple[float, float | None, float], settle: float
) -> None:
    """DynamoDB keeps the times to the millisecond: read back, the item may only say "look" more often."""
    due_in, changed_in, now_in = offsets
    # Times as the functions have them: time.time(), and datetimes to the microsecond.
    due_at = datetime.fromtimestamp(looked_at + due_in, UTC).timestamp()
    now = datetime.fromtimestamp(looked_at + now_in, UTC).timestamp()
    written = LastLook(looked_at, due_at, None if changed_in is None else looked_at + changed_in)
    table.delete_item(Key={"watched": "lanes"})
    store = DynamoDueTimeStore(table)
    if written.changed_at is not None:
        store.changed({"lanes"}, written.changed_at)
    store.looked("lanes", looked_at=looked_at, due_at=due_at, fingerprint="")

    stored = store.last_look("lanes")
    wall_now = looked_at + 60
    if stored.proves_nothing_due(now, wall_now, "", settle):
        assert written.proves_nothing_due(now, wall_now, "", settle), (written, stored)
