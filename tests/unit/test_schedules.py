"""The devstack's EventBridge Scheduler: template parsing, rate/cron/at arithmetic, the firing loop on a fake clock."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from devstack.schedules import Schedule, Scheduler, next_fire, scheduler_event, schedules_from_template
from devstack.template import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:  # pragma: no cover - depends on the machine's tz database
        pytest.skip(f"no time zone data for {name}")


def function_with(events: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "functions/x/", "Events": events}}


def schedule_event(**properties: Any) -> dict[str, Any]:
    return {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "rate(5 minutes)", **properties}}


# ------------------------------------------------------------------------------------------ template


def test_the_real_template_has_the_sweep_sync_rules_and_oauth_refresh_schedules() -> None:
    schedules = schedules_from_template(load_template(TEMPLATE))

    assert schedules == [
        Schedule(
            name="SweeperFunction.SweepSchedule",
            function="SweeperFunction",
            expression="rate(1 minute)",
            input={"schedule": "sweep"},
            enabled=True,
            schedule_name="devstack-sweep",
        ),
        Schedule(
            name="SchedulerFunction.SyncSchedule",
            function="SchedulerFunction",
            expression="rate(1 minute)",
            input={"schedule": "sync_rules"},
            enabled=True,
            schedule_name="devstack-sync-rules",
        ),
        Schedule(
            name="OAuthRefreshFunction.RefreshSchedule",
            function="OAuthRefreshFunction",
            expression="rate(15 minutes)",
            input={"schedule": "oauth_refresh"},
            enabled=True,
            schedule_name="devstack-oauth-refresh",
        ),
    ]


def test_template_parsing_reads_state_timezone_names_and_skips_other_events() -> None:
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Fn": function_with(
                {
                    "Api": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "GET"}},
                    "Off": schedule_event(State="DISABLED", Name={"Fn::Sub": "${AWS::StackName}-off"}),
                    "Paris": schedule_event(
                        ScheduleExpression="cron(0 9 ? * MON-FRI *)",
                        ScheduleExpressionTimezone="Europe/Paris",
                        Name={"Fn::Sub": "${SomeParameter}-x"},
                    ),
                }
            ),
        }
    }

    off, paris = schedules_from_template(template, stack_name="mystack")

    assert (off.name, off.enabled, off.input, off.schedule_name) == ("Fn.Off", False, None, "mystack-off")
    assert (paris.enabled, paris.timezone, paris.expression) == (True, "Europe/Paris", "cron(0 9 ? * MON-FRI *)")
    assert paris.schedule_name == "FnParis"  # not resolvable locally: SAM's default, the logical id
    assert schedules_from_template({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}) == []


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"Input": "{not json"}, "Fn.Bad: Input is not valid JSON"),
        ({"Input": "[1, 2]"}, "Fn.Bad: Input must be a JSON object"),
        ({"Input": {"Fn::Sub": "{}"}}, "Fn.Bad: Input must be a JSON string"),
        ({"State": "PAUSED"}, "Fn.Bad: State must be ENABLED or DISABLED"),
        ({"ScheduleExpression": "every 5 minutes"}, "'every 5 minutes'"),
        ({"ScheduleExpression": {"Ref": "Expression"}}, "Fn.Bad: ScheduleExpression must be a plain string"),
        ({"ScheduleExpressionTimezone": "Mars/Olympus_Mons"}, "unknown ScheduleExpressionTimezone 'Mars/Olympus_Mons'"),
    ],
)
def test_a_schedule_the_devstack_cannot_run_fails_when_the_template_is_read(
    properties: dict[str, Any], message: str
) -> None:
    template = {"Resources": {"Fn": function_with({"Bad": schedule_event(**properties)})}}

    with pytest.raises(ValueError, match=re.escape(message)):
        schedules_from_template(template)


# ---------------------------------------------------------------------------------------------- rate


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(10 minutes)", timedelta(minutes=10)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(6 hours)", timedelta(hours=6)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(30 days)", timedelta(days=30)),
    ],
)
def test_a_rate_fires_one_period_after_the_given_time(expression: str, period: timedelta) -> None:
    after = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)

    assert next_fire(expression, after) == after + period


def test_next_fire_answers_in_utc_whatever_the_zone_of_after() -> None:
    after = datetime(2026, 6, 1, 12, 0, tzinfo=zone("Europe/Paris"))

    result = next_fire("rate(1 hour)", after)

    assert result == utc(2026, 6, 1, 11, 0)
    assert result is not None
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(5 minute)", "rate(5 minutes)"),
        ("rate(1 hours)", "rate(1 hour)"),
        ("rate(0 minutes)", "positive"),
        ("rate(2 weeks)", "minutes, hours or days"),
        ("rate(-5 minutes)", "expected rate(N unit)"),
        ("rate(1.5 hours)", "expected rate(N unit)"),
        ("rate(minutes)", "expected rate(N unit)"),
    ],
)
def test_invalid_rates_are_refused_naming_the_expression(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        next_fire(expression, T0)
    assert repr(expression) in str(raised.value)


def test_next_fire_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire("rate(1 hour)", datetime(2026, 1, 1))  # naive on purpose


# ---------------------------------------------------------------------------------------------- cron


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # Every day at noon: later the same day, else the next day; strictly after.
        ("cron(0 12 * * ? *)", utc(2026, 1, 1, 9, 30), utc(2026, 1, 1, 12, 0)),
        ("cron(0 12 * * ? *)", utc(2026, 1, 1, 12, 0), utc(2026, 1, 2, 12, 0)),
        ("cron(0 12 * * ? *)", utc(2026, 1, 1, 12, 0) - timedelta(seconds=1), utc(2026, 1, 1, 12, 0)),
        ("cron(0 12 * * ? *)", utc(2026, 12, 31, 13, 0), utc(2027, 1, 1, 12, 0)),
        # Weekdays at 10:15: Friday evening jumps over the weekend to Monday.
        ("cron(15 10 ? * MON-FRI *)", utc(2026, 1, 2, 18, 0), utc(2026, 1, 5, 10, 15)),
        ("cron(15 10 ? * MON-FRI *)", utc(2026, 1, 5, 10, 14), utc(2026, 1, 5, 10, 15)),
        ("cron(15 10 ? * 2-6 *)", utc(2026, 1, 3, 0, 0), utc(2026, 1, 5, 10, 15)),
        # Every 15 minutes.
        ("cron(0/15 * * * ? *)", utc(2026, 1, 1, 9, 7), utc(2026, 1, 1, 9, 15)),
        ("cron(0/15 * * * ? *)", utc(2026, 1, 1, 9, 45), utc(2026, 1, 1, 10, 0)),
        ("cron(*/15 * * * ? *)", utc(2026, 1, 1, 23, 50), utc(2026, 1, 2, 0, 0)),
        ("cron(5/20 * * * ? *)", utc(2026, 1, 1, 9, 46), utc(2026, 1, 1, 10, 5)),
        ("cron(10-40/15 8 * * ? *)", utc(2026, 1, 1, 8, 26), utc(2026, 1, 1, 8, 40)),
        ("cron(10-40/15 8 * * ? *)", utc(2026, 1, 1, 8, 41), utc(2026, 1, 2, 8, 10)),
        # Lists and names, case-insensitive.
        ("cron(0 6,18 * * ? *)", utc(2026, 1, 1, 7, 0), utc(2026, 1, 1, 18, 0)),
        ("cron(0 0 1 jan,jul ? *)", utc(2026, 1, 2, 0, 0), utc(2026, 7, 1, 0, 0)),
        # The 31st skips the months that have no 31st.
        ("cron(30 23 31 * ? *)", utc(2026, 2, 1), utc(2026, 3, 31, 23, 30)),
        # Years: a single one, and a schedule whose years are over.
        ("cron(0 0 1 JAN ? 2027)", utc(2026, 5, 17, 8, 0), utc(2027, 1, 1, 0, 0)),
        ("cron(0 0 1 JAN ? 2027)", utc(2027, 1, 1, 0, 0), None),
        ("cron(0 0 * * ? 2020-2025)", T0, None),
        # Feb 29 after a leap day jumps to the next leap year; 2100 is not one.
        ("cron(0 0 29 FEB ? *)", utc(2024, 2, 29, 0, 0), utc(2028, 2, 29, 0, 0)),
        ("cron(0 0 29 2 ? *)", utc(2096, 3, 1), utc(2104, 2, 29, 0, 0)),
        # A day no month has never fires.
        ("cron(0 0 30 FEB ? *)", T0, None),
    ],
)
def test_cron_next_fire(expression: str, after: datetime, expected: datetime | None) -> None:
    assert next_fire(expression, after) == expected


def test_cron_day_of_week_one_is_sunday() -> None:
    fired = next_fire("cron(0 8 ? * 1 *)", T0)  # T0 is a Thursday

    assert fired == utc(2026, 1, 4, 8, 0)
    assert fired is not None
    assert fired.strftime("%A") == "Sunday"
    assert next_fire("cron(0 8 ? * SUN *)", T0) == fired
    assert next_fire("cron(0 8 ? * 7 *)", T0) == utc(2026, 1, 3, 8, 0)  # 7 is Saturday


def test_a_cron_series_has_the_expected_gaps() -> None:
    moments: list[datetime] = []
    moment = utc(2026, 1, 2, 0, 0)  # a Friday
    for _ in range(6):
        found = next_fire("cron(0 9,17 ? * MON-FRI *)", moment)
        assert found is not None
        moments.append(found)
        moment = found

    assert moments == [
        utc(2026, 1, 2, 9, 0),
        utc(2026, 1, 2, 17, 0),
        utc(2026, 1, 5, 9, 0),
        utc(2026, 1, 5, 17, 0),
        utc(2026, 1, 6, 9, 0),
        utc(2026, 1, 6, 17, 0),
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 12 L * ? *)", "not supported by the devstack"),
        ("cron(0 12 ? * 6L *)", "not supported by the devstack"),
        ("cron(0 12 15W * ? *)", "not supported by the devstack"),
        ("cron(0 12 LW * ? *)", "not supported by the devstack"),
        ("cron(0 12 ? * 6#3 *)", "not supported by the devstack"),
        ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 12 * * ?)", "cron takes 6 fields"),
        ("cron(0 12 * * ? * *)", "cron takes 6 fields"),
        ("cron(60 12 * * ? *)", "60 is outside 0-59"),
        ("cron(0 24 * * ? *)", "24 is outside 0-23"),
        ("cron(0 12 0 * ? *)", "0 is outside 1-31"),
        ("cron(0 12 ? * 8 *)", "8 is outside 1-7"),
        ("cron(0 12 * 13 ? *)", "13 is outside 1-12"),
        ("cron(0 12 * * ? 1969)", "1969 is outside 1970-2199"),
        ("cron(? 12 * * ? *)", "'?' is only allowed"),
        ("cron(0 12 ? * FRI-MON *)", "runs backwards"),
        ("cron(0 12 * JUNE ? *)", "'JUNE' is not a number nor one of JAN"),
        ("cron(0/0 12 * * ? *)", "must be a positive whole number"),
        ("cron(0 1,,2 * * ? *)", "is not a number"),
        ("cron()", "cron takes 6 fields"),
        ("at(2026-13-01T00:00:00)", "does not match format"),
        ("at(2026-01-01 00:00:00)", "expected rate(N unit)"),
        ("", "expected rate(N unit)"),
    ],
)
def test_invalid_expressions_are_refused_naming_the_expression(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        next_fire(expression, T0)
    assert f"invalid schedule expression {expression!r}" in str(raised.value)


def test_a_month_name_containing_l_is_not_mistaken_for_the_l_operator() -> None:
    assert next_fire("cron(0 0 1 JUL ? *)", T0) == utc(2026, 7, 1)


# ---------------------------------------------------------------------------------------- time zones


def test_cron_in_a_time_zone_follows_its_summer_time() -> None:
    paris = "Europe/Paris"
    zone(paris)

    assert next_fire("cron(0 9 * * ? *)", utc(2026, 1, 10), timezone=paris) == utc(2026, 1, 10, 8, 0)
    assert next_fire("cron(0 9 * * ? *)", utc(2026, 7, 10), timezone=paris) == utc(2026, 7, 10, 7, 0)
    # The day is the zone's day: 23:30 UTC on Saturday is already Sunday in Paris.
    assert next_fire("cron(0 9 ? * SUN *)", utc(2026, 1, 10, 23, 30), timezone=paris) == utc(2026, 1, 11, 8, 0)
    assert next_fire("at(2026-07-14T22:00:00)", T0, timezone=paris) == utc(2026, 7, 14, 20, 0)


def test_cron_across_dst_changes_fires_once_a_day() -> None:
    new_york = "America/New_York"
    zone(new_york)

    # 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist; it fires at the first instant after.
    assert next_fire("cron(30 2 * * ? *)", utc(2026, 3, 8), timezone=new_york) == utc(2026, 3, 8, 7, 30)
    # 2026-11-01: 01:30 happens twice (EDT then EST); it fires at the first only.
    first = next_fire("cron(30 1 * * ? *)", utc(2026, 11, 1), timezone=new_york)
    assert first == utc(2026, 11, 1, 5, 30)
    assert next_fire("cron(30 1 * * ? *)", first, timezone=new_york) == utc(2026, 11, 2, 6, 30)
    # Asked from inside the repeated hour (second 01:10, 06:10 UTC), the first 01:30 is already past.
    assert next_fire("cron(30 1 * * ? *)", utc(2026, 11, 1, 6, 10), timezone=new_york) == utc(2026, 11, 2, 6, 30)


# ------------------------------------------------------------------------------------------------ at


def test_at_fires_once_and_then_never() -> None:
    expression = "at(2026-11-23T12:00:00)"

    assert next_fire(expression, T0) == utc(2026, 11, 23, 12, 0)
    assert next_fire(expression, utc(2026, 11, 23, 12, 0) - timedelta(seconds=1)) == utc(2026, 11, 23, 12, 0)
    assert next_fire(expression, utc(2026, 11, 23, 12, 0)) is None
    assert next_fire(expression, utc(2027, 1, 1)) is None


# --------------------------------------------------------------------------------------------- event


def make_schedule(name: str = "Fn.Tick", expression: str = "rate(10 minutes)", **changes: Any) -> Schedule:
    function = name.partition(".")[0]
    fields: dict[str, Any] = {"input": None, "enabled": True, **changes}
    return Schedule(name=name, function=function, expression=expression, **fields)


def test_the_event_is_the_schedule_input_when_there_is_one() -> None:
    schedule = make_schedule(input={"schedule": "sync", "nested": {"a": 1}})

    event = scheduler_event(schedule, T0)

    assert event == {"schedule": "sync", "nested": {"a": 1}}
    event["nested"]["a"] = 2  # the handler may mutate it without changing the next firing
    assert scheduler_event(schedule, T0) == {"schedule": "sync", "nested": {"a": 1}}


def test_without_input_the_event_is_the_scheduler_default_notification() -> None:
    schedule = make_schedule("Fn.Nightly", schedule_name="mystack-nightly")

    event = scheduler_event(schedule, datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))
    other = scheduler_event(schedule, T0)

    assert {key: value for key, value in event.items() if key != "id"} == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": "2026-05-06T07:08:09Z",
        "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/mystack-nightly"],
        "detail": "{}",  # EventBridge Scheduler sends a string here, unlike EventBridge rules
    }
    assert uuid.UUID(event["id"]) != uuid.UUID(other["id"])
    unnamed = scheduler_event(make_schedule("Fn.Nightly"), T0)
    assert unnamed["resources"] == ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/FnNightly"]


# ----------------------------------------------------------------------------------------- scheduler


class FakeClock:
    """Time that moves only when the scheduler waits; the scheduler stops once it reaches `end`."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.now = start
        self.end = end
        self.waits = 0

    def __call__(self) -> datetime:
        return self.now

    def wait(self, seconds: float) -> bool:
        assert seconds > 0
        self.waits += 1
        self.now = min(self.now + timedelta(seconds=seconds), self.end)
        return self.now >= self.end


