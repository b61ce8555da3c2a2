"""EventBridge Scheduler, locally: the ``ScheduleV2`` events of template.yaml fire their functions on time.

``sam local`` has no scheduler, so the devstack reads the schedules itself, computes when each one is
due (``rate(...)``, ``cron(...)`` and ``at(...)`` expressions, as EventBridge Scheduler reads them) and
calls an ``invoke`` callback with the payload Scheduler would send the Lambda target.

What is not emulated: ``RetryPolicy`` and dead-letter queues (a failing invocation is logged, not
retried), ``FlexibleTimeWindow``, ``StartDate``/``EndDate``, and the ``L``, ``W`` and ``#`` cron
operators (refused with a clear error).
"""

from __future__ import annotations

import bisect
import calendar
import copy
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "Schedule",
    "Scheduler",
    "next_fire",
    "scheduler_event",
    "schedules_from_template",
    "utc_now",
]

logger = logging.getLogger("devstack.schedules")

# The fake account and region the rest of the devstack uses in ARNs.
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

# EventBridge Scheduler accepts years 1970-2199 in cron expressions.
_MIN_YEAR = 1970
_MAX_YEAR = 2199
# The scheduler thread wakes at least this often, so a jump of the wall clock (a laptop resuming
# from sleep: threading.Event.wait counts monotonic time) delays a firing by at most this much.
_MAX_SLEEP_SECONDS = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Schedule:
    """One ``ScheduleV2`` event of one function."""

    name: str  # "<FunctionLogicalId>.<EventName>": stable, what "fire now" takes
    function: str  # the function's logical id
    expression: str  # "rate(10 minutes)", "cron(0 12 * * ? *)", "at(2026-11-23T12:00:00)"
    input: dict[str, Any] | None  # the parsed Input JSON; None when the event has none
    enabled: bool  # State != DISABLED
    timezone: str | None = None  # ScheduleExpressionTimezone; None means UTC
    schedule_name: str = ""  # the AWS::Scheduler::Schedule name, for the ARN in the default event

    def next_fire(self, after: datetime) -> datetime | None:
        return next_fire(self.expression, after, timezone=self.timezone)


# --------------------------------------------------------------------------------------- template


def schedules_from_template(template: dict[str, Any], *, stack_name: str = "devstack") -> list[Schedule]:
    """The ``ScheduleV2`` events of the template's functions, in template order.

    Expressions are checked here, so a schedule the devstack cannot run fails at start-up rather than
    when it is due. ``stack_name`` stands in for ``${AWS::StackName}`` in a ``!Sub`` schedule name.
    """
    schedules: list[Schedule] = []
    resources = template.get("Resources") or {}
    # A !Sub expression may name the template's parameters: their defaults stand in for them.
    defaults = {name: str(p["Default"]) for name, p in (template.get("Parameters") or {}).items() if "Default" in p}
    for function, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = (resource.get("Properties") or {}).get("Events") or {}
        for event_name, event in events.items():
            if not isinstance(event, dict) or event.get("Type") != "ScheduleV2":
                continue
            schedules.append(_schedule(function, event_name, event.get("Properties") or {}, stack_name, defaults))
    return schedules


def _substituted(value: Any, defaults: dict[str, str], name: str) -> Any:
    """A `!Sub` string with the parameters' defaults in place; any other value as it is."""
    if not (isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str)):
        return value

    def default(match: re.Match[str]) -> str:
        if match[1] not in defaults:
            raise ValueError(f"schedule {name}: ${{{match[1]}}} is not a template parameter with a default")
        return defaults[match[1]]

    return re.sub(r"\$\{([A-Za-z0-9]+)\}", default, value["Fn::Sub"])


def _schedule(
    function: str, event_name: str, properties: dict[str, Any], stack_name: str, defaults: dict[str, str]
) -> Schedule:
    name = f"{function}.{event_name}"
    expression = _substituted(properties.get("ScheduleExpression"), defaults, name)
    if not isinstance(expression, str):
        raise ValueError(f"schedule {name}: ScheduleExpression must be a plain string, got {expression!r}")
    timezone = properties.get("ScheduleExpressionTimezone")
    if timezone is not None and not isinstance(timezone, str):
        raise ValueError(f"schedule {name}: ScheduleExpressionTimezone must be a plain string, got {timezone!r}")
    _zone(timezone)  # an unknown zone fails now
    _parse(expression)  # so does an invalid expression

    state = properties.get("State", "ENABLED")
    if state not in ("ENABLED", "DISABLED"):
        raise ValueError(f"schedule {name}: State must be ENABLED or DISABLED, got {state!r}")

    payload: dict[str, Any] | None = None
    raw_input = properties.get("Input")
    if raw_input is not None:
        if not isinstance(raw_input, str):
            raise ValueError(f"schedule {name}: Input must be a JSON string, got {raw_input!r}")
        try:
            parsed = json.loads(raw_input)
        except json.JSONDecodeError as error:
            raise ValueError(f"schedule {name}: Input is not valid JSON ({error}): {raw_input!r}") from error
        if not isinstance(parsed, dict):
            raise ValueError(f"schedule {name}: Input must be a JSON object, got {raw_input!r}")
        payload = parsed

    return Schedule(
        name=name,
        function=function,
        expression=expression.strip(),
        input=payload,
        enabled=state != "DISABLED",
        timezone=timezone,
        schedule_name=_schedule_name(properties.get("Name"), f"{function}{event_name}", stack_name),
    )


