"""Vinted pacing: calls spaced like a person, long pauses, an hourly write budget, no sleeping."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosslist.jobs.pacing import PacingConfig, PacingState, due_at, pause_due, record
from crosslist.settings import Settings
from crosslist.workflows.base import CallKind

CONFIG = PacingConfig(
    enabled=True,
    read=(3, 8),
    write=(5, 12),
    delete=(6, 15),
    min_gap=3,
    pause_every=(10, 15),
    pause=(15, 30),
    writes_per_hour=30,
)
START = 1_750_000_000.0
EPSILON = 1e-6  # float rounding of epoch seconds


def send(kinds: list[CallKind], config: PacingConfig = CONFIG, seed: int = 0) -> list[tuple[CallKind, float, bool]]:
    """A lane that sends each call exactly when it is due: (kind, sent at, after a long pause)."""
    rng, state, now, sent = random.Random(seed), PacingState(), START, []
    for kind in kinds:
        paused = pause_due(state, config)
        now = max(now, due_at(state, kind, config))
        sent.append((kind, now, paused))
        state = PacingState.from_json(record(state, kind, now, config, rng).to_json())  # as stored between calls
    return sent


def gaps(sent: list[tuple[CallKind, float, bool]]) -> list[tuple[CallKind, float, bool]]:
    return [(kind, at - before, paused) for (_, before, _), (kind, at, paused) in itertools.pairwise(sent)]


def test_defaults_follow_the_marketplace_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSLIST_PACING", "on")  # the test suite turns pacing off
    assert PacingConfig.from_settings(Settings()) == CONFIG


def test_settings_can_turn_pacing_off_and_round_the_pause_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSLIST_PACING", "off")
    monkeypatch.setenv("CROSSLIST_PACING_PAUSE_EVERY", "9.6-14.4")
    config = PacingConfig.from_settings(Settings())
    assert not config.enabled
    assert config.pause_every == (10, 14)


def test_the_first_call_of_a_lane_goes_at_once() -> None:
    assert due_at(PacingState(), "write", CONFIG) == 0.0


def test_consecutive_writes_stay_within_the_write_range_and_above_the_minimum() -> None:
    config = replace(CONFIG, min_gap=6, pause=(0, 0))
    for _, gap, _ in gaps(send(["write"] * 29, config, seed=1)):
        assert 6 - EPSILON <= gap <= 12 + EPSILON


def test_reads_and_deletes_use_their_own_ranges() -> None:
    config = replace(CONFIG, pause=(0, 0))
    for kind, gap, _ in gaps(send(["read", "delete"] * 14, config, seed=2)):
        low, high = config.gap_range(kind)
        assert low - EPSILON <= gap <= high + EPSILON


def test_a_long_pause_of_15_to_30_seconds_comes_every_10_to_15_calls() -> None:
    sent = send(["read"] * 200, seed=3)
    paused_at = [index for index, (_, _, paused) in enumerate(sent) if paused]
    assert paused_at
    for before, after in zip([0, *paused_at], paused_at, strict=False):
        assert 10 <= after - before <= 15
    for _, gap, paused in gaps(sent):
        assert (18 - EPSILON <= gap <= 38 + EPSILON) if paused else (3 - EPSILON <= gap <= 8 + EPSILON)


def test_the_31st_write_within_an_hour_waits_until_the_first_leaves_the_hour() -> None:
    sent = send(["write"] * 31, seed=4)
    first, thirtieth, last = sent[0][1], sent[29][1], sent[30][1]
    assert thirtieth - first < 3600
    assert last == first + 3600


def test_reads_are_not_held_by_the_write_budget() -> None:
    rng, state, now = random.Random(5), PacingState(), START
    for _ in range(30):
        now = max(now, due_at(state, "write", CONFIG))
        state = record(state, "write", now, CONFIG, rng)
    assert due_at(state, "delete", CONFIG) >= START + 3600
    assert due_at(state, "read", CONFIG) <= now + 8 + 30


def test_disabled_pacing_sends_every_call_at_once_and_still_records() -> None:
    config = replace(CONFIG, enabled=False)
    state = record(PacingState(), "write", START, config, random.Random(6))
    assert state.last_call_at == START
    assert state.write_times == (START,)
    assert due_at(state, "write", config) == 0.0


def test_asking_twice_gives_the_same_answer() -> None:
    state = record(PacingState(), "read", START, CONFIG, random.Random(7))
    assert due_at(state, "write", CONFIG) == due_at(state, "write", CONFIG)
    assert due_at(PacingState.from_json(state.to_json()), "write", CONFIG) == due_at(state, "write", CONFIG)


def test_state_round_trips_through_json() -> None:
    rng, state = random.Random(8), PacingState()
    for offset, kind in enumerate(["write", "read", "delete"]):
        state = record(state, kind, START + 10 * offset, CONFIG, rng)  # type: ignore[arg-type]
    assert PacingState.from_json(state.to_json()) == state


def test_a_missing_or_damaged_state_is_a_fresh_lane() -> None:
    assert PacingState.from_json(None) == PacingState()
    assert PacingState.from_json({}) == PacingState()
    assert PacingState.from_json({"unknown": 1, "gap_draw": "x", "write_times": 5}) == PacingState()
    assert PacingState.from_json({"last_call_at": START}) == PacingState(last_call_at=START)


def test_writes_older_than_an_hour_are_forgotten() -> None:
    rng = random.Random(9)
    state = record(PacingState(), "write", START, CONFIG, rng)
    state = record(state, "read", START + 3600, CONFIG, rng)
    assert state.write_times == ()


@settings(max_examples=200, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["read", "write", "delete"]), min_size=1, max_size=120),
    writes_per_hour=st.integers(1, 8),
    seed=st.integers(0, 2**32),
)
def test_a_lane_sending_when_due_never_breaks_the_pacing_rules(
    kinds: list[CallKind], writes_per_hour: int, seed: int
) -> None:
    config = replace(CONFIG, writes_per_hour=writes_per_hour)
    sent = send(kinds, config, seed)
    for kind, gap, _ in gaps(sent):
        assert gap >= config.min_gap - EPSILON
        assert gap >= config.gap_range(kind)[0] - EPSILON
        if kind == "read":
            assert gap <= config.read[1] + config.pause[1] + EPSILON
    writes = [at for kind, at, _ in sent if kind != "read"]
    for index, at in enumerate(writes):
        assert sum(1 for before in writes[:index] if before > at - 3600 + EPSILON) < writes_per_hour