class Recorder:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime, dict[str, Any]]] = []
        self.fail_on: set[int] = set()
        self.takes = timedelta(0)

    def __call__(self, schedule: Schedule, event: dict[str, Any]) -> None:
        self.calls.append((schedule.name, self.clock(), event))
        self.clock.now += self.takes
        if len(self.calls) in self.fail_on:
            raise RuntimeError(f"boom {len(self.calls)}")

    @property
    def fired(self) -> list[tuple[str, datetime]]:
        return [(name, moment) for name, moment, _ in self.calls]


def run_until(end: datetime, schedules: list[Schedule]) -> tuple[Scheduler, Recorder]:
    clock = FakeClock(T0, end)
    recorder = Recorder(clock)
    scheduler = Scheduler(schedules, recorder, clock=clock, wait=clock.wait)
    return scheduler, recorder


def test_the_scheduler_fires_the_template_schedules_in_order_until_stopped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devstack.schedules")
    schedules = schedules_from_template(load_template(TEMPLATE))
    scheduler, recorder = run_until(T0 + timedelta(minutes=65), schedules)

    scheduler.start()
    scheduler.join(timeout=5)

    assert not scheduler.running
    sweep, sync = "SweeperFunction.SweepSchedule", "SchedulerFunction.SyncSchedule"
    refresh = "OAuthRefreshFunction.RefreshSchedule"
    expected = []
    for minute in range(1, 65):  # a tie goes in template order: sweep, sync rules, refresh
        at = T0 + timedelta(minutes=minute)
        expected += [(sweep, at), (sync, at)]
        expected += [(refresh, at)] if minute % 15 == 0 else []
    assert recorder.fired == expected
    assert len(expected) == 64 + 64 + 4
    assert [event for name, _, event in recorder.calls if name == sync] == [{"schedule": "sync_rules"}] * 64
    assert {str(event) for name, _, event in recorder.calls if name == refresh} == {"{'schedule': 'oauth_refresh'}"}
    firings = [record.getMessage() for record in caplog.records if " -> " in record.getMessage()]
    assert len(firings) == 132
    synced = "schedule SchedulerFunction.SyncSchedule -> SchedulerFunction (scheduled at 2026-01-01T01:00:00Z): ok"
    assert [line for line in firings if line.startswith(synced)] != []