_PSEUDO = re.compile(r"\$\{([^}]*)\}")


def _schedule_name(value: Any, default: str, stack_name: str) -> str:
    """A literal Name, a ``!Sub`` of pseudo parameters only, or else SAM's default (the logical id)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        known = {"AWS::StackName": stack_name, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID}
        text: str = value["Fn::Sub"]
        if all(ref in known for ref in _PSEUDO.findall(text)):
            return _PSEUDO.sub(lambda match: known[match.group(1)], text)
    return default


# ------------------------------------------------------------------------------------ expressions


@dataclass(frozen=True)
class _Rate:
    period: timedelta


@dataclass(frozen=True)
class _At:
    when: datetime  # naive, in the schedule's time zone


@dataclass(frozen=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int] | None  # None for "?"
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # AWS numbering, 1=SUN ... 7=SAT; None for "?"
    years: tuple[int, ...]

    def matches_day(self, day: date) -> bool:
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        assert self.days_of_week is not None
        return (day.weekday() + 1) % 7 + 1 in self.days_of_week


_Expression = _Rate | _At | _Cron

_RATE = re.compile(r"rate\((\d+) +([a-z]+)\)")
_RATE_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_CRON = re.compile(r"cron\((.*)\)")
_MONTHS = {name.upper(): number for number, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
# (label, lowest, highest, names) of the six fields, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _WEEKDAYS),
    ("year", _MIN_YEAR, _MAX_YEAR, {}),
)
_UNSUPPORTED = re.compile(r"^\d*L$|^L-\d+$|^LW$|^\d+W$|#")


@lru_cache(maxsize=256)
def _parse(expression: str) -> _Expression:
    text = expression.strip()
    if match := _RATE.fullmatch(text):
        return _parse_rate(expression, int(match.group(1)), match.group(2))
    if match := _AT.fullmatch(text):
        try:
            return _At(datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
        except ValueError as error:
            raise ValueError(f"invalid schedule expression {expression!r}: {error}") from error
    if match := _CRON.fullmatch(text):
        return _parse_cron(expression, match.group(1))
    raise ValueError(
        f"invalid schedule expression {expression!r}: expected rate(N unit), "
        "cron(minutes hours day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)"
    )


def _parse_rate(expression: str, value: int, unit: str) -> _Rate:
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise ValueError(f"invalid schedule expression {expression!r}: the unit must be minutes, hours or days")
    if value <= 0:
        raise ValueError(f"invalid schedule expression {expression!r}: the rate must be a positive whole number")
    # EventBridge refuses "rate(1 minutes)" and "rate(5 minute)".
    if value == 1 and unit != singular:
        raise ValueError(
            f"invalid schedule expression {expression!r}: a rate of 1 takes the singular, rate(1 {singular})"
        )
    if value != 1 and unit == singular:
        raise ValueError(
            f"invalid schedule expression {expression!r}: a rate above 1 takes the plural, rate({value} {singular}s)"
        )
    return _Rate(_RATE_UNITS[singular] * value)


def _parse_cron(expression: str, body: str) -> _Cron:
    fields = body.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"invalid schedule expression {expression!r}: cron takes 6 fields "
            f"(minutes hours day-of-month month day-of-week year), got {len(fields)}"
        )
    values = [_parse_field(expression, text.upper(), spec) for text, spec in zip(fields, _FIELDS, strict=True)]
    minutes, hours, days_of_month, months, days_of_week, years = values
    if (days_of_month is None) == (days_of_week is None):
        raise ValueError(
            f"invalid schedule expression {expression!r}: exactly one of day-of-month and day-of-week must be '?'"
        )
    return _Cron(
        minutes=tuple(sorted(minutes or ())),
        hours=tuple(sorted(hours or ())),
        days_of_month=days_of_month,
        months=months or frozenset(),
        days_of_week=days_of_week,
        years=tuple(sorted(years or ())),
    )


def _parse_field(expression: str, text: str, spec: tuple[str, int, int, dict[str, int]]) -> frozenset[int] | None:
    """The values one cron field allows; None for "?" (only day-of-month and day-of-week accept it)."""
    label, low, high, names = spec

    def fail(reason: str) -> ValueError:
        return ValueError(f"invalid schedule expression {expression!r}: {label} field {text!r}: {reason}")

    if text == "?":
        if label not in ("day-of-month", "day-of-week"):
            raise fail("'?' is only allowed in day-of-month and day-of-week")
        return None

    def number(token: str) -> int:
        if token in names:
            return names[token]
        if not token.isdigit():
            raise fail(f"{token!r} is not a number" + (f" nor one of {', '.join(names)}" if names else ""))
        value = int(token)
        if not low <= value <= high:
            raise fail(f"{value} is outside {low}-{high}")
        return value

    result: set[int] = set()
    for item in text.split(","):
        if _UNSUPPORTED.search(item):
            raise fail("the L, W and # operators are not supported by the devstack")
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise fail(f"the step {step_text!r} must be a positive whole number")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = number(start), number(end)
            if first > last:
                raise fail(f"the range {span!r} runs backwards")
        else:
            first = number(span)
            # "a/n" runs from a to the end of the field; a lone "a" is just a.
            last = high if slash else first
        result.update(range(first, last + 1, step))
    return frozenset(result)


def _zone(name: str | None) -> tzinfo:
    if name is None or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown ScheduleExpressionTimezone {name!r}") from error


def next_fire(expression: str, after: datetime, *, timezone: str | None = None) -> datetime | None:
    """When ``expression`` next fires strictly after ``after`` (an aware datetime), in UTC.

    A rate fires one period after ``after`` (EventBridge runs a new rate schedule one period after its
    creation). cron and at are wall-clock times in ``timezone`` (UTC when None). None when nothing is
    left: an ``at`` in the past, or a cron whose years are over.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"next_fire needs an aware datetime, got {after!r}")
    parsed = _parse(expression)
    if isinstance(parsed, _Rate):
        return (after + parsed.period).astimezone(UTC)
    zone = _zone(timezone)
    if isinstance(parsed, _At):
        when = parsed.when.replace(tzinfo=zone).astimezone(UTC)
        return when if when > after else None
    local = after.astimezone(zone).replace(tzinfo=None)
    candidate = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while True:
        found = _next_cron_time(parsed, candidate)
        if found is None:
            return None
        # fold=0: in an autumn repeated hour the first occurrence fires; a time skipped in spring
        # resolves to the same instant as the time one "gap" later.
        instant = found.replace(tzinfo=zone).astimezone(UTC)
        if instant > after:
            return instant
        candidate = found + timedelta(minutes=1)  # a wall time that is already past in UTC (DST)