def test_disabled_and_finished_schedules_do_not_fire() -> None:
    scheduler, recorder = run_until(
        T0 + timedelta(hours=3, minutes=5),
        [
            make_schedule("Fn.Off", "rate(1 minute)", enabled=False),
            make_schedule("Fn.Once", "at(2026-01-01T01:30:00)"),
            make_schedule("Fn.Past", "at(2025-01-01T00:00:00)"),
            make_schedule("Fn.Hourly", "cron(0 * * * ? *)"),
        ],
    )

    scheduler.run()

    assert recorder.fired == [
        ("Fn.Hourly", utc(2026, 1, 1, 1, 0)),
        ("Fn.Once", utc(2026, 1, 1, 1, 30)),
        ("Fn.Hourly", utc(2026, 1, 1, 2, 0)),
        ("Fn.Hourly", utc(2026, 1, 1, 3, 0)),
    ]


def test_the_default_event_carries_the_scheduled_time() -> None:
    scheduler, recorder = run_until(T0 + timedelta(minutes=25), [make_schedule("Fn.Tick", "rate(10 minutes)")])

    scheduler.run()

    assert [event["time"] for _, _, event in recorder.calls] == ["2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"]


def test_a_failing_target_does_not_stop_later_firings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devstack.schedules")
    scheduler, recorder = run_until(T0 + timedelta(minutes=45), [make_schedule("Fn.Tick", "rate(10 minutes)")])
    recorder.fail_on = {1, 2}

    scheduler.run()

    assert [moment for _, moment in recorder.fired] == [T0 + timedelta(minutes=m) for m in (10, 20, 30, 40)]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert [record.getMessage().split(": failed")[0] for record in errors] == [
        "schedule Fn.Tick -> Fn (scheduled at 2026-01-01T00:10:00Z)",
        "schedule Fn.Tick -> Fn (scheduled at 2026-01-01T00:20:00Z)",
    ]
    assert "RuntimeError: boom 1" in errors[0].getMessage()