def _next_cron_time(cron: _Cron, start: datetime) -> datetime | None:
    """The first naive wall-clock minute at or after ``start`` that ``cron`` matches.

    Skips a whole year, month, day or hour as soon as it cannot match, so a yearly schedule
    takes a few dozen steps, not half a million minutes.
    """
    moment = start
    while True:
        if moment.year not in cron.years:
            index = bisect.bisect_right(cron.years, moment.year)
            if index == len(cron.years):
                return None
            moment = datetime(cron.years[index], 1, 1)
        elif moment.month not in cron.months:
            moment = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1)
        elif not cron.matches_day(moment.date()):
            moment = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time())
        elif moment.hour not in cron.hours:
            index = bisect.bisect_left(cron.hours, moment.hour)
            if index == len(cron.hours):
                moment = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time())
            else:
                moment = moment.replace(hour=cron.hours[index], minute=0)
        elif moment.minute not in cron.minutes:
            index = bisect.bisect_left(cron.minutes, moment.minute)
            if index == len(cron.minutes):
                moment = moment.replace(minute=0) + timedelta(hours=1)
            else:
                moment = moment.replace(minute=cron.minutes[index])
        else:
            return moment


# ------------------------------------------------------------------------------------------ event


def scheduler_event(schedule: Schedule, fired_at: datetime) -> dict[str, Any]:
    """The payload EventBridge Scheduler gives a Lambda target.

    The schedule's Input when it has one (Scheduler passes it through untouched), otherwise
    Scheduler's default notification. Unlike an EventBridge *rule*, its source is ``aws.scheduler``
    and its ``detail`` is the string ``"{}"``, not an object.
    """
    if schedule.input is not None:
        return copy.deepcopy(schedule.input)  # a copy the handler may modify freely
    schedule_name = schedule.schedule_name or schedule.name.replace(".", "")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": fired_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{schedule_name}"],
        "detail": "{}",
    }


# -------------------------------------------------------------------------------------- scheduler

Invoke = Callable[[Schedule, dict[str, Any]], None]


class Scheduler:
    """Fires schedules on a background thread until stopped.

    ``clock`` gives the current (aware) time and ``wait(seconds)`` sleeps, returning True when the
    scheduler should stop; by default they are the wall clock and the stop event, and tests inject
    fakes so nothing sleeps for real. ``invoke`` is called from the scheduler thread (and from the
    caller's thread by :meth:`fire_now`), one firing at a time per thread.
    """

    def __init__(
        self,
        schedules: Iterable[Schedule],
        invoke: Invoke,
        clock: Callable[[], datetime] = utc_now,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._schedules: dict[str, Schedule] = {}
        for schedule in schedules:
            if schedule.name in self._schedules:
                raise ValueError(f"two schedules are named {schedule.name!r}")
            self._schedules[schedule.name] = schedule
        self._invoke = invoke
        self._clock = clock
        self._stopping = threading.Event()
        self._wait = wait if wait is not None else self._stopping.wait
        self._thread: threading.Thread | None = None

    @property
    def names(self) -> list[str]:
        return list(self._schedules)

    def start(self) -> None:
        """Run :meth:`run` on a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the scheduler is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="devstack-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to stop and wake it; wait up to ``timeout`` seconds for it to finish.

        A sleeping thread ends at once; one in the middle of an invocation ends when that returns
        (it is a daemon thread, so it never keeps the process alive).
        """
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def fire_now(self, name: str) -> None:
        """Invoke one schedule at once, in the caller's thread, even a disabled one.

        The firing is logged like a scheduled one; an exception from ``invoke`` is logged and re-raised
        so the caller can report it. Does not move the schedule's next regular firing.
        """
        schedule = self._schedules.get(name)
        if schedule is None:
            known = ", ".join(self._schedules) or "none"
            raise ValueError(f"no schedule named {name!r}; known schedules: {known}")
        error = self._fire(schedule, self._clock(), reason="fired by hand")
        if error is not None:
            raise error

    def run(self) -> None:
        """The scheduler loop: fire each enabled schedule when due, until :meth:`stop`."""
        now = self._clock()
        due: dict[str, datetime] = {}
        for schedule in self._schedules.values():
            if not schedule.enabled:
                logger.info("schedule %s (%s) is disabled", schedule.name, schedule.function)
                continue
            when = schedule.next_fire(now)
            if when is None:
                logger.info("schedule %s (%s) has nothing left to fire", schedule.name, schedule.function)
                continue
            due[schedule.name] = when
            logger.info(
                "schedule %s (%s): %s, next at %s", schedule.name, schedule.function, schedule.expression, _iso(when)
            )

        while not self._stopping.is_set():
            if not due:
                logger.info("no schedule left to fire; the scheduler thread ends")
                return
            # Earliest first; ties go in template order (dicts keep insertion order, min keeps the first).
            name = min(due, key=due.__getitem__)
            when = due[name]
            delay = (when - self._clock()).total_seconds()
            if delay > 0:
                if self._wait(min(delay, _MAX_SLEEP_SECONDS)) or self._stopping.is_set():
                    return
                continue  # look at the clock again: the wait may have been cut short
            schedule = self._schedules[name]
            self._fire(schedule, when, reason="scheduled")
            following = schedule.next_fire(when)
            now = self._clock()
            if following is not None and following <= now:
                # The target ran past the next slot(s), or the machine slept: skip what was missed,
                # as Scheduler would not queue up a burst of late runs either.
                logger.warning("schedule %s fell behind; skipping to the next slot after now", name)
                following = schedule.next_fire(now)
            if following is None:
                logger.info("schedule %s (%s) has nothing left to fire", name, schedule.function)
                del due[name]
            else:
                due[name] = following

    def _fire(self, schedule: Schedule, fired_at: datetime, *, reason: str) -> Exception | None:
        """Invoke and log one line; the exception ``invoke`` raised, if any, is returned, not raised."""
        event = scheduler_event(schedule, fired_at)
        started = time.monotonic()
        try:
            self._invoke(schedule, event)
        except Exception as error:
            elapsed = (time.monotonic() - started) * 1000
            logger.error(
                "schedule %s -> %s (%s at %s): failed after %.0f ms: %s: %s",
                schedule.name,
                schedule.function,
                reason,
                _iso(fired_at),
                elapsed,
                type(error).__name__,
                error,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            return error
        elapsed = (time.monotonic() - started) * 1000
        logger.info(
            "schedule %s -> %s (%s at %s): ok in %.0f ms",
            schedule.name,
            schedule.function,
            reason,
            _iso(fired_at),
            elapsed,
        )
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