def test_a_target_slower_than_the_period_skips_the_missed_runs() -> None:
    scheduler, recorder = run_until(T0 + timedelta(minutes=90), [make_schedule("Fn.Tick", "rate(10 minutes)")])
    recorder.takes = timedelta(minutes=25)

    scheduler.run()

    assert [moment for _, moment in recorder.fired] == [T0 + timedelta(minutes=m) for m in (10, 45, 80)]


def test_fire_now_invokes_at_once_even_a_disabled_schedule(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devstack.schedules")
    scheduler, recorder = run_until(T0 + timedelta(hours=1), [make_schedule("Fn.Off", enabled=False, input={"a": 1})])

    scheduler.fire_now("Fn.Off")

    assert recorder.calls == [("Fn.Off", T0, {"a": 1})]
    assert "schedule Fn.Off -> Fn (fired by hand at 2026-01-01T00:00:00Z): ok" in caplog.text


def test_fire_now_reports_a_failing_target_to_its_caller() -> None:
    scheduler, recorder = run_until(T0 + timedelta(hours=1), [make_schedule("Fn.Tick")])
    recorder.fail_on = {1}

    with pytest.raises(RuntimeError, match="boom 1"):
        scheduler.fire_now("Fn.Tick")


def test_fire_now_with_an_unknown_name_lists_the_known_ones() -> None:
    scheduler, recorder = run_until(T0, [make_schedule("Fn.Tick"), make_schedule("Other.Tock")])

    with pytest.raises(ValueError, match=r"no schedule named 'Fn\.Nope'; known schedules: Fn\.Tick, Other\.Tock$"):
        scheduler.fire_now("Fn.Nope")
    assert recorder.calls == []
    assert scheduler.names == ["Fn.Tick", "Other.Tock"]


def test_two_schedules_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match=r"two schedules are named 'Fn\.Tick'"):
        Scheduler([make_schedule("Fn.Tick"), make_schedule("Fn.Tick")], lambda schedule, event: None)


def test_a_target_can_stop_the_scheduler_from_its_own_thread() -> None:
    clock = FakeClock(T0, T0 + timedelta(days=1))
    recorder = Recorder(clock)

    def invoke_then_stop(schedule: Schedule, event: dict[str, Any]) -> None:
        recorder(schedule, event)
        if len(recorder.calls) == 3:
            scheduler.stop()

    scheduler = Scheduler([make_schedule("Fn.Tick", "rate(1 minute)")], invoke_then_stop, clock=clock, wait=clock.wait)
    scheduler.start()
    scheduler.join(timeout=5)

    assert not scheduler.running
    assert len(recorder.calls) == 3


def test_stop_wakes_a_sleeping_scheduler_at_once() -> None:
    fired = threading.Event()
    scheduler = Scheduler([make_schedule("Fn.Daily", "rate(1 day)")], lambda schedule, event: fired.set())
    scheduler.start()
    assert scheduler.running

    started = time.monotonic()
    scheduler.stop()

    assert time.monotonic() - started < 0.5
    assert not scheduler.running
    assert not fired.is_set()


def test_a_schedule_expression_may_use_the_templates_parameters_but_not_unknown_ones() -> None:
    def template(expression: Any) -> dict[str, Any]:
        event = {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": expression}}
        function = {"Type": "AWS::Serverless::Function", "Properties": {"Events": {"Tick": event}}}
        return {"Parameters": {"Every": {"Type": "Number", "Default": 15}}, "Resources": {"Fn": function}}

    [schedule] = schedules_from_template(template({"Fn::Sub": "rate(${Every} minutes)"}))
    assert schedule.expression == "rate(15 minutes)"
    with pytest.raises(ValueError, match=r"\$\{Often\} is not a template parameter"):
        schedules_from_template(template({"Fn::Sub": "rate(${Often} minutes)"}))
