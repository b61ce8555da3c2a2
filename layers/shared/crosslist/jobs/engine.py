"""The job engine: a lane (one user on one marketplace) is woken by an event, does the work that is ready, and ends.

Nothing waits inside a Lambda. A wake-up applies the reply that came in, saves the job's progress, and
sends the next marketplace call, or sets a timer for when the next call is due (pacing, backoff, a
paused lane), or parks the lane's jobs until the user's browser extension is there. The reply to a
plugin command arrives through ws_message, which resolves its correlation record and wakes the lane.

Each turn is one PostgreSQL transaction holding the lane's row lock, so wake-ups of one lane never
interleave. A call is recorded in the lane (`in_flight`) and committed *before* it is sent, so a crash
never loses track of a call that may have landed: a call whose correlation record does not exist was
never sent and is simply planned again; a write whose reply never came is verified before it is sent
again (Workflow.verify).
"""

from __future__ import annotations

import enum
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from crosslist.auth.credentials import NeedsReauth
from crosslist.db.models import JobStatus
from crosslist.events.events import Event
from crosslist.jobs import bulk, pacing
from crosslist.jobs.ending import end_message
from crosslist.jobs.lanes import Job, Lane, LaneStore, LaneTransaction
from crosslist.jobs.queue import PLUGIN_MARKETPLACES, CarriedReply, JobQueue, TimerQueue
from crosslist.jobs.reactions import LaneToWake, wake_lanes
from crosslist.marketplaces import DISPLAY_NAMES, NotAvailable
from crosslist.realtime.commands import CommandStatus, PendingCommand, PendingCommandStore
from crosslist.realtime.connections import Connection, ConnectionStore
from crosslist.realtime.gateway import ConnectionGateway, ConnectionGone, encode
from crosslist.realtime.messages import (
    PluginCommand,
    batch_progress_message,
    command_message,
    progress_message,
    reauth_required_message,
    retrying_message,
    waiting_message,
)
from crosslist.realtime.notifier import Notifier
from crosslist.workflows.base import (
    Again,
    CallKind,
    Done,
    Duplicate,
    HttpCall,
    ImportedItem,
    JobContext,
    ListingChange,
    ListingRef,
    NewProduct,
    OrderRecord,
    PhotoHashes,
    PluginCall,
    Reply,
    Step,
    StepAction,
    StepFailed,
    Wait,
    Workflow,
)
from crosslist.workflows.bulk import BulkWorkflow, bulk_of
from crosslist.workflows.registry import find_workflow

if TYPE_CHECKING:
    from crosslist.events.dispatch import Dispatcher
    from crosslist.settings import Settings

logger = Logger(child=True)
JsonDict = dict[str, Any]

# A tab that answers and closes at once may have its $disconnect handled before its answer: a command
# whose tab closed still takes its answer this long.
LOST_TAB_GRACE_SECONDS = 1.0
# A parked lane is looked at this often even without an event (a lost wake-up, the parking expiry).
PARKED_RECHECK = timedelta(minutes=10)
# Turns one wake-up may take before handing over to a new invocation (a lane of jobs failing at once).
MAX_TURNS_PER_WAKE = 25
# A direct eBay/Etsy call is performed inside the invocation (process_job's timeout is 30 s).
MAX_HTTP_SECONDS = 20.0
# A wake-up takes no further turn once it has run this long (a turn may perform a call of up to MAX_HTTP_SECONDS,
# then apply it: a bulk call's 25 jobs): it hands over to a new invocation rather than be killed by the timeout.
WAKE_BUDGET_SECONDS = 30.0 - MAX_HTTP_SECONDS - 2.0
# Kept beside the pacing state while a call waits its turn: the kind it waits to send.
NEXT_KIND = "next_kind"
CALL_KINDS: tuple[CallKind, ...] = ("read", "write", "delete")
# The timers a lane remembers, and for how long after they were due.
MAX_TIMERS_REMEMBERED = 8
FORGET_TIMERS_AFTER_SECONDS = 120.0
# A wake-up from the TimersQueue may run beside another of its lane: a call another invocation committed
# but has not sent yet (or an HTTP call it is still performing) is only given up once that invocation
# cannot be running any more: process_job's timeout (template.yaml), plus slack.
SENDER_LIFETIME_SECONDS = 35.0
# A successful reply is held back (in the TimersQueue) until the lane's next call is due, when that is
# at least this far away: one wake-up then applies the reply and sends the next call.
MIN_HOLD_SECONDS = 1.0
# Slack after a deadline before the sweeper considers a lane's wake-up lost.
DEADLINE_SLACK_SECONDS = 1.0
JITTER = 0.2
# A lane whose eBay or Etsy account must be connected again waits for the user (the callback wakes it);
# it looks again this often in case that wake-up was lost.
REAUTH_REQUIRED = "reauth_required"
# A queued job another transaction holds for a moment (a cancel, the marking of a job just queued) is looked
# at again this soon.
HELD_RECHECK_SECONDS = 1.0
REAUTH_RECHECK_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class EngineConfig:
    pacing: pacing.PacingConfig
    backoff_seconds: tuple[float, ...] = (30, 120, 480)
    throttle_pause_seconds: float = 900
    challenge_pause_seconds: float = 1800
    max_pause_seconds: float = 6 * 3600
    plugin_wait_seconds: float = 24 * 3600
    api_throttle_pause_seconds: float = 60
    bulk_calls: bool = True  # a batch's jobs share bulk calls where their workflow offers them (crosslist.jobs.bulk)

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        return cls(
            pacing=pacing.PacingConfig.from_settings(settings),
            backoff_seconds=settings.backoff_seconds,
            throttle_pause_seconds=settings.throttle_pause_seconds,
            challenge_pause_seconds=settings.challenge_pause_seconds,
            max_pause_seconds=settings.max_pause_seconds,
            plugin_wait_seconds=settings.plugin_wait_seconds,
            bulk_calls=settings.bulk_calls,
        )


class WakeOutcome(enum.StrEnum):
    SENT = "sent"  # a call is in flight
    AWAITING = "awaiting"  # the call in flight has no reply yet
    TIMER = "timer"  # pacing, backoff or a pause: woken again when due
    PARKED = "parked"  # waiting for the user's browser extension
    IDLE = "idle"  # no job left
    CONTINUED = "continued"  # more to do: handed over to a new invocation


@dataclass
class _Turn:
    """What a turn decided, carried out once its transaction committed."""

    outcome: WakeOutcome | None = None  # None: take another turn
    messages: list[dict[str, Any]] = field(default_factory=list)
    send: _Send | None = None
    http: _Http | None = None
    timer: float | None = None  # epoch seconds
    pacing_before: JsonDict | None = None  # the lane's pacing before this turn's call was counted
    lanes_to_wake: list[LaneToWake] = field(default_factory=list)  # other lanes it queued jobs in (a sale's)
    events: list[Event] = field(default_factory=list)  # recorded in the outbox by its transaction


@dataclass(frozen=True)
class _Send:
    request_id: str
    tab: Connection
    job_id: str
    step: str
    command: PluginCommand
    deadline: float
    timeout_ms: int
    hold_until: float | None  # when the lane's next call is due, if its reply may wait for it


@dataclass(frozen=True)
class _Http:
    call: HttpCall | PhotoHashes
    job_id: uuid.UUID
    timeout_seconds: float


class LaneEngine:
    def __init__(
        self,
        store: LaneStore,
        *,
        commands: PendingCommandStore,
        connections: ConnectionStore,
        gateway: ConnectionGateway,
        notifier: Notifier,
        jobs: JobQueue,
        timers: TimerQueue,
        config: EngineConfig,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        http: Callable[[str, str, HttpCall, float], Reply] | None = None,
        photos: Callable[[str, tuple[str, ...], float], dict[str, str | None]] | None = None,
        workflows: Callable[[str, str], Workflow | None] = find_workflow,
        events: Dispatcher | None = None,
    ) -> None:
        """`events`: delivers what a committed turn recorded in the outbox (None: the sweeper does, a minute
        later; the user's connections are told by the engine itself either way). `photos`: hashes photos for a
        PhotoHashes step (user id, URLs, seconds it may take); None: no photo is ever hashed."""
        self._store = store
        self._events = events
        self._commands = commands
        self._connections = connections
        self._gateway = gateway
        self._notifier = notifier
        self._jobs = jobs
        self._timers = timers
        self._config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._http = http or _no_api
        self._photos = photos or _no_photos
        self._workflows = workflows
        self._tabs: list[Connection] | None = None  # the user's connections, read once per wake-up

    def wake(
        self,
        user_id: str,
        marketplace: str,
        cause: str = "",
        reply: CarriedReply | None = None,
        *,
        exclusive: bool = True,
    ) -> WakeOutcome:
        """Do what the lane can do now; returns why it stopped. `cause` is what woke it (see LaneWake);
        `reply` the result of a plugin command, carried by its wake-up so it need not be read back.
        `exclusive`: the wake-up came through the lane's FIFO group, which never hands a message out again
        while its first delivery runs (a redelivery means that invocation died); TimersQueue ones are not."""
        self._tabs = None
        self._exclusive = exclusive
        self._abandoned: set[str] = set()  # commands this wake-up deleted before they left
        # Whether the correlation record may hold news the wake-up does not carry (a tab closed, a reply
        # whose wake-up did not carry it, a command that never left).
        self._look = cause.startswith(("lost:", "result:"))
        self._cause = cause
        self._carried = reply
        logger.append_keys(lane=f"{user_id}:{marketplace}")
        try:
            started = time.monotonic()
            for _ in range(MAX_TURNS_PER_WAKE):
                turn = self._turn(user_id, marketplace)
                again = self._carry_out(user_id, marketplace, turn)
                if turn.outcome is not None and not again:
                    return turn.outcome
                if time.monotonic() - started > WAKE_BUDGET_SECONDS:
                    break
            self._jobs.wake(user_id, marketplace, cause=f"continue:{uuid.uuid4()}")
            return WakeOutcome.CONTINUED
        finally:
            logger.remove_keys(["lane"])

    # ------------------------------------------------------------------ one turn
    def _turn(self, user_id: str, marketplace: str) -> _Turn:
        turn = _Turn()
        with self._store.locked(user_id, marketplace) as tx:
            now = self._clock()
            if self._cause.startswith("timer:"):  # that timer fired: it no longer stands for a later wait
                fired = self._cause.removeprefix("timer:")
                tx.lane.timers = [due for due in tx.lane.timers if str(due) != fired]
            if tx.lane.in_flight is not None:
                self._collect(tx, turn, now)
            if tx.lane.in_flight is None and turn.outcome is None:
                # A reply applied (or a call given up): the next call goes in the same transaction, and
                # the step's progress can travel with it. The clock is read again: a job applied above ended
                # then, and the lane's next job must not look as if it started before that.
                self._advance(tx, turn, self._clock())
            self._beyond_lane(tx, turn)
        return turn

    @staticmethod
    def _beyond_lane(tx: LaneTransaction, turn: _Turn) -> None:
        """What the turn did beyond its lane (auto-delist), carried out with the rest once it has committed."""
        after = tx.after_commit()
        turn.messages.extend(after.messages)
        turn.lanes_to_wake = after.lanes
        turn.events = after.events

    def _collect(self, tx: LaneTransaction, turn: _Turn, now: float) -> None:
        """The lane has a call in flight: apply its reply if it came, or notice it never will."""
        lane = tx.lane
        flight = dict(lane.in_flight or {})
        verdict = self._reply_or_verdict(flight, now)
        if isinstance(verdict, float):  # no reply yet: the lane is woken by it, or at its deadline
            lane.wake_at = _at(flight["deadline"] + DEADLINE_SLACK_SECONDS)
            turn.outcome = WakeOutcome.AWAITING
            if verdict < flight["deadline"]:  # a closed tab's grace: look again when it ends
                lane.in_flight = {**flight, "grace_until": verdict}
            self._arm(tx, turn, verdict, now)
            return
        lane.in_flight = None
        if verdict == "never_sent" and "pacing_before" in flight:
            lane.pacing = flight["pacing_before"]
        if bulk.BULK in flight:  # an HTTP call: its performer died before applying the reply
            self._bulk_lost(tx, turn, flight)
            return
        job = tx.job(uuid.UUID(flight["job_id"]))
        if job is None or job.ended or job.current_step != flight["step_index"]:
            return  # nothing to apply it to any more
        if isinstance(verdict, Reply):
            self._apply(tx, turn, job, flight=flight, reply=verdict, now=now)
            return
        if verdict in ("lost", "timed_out") and not flight["repeatable"]:
            # It may have landed: never sent blindly again, the next turn looks first (Workflow.verify).
            job.unconfirmed_step = job.current_step
            tx.save(job)
        if verdict == "timed_out":
            self._failed(tx, turn, job, self._timeout(job), now)
        # "never_sent", "lost": no attempt used, the next turn sends the step (or its check) to a tab.

    def _reply_or_verdict(self, flight: dict[str, Any], now: float) -> Reply | float | str:
        """The call's reply, or what became of it, or when to look again. The correlation record is read
        only when something may have happened that the wake-up does not carry."""
        # The wake-up that sent the call, delivered again: that invocation died, maybe before the command left.
        redelivered = self._exclusive and self._cause != "" and self._cause == flight.get("sent_by")
        # Else the invocation that committed the call may still be sending it (or performing it).
        sender_gone = redelivered or now >= float(flight.get("sent_at", 0)) + SENDER_LIFETIME_SECONDS
        if flight.get("http"):
            # An HTTP call in flight at the start of a wake-up: its performer died before applying it.
            return "lost" if sender_gone else float(flight["sent_at"]) + SENDER_LIFETIME_SECONDS
        carried, self._carried = self._carried, None
        if carried is not None and carried.request_id == flight["request_id"]:
            return Reply(
                carried.success,
                carried.result,
                carried.error,
                status=carried.status,
                retry_after=carried.retry_after,
                photo_failure=carried.photo_failure,
            )
        look_at = min(float(flight["deadline"]), float(flight.get("grace_until", flight["deadline"])))
        if now < look_at and not self._look and not redelivered:
            return look_at  # a timer or another lane event: the call is as it was
        record = self._commands.get(flight["request_id"])
        if record is None and not sender_gone and flight["request_id"] not in self._abandoned:
            return min(look_at, float(flight["sent_at"]) + SENDER_LIFETIME_SECONDS)  # maybe not sent *yet*
        return self._verdict(record, flight, now)

    def _verdict(self, record: PendingCommand | None, flight: dict[str, Any], now: float) -> Reply | float | str:
        """A Reply; "never_sent", "lost" or "timed_out"; or the time (epoch s) to look again."""
        if record is None:
            return "never_sent"  # its record is written before the command leaves
        if record.status in (CommandStatus.SUCCEEDED, CommandStatus.FAILED):
            return Reply(
                record.status is CommandStatus.SUCCEEDED,
                record.result,
                record.error,
                status=record.http_status,
                retry_after=record.retry_after,
                photo_failure=record.photo_failure,
            )
        if record.status is CommandStatus.TIMED_OUT:
            return "timed_out"
        deadline = float(flight["deadline"])
        if record.status is CommandStatus.CONNECTION_LOST:
            grace_ends = (record.lost_at or now) + LOST_TAB_GRACE_SECONDS
            if now < min(grace_ends, deadline):
                return float(min(grace_ends, deadline))
            if self._commands.expire(record.request_id):
                return "lost"
            return self._verdict(self._commands.get(record.request_id), flight, now)
        if now < deadline:
            return deadline
        if self._commands.expire(record.request_id):
            return "timed_out"
        return self._verdict(self._commands.get(record.request_id), flight, now)

    def _apply(
        self, tx: LaneTransaction, turn: _Turn, job: Job, *, flight: dict[str, Any], reply: Reply, now: float
    ) -> None:
        workflow = self._workflows(job.marketplace, job.action_code)
        assert workflow is not None  # it planned the call
        steps = workflow.steps(job.input)
        step = steps[job.current_step]
        context = self._context(job, flight.get("account_id"))
        try:
            if flight.get("verifying"):
                data = workflow.verified(step, context, reply)
                job.unconfirmed_step = None
                if data is None:  # surely not landed: the write is planned again
                    logger.info("an unconfirmed write did not land: sending it again", extra={"step": step.name})
                    tx.save(job)
                    return
            else:
                applied = workflow.apply(step, context, reply)
                if isinstance(applied, Again):  # one page of many: checkpointed, the step goes on
                    if applied.effects is not None:
                        with tx.all_or_nothing():  # the page's records and its checkpoint, whole or not at all
                            applied = replace(applied, data={**applied.data, **applied.effects(_Records(tx, turn))})
                    self._again(tx, turn, job, steps, applied)
                    return
                data = applied
        except StepFailed as failure:
            self._unconfirmed_if_landed(job, flight, reply)
            self._failed(tx, turn, job, failure, now, connection_id=flight.get("connection_id"))
            return
        except Exception as error:  # a reply the code did not expect must not strand the job
            logger.exception("applying a reply failed", extra={"step": step.name})
            self._unconfirmed_if_landed(job, flight, reply)
            self._failed(tx, turn, job, StepFailed("infrastructure_error", _describe(error)), now)
            return
        self._step_done(tx, turn, job, workflow=workflow, steps=steps, data=data)

    @staticmethod
    def _unconfirmed_if_landed(job: Job, flight: dict[str, Any], reply: Reply) -> None:
        """A write the marketplace accepted whose answer could not be used (a changed shape, a bug) did
        land; a direct call that got no answer (a timeout) or a 5xx (a gateway's) may have: its next
        attempt looks for it (Workflow.verify) rather than writing it twice. (The extension reports no
        status only when Vinted was never reached.)"""
        if flight["repeatable"] or flight.get("verifying"):
            return
        unknown = flight.get("http") and (reply.status is None or reply.status >= 500)
        if reply.success or unknown:
            job.unconfirmed_step = job.current_step

    @staticmethod
    def _again(tx: LaneTransaction, turn: _Turn, job: Job, steps: list[Step], again: Again) -> None:
        step = steps[job.current_step]
        job.accumulated_data = again.data
        job.error = None
        description = f"{step.description}: {again.note}" if again.note else step.description
        turn.messages.append(
            progress_message(str(job.id), step.name, job.current_step, len(steps), description, batch_id=job.batch_ref)
        )
        tx.save(job)

    def _step_done(
        self, tx: LaneTransaction, turn: _Turn, job: Job, *, workflow: Workflow, steps: list[Step], data: Any
    ) -> None:
        step = steps[job.current_step]
        job.accumulated_data = data
        job.current_step += 1
        job.unconfirmed_step = None
        job.error = None
        if job.current_step < len(steps):  # the last step's progress is job.completed
            turn.messages.append(
                progress_message(
                    str(job.id), step.name, job.current_step, len(steps), step.description, batch_id=job.batch_ref
                )
            )
            tx.save(job)
            return
        completion = workflow.complete(self._context(job, None))
        job.result = completion.result
        self._final(job, JobStatus.COMPLETED)
        announced = len(turn.messages)
        try:
            with tx.all_or_nothing():  # a sync, an import: recorded in this same transaction, whole or not at all
                if completion.effects is not None:
                    job.result = {**completion.result, **completion.effects(_Records(tx, turn))}
                tx.complete(job, completion)
        except StepFailed as refused:  # what it would record cannot be (an item already another product's)
            del turn.messages[announced:]
            job.result = None
            job.completed_at = None
            self._fail(tx, turn, job, refused)
            return
        if tx.lane.active_job_id == job.id:
            tx.lane.active_job_id = None
        turn.messages.append(end_message(str(job.id), job.status, result=job.result, error=job.error))
        self._batch_progress(tx, turn, job)

    # ------------------------------------------------------------------ the next call
    def _advance(self, tx: LaneTransaction, turn: _Turn, now: float) -> None:
        """No call in flight: start the lane's next call, or say why not yet."""
        lane = tx.lane
        job = self._current_job(tx)
        if job is None and tx.has_held_jobs():  # queued jobs another transaction holds: look again shortly
            lane.wake_at = _at(now + HELD_RECHECK_SECONDS + DEADLINE_SLACK_SECONDS)
            self._arm(tx, turn, now + HELD_RECHECK_SECONDS, now)
            turn.outcome = WakeOutcome.TIMER
        elif job is None:
            lane.wake_at = None
            lane.active_job_id = None
            turn.outcome = WakeOutcome.IDLE
        else:
            self._advance_job(tx, turn, job, now)

    def _advance_job(self, tx: LaneTransaction, turn: _Turn, job: Job, now: float) -> None:
        """Start the job's next call, or say why not yet."""
        lane = tx.lane
        if job.cancel_requested:  # between two steps: never in the middle of a marketplace call
            self._end(tx, turn, job, JobStatus.CANCELLED)
        elif (ahead := self._outranking_bulk(tx, job)) is not None:  # one bulk call at most before it
            self._advance_job(tx, turn, ahead, now)
        elif lane.paused_until is not None and lane.paused_until.timestamp() > now:
            self._wait(turn, tx, job, lane.pause_reason or "rate_limited", lane.paused_until.timestamp())
        elif job.next_attempt_at is not None and job.next_attempt_at.timestamp() > now:
            ahead = self._ahead_of_backoff(tx, job)
            if ahead is not None:  # it goes first while this one waits out its backoff
                self._advance_job(tx, turn, ahead, now)
            else:  # a backoff, or a workflow's own Wait: its reason stays
                self._wait(turn, tx, job, job.wait_reason or "backoff", job.next_attempt_at.timestamp())
        else:
            if lane.pause_reason == REAUTH_REQUIRED:  # connected again: the jobs that waited queue again
                for waiting in tx.queued_jobs():
                    if waiting.wait_reason == REAUTH_REQUIRED and waiting.id != job.id:
                        waiting.status = JobStatus.PENDING
                        _clear_wait(waiting)
                        tx.save(waiting)
            lane.paused_until = lane.pause_reason = None
            self._plan(tx, turn, job, now)

    def _plan(self, tx: LaneTransaction, turn: _Turn, job: Job, now: float) -> None:
        """Ask the workflow what the job's current step needs, and see it done."""
        workflow = self._workflows(job.marketplace, job.action_code)
        if workflow is None:
            failure = StepFailed("action_not_available", f"no workflow runs {job.action_code} on {job.marketplace}")
            self._fail(tx, turn, job, failure)
            return
        if self._pacing_holds(tx, turn, job, now):
            return
        tab: Connection | None = None
        if job.marketplace in PLUGIN_MARKETPLACES:
            tab = self._ready_tab(tx, turn, job, now)
            if tab is None:
                return
        steps = workflow.steps(job.input)
        step = steps[job.current_step]
        context = self._context(job, tab.vinted_user_id if tab is not None else None)
        verifying = job.unconfirmed_step == job.current_step
        try:
            action: StepAction | None = workflow.verify(step, context) if verifying else None
            if action is None:  # nothing in doubt, or nothing to look at: the step's own call
                verifying = False
                job.unconfirmed_step = None
                action = workflow.plan(step, context)
        except StepFailed as failure:
            self._failed(tx, turn, job, failure, now)
            return
        if isinstance(action, Done):
            self._start(tx, job, now)
            self._step_done(tx, turn, job, workflow=workflow, steps=steps, data=action.data)
        elif isinstance(action, Wait):
            self._start(tx, job, now)
            job.next_attempt_at = _at(now + action.seconds)
            self._wait(turn, tx, job, action.reason, now + action.seconds)
        elif isinstance(action, PhotoHashes):  # photos on public hosts: no marketplace call, so never paced
            self._call(tx, turn, job, step=step, action=action, tab=None, verifying=False, last=False, now=now)
        elif self._paced(tx, turn, job, action.kind, now):
            return
        elif verifying or not isinstance(action, HttpCall) or not self._bulk(tx, turn, job, step, now):
            last = job.current_step == len(steps) - 1  # its reply may complete the job: never held
            self._call(tx, turn, job, step=step, action=action, tab=tab, verifying=verifying, last=last, now=now)

    def _pacing_holds(self, tx: LaneTransaction, turn: _Turn, job: Job, now: float) -> bool:
        """Whether no call of the kind the lane waits to send (any kind, if unknown) may go yet: then the job
        waits without the lane reading the user's tabs."""
        if job.marketplace not in PLUGIN_MARKETPLACES or not self._config.pacing.enabled:
            return False
        state = pacing.PacingState.from_json(tx.lane.pacing)
        waiting_kind = tx.lane.pacing.get(NEXT_KIND)
        kinds: tuple[CallKind, ...] = (waiting_kind,) if waiting_kind in CALL_KINDS else CALL_KINDS
        due = min(pacing.due_at(state, kind, self._config.pacing) for kind in kinds)
        if due > now:
            self._wait(turn, tx, job, "pacing", due, notify=job.wait_reason != "pacing")
            return True
        return False

    def _paced(self, tx: LaneTransaction, turn: _Turn, job: Job, kind: CallKind, now: float) -> bool:
        """Whether the call must wait to be spaced like a person's (a timer is set); else it is counted."""
        if job.marketplace not in PLUGIN_MARKETPLACES or not self._config.pacing.enabled:
            return False
        state = pacing.PacingState.from_json(tx.lane.pacing)
        due = pacing.due_at(state, kind, self._config.pacing)
        if due > now:
            tx.lane.pacing = {**tx.lane.pacing, NEXT_KIND: kind}
            self._wait(turn, tx, job, "pacing", due, notify=job.wait_reason != "pacing")
            return True
        turn.pacing_before = tx.lane.pacing
        tx.lane.pacing = pacing.record(state, kind, now, self._config.pacing, self._rng).to_json()
        return False

    def _call(
        self,
        tx: LaneTransaction,
        turn: _Turn,
        job: Job,
        *,
        step: Step,
        action: PluginCall | HttpCall | PhotoHashes,
        tab: Connection | None,
        verifying: bool,
        last: bool,
        now: float,
        carried: list[tuple[Job, str]] | None = None,
    ) -> None:
        """Record the call as in flight (committed before it is sent) and have it sent after the commit; `carried`:
        the jobs a bulk call does the step of, with their items, this job first."""
        self._start(tx, job, now)
        timeout_seconds = job.step_timeout_ms / 1000
        flight: dict[str, Any] = {
            "request_id": str(uuid.uuid4()),
            "job_id": str(job.id),
            "step": step.name,
            "step_index": job.current_step,
            "kind": action.kind,
            "repeatable": action.repeatable or verifying,
            "verifying": verifying,
            "deadline": now + timeout_seconds,
            "sent_at": now,
        }
        if self._exclusive:
            flight["sent_by"] = self._cause
        if carried:
            flight[bulk.BULK] = bulk.record(carried)
            for other, _ in carried[1:]:
                bulk.carry(other, now)
                tx.save(other)
        if isinstance(action, HttpCall | PhotoHashes):
            flight["http"] = True
            turn.http = _Http(action, job.id, min(timeout_seconds, MAX_HTTP_SECONDS))
        else:
            assert tab is not None
            flight |= {"connection_id": tab.connection_id, "account_id": tab.vinted_user_id}
            turn.send = _Send(
                flight["request_id"],
                tab,
                str(job.id),
                step.name,
                action.command,
                flight["deadline"],
                job.step_timeout_ms,
                hold_until=None if last else self._next_call_due(tx, action.kind, now),
            )
            self._arm(tx, turn, flight["deadline"], now)
        if turn.pacing_before is not None:  # a command that never leaves must not count as a call
            flight["pacing_before"] = turn.pacing_before
        tx.lane.in_flight = flight
        tx.lane.wake_at = _at(flight["deadline"] + DEADLINE_SLACK_SECONDS)
        tx.save(job)
        turn.outcome = WakeOutcome.SENT

    def _next_call_due(self, tx: LaneTransaction, kind: CallKind, now: float) -> float | None:
        """When pacing lets the lane's next call go, if that is worth holding this call's reply for. The next
        call is taken to be of the same kind (uploads follow uploads, reads follow reads); when it is not,
        the wake-up merely comes early or late by the difference of the two kinds' gaps."""
        if tx.lane.marketplace not in PLUGIN_MARKETPLACES or not self._config.pacing.enabled:
            return None
        due = pacing.due_at(pacing.PacingState.from_json(tx.lane.pacing), kind, self._config.pacing)
        return due if due >= now + MIN_HOLD_SECONDS else None

    def _current_job(self, tx: LaneTransaction) -> Job | None:
        """The started job holding the lane, else the next one: highest priority, then oldest."""
        lane = tx.lane
        if lane.active_job_id is not None:
            job = tx.job(lane.active_job_id)
            if job is not None and not job.ended:
                return job
            lane.active_job_id = None
        job = tx.next_job()
        if job is not None and job.started_at is not None:  # a job that gave way holds the lane again
            lane.active_job_id = job.id
        return job

    @staticmethod
    def _ahead_of_backoff(tx: LaneTransaction, job: Job) -> Job | None:
        """A started job waiting out the backoff before retrying a failed step has no call to make: the lane's
        best queued job of strictly higher priority (an auto-delist delete) goes first. The backed-off job gives
        the lane up and keeps its step, attempts and any write to verify; it is the oldest of its priority, so it
        is the lane's next job again once no higher one is left: jobs of equal or lower priority still wait for
        it. A workflow's own Wait (no failure) keeps the lane."""
        if job.error is None:
            return None
        ahead = tx.next_job(outranking=job.priority)
        if ahead is not None:
            logger.info("a job in backoff gives way", extra={"job_id": str(job.id), "to_job_id": str(ahead.id)})
            tx.lane.active_job_id = ahead.id if ahead.started_at is not None else None
        return ahead

    def _ready_tab(self, tx: LaneTransaction, turn: _Turn, job: Job, now: float) -> Connection | None:
        """The tab to send the command to (the most recently ready one); None after parking the lane's jobs."""
        tabs = self._user_tabs(job.user_id)
        ready = sorted((t for t in tabs if t.takes_commands), key=lambda t: t.ready_at_ms, reverse=True)
        if ready:
            if job.status is JobStatus.WAITING_FOR_PLUGIN:  # the extension is back: the lane's jobs queue again
                tx.unpark()
                job.status = JobStatus.RUNNING if job.id == tx.lane.active_job_id else JobStatus.PENDING
                _clear_wait(job)
                job.waiting_since = None
            return ready[0]
        reason = _unavailable_reason(tabs)
        expired = _at(now - self._config.plugin_wait_seconds)
        wake = now + PARKED_RECHECK.total_seconds()
        failed = False
        for waiting in [job, *(other for other in tx.queued_jobs() if other.id != job.id)]:
            if waiting.waiting_since is not None and waiting.waiting_since <= expired:
                message = (
                    "the browser extension was not available to run this job in time; open the web app with the"
                    " extension and try again"
                )
                self._fail(tx, turn, waiting, StepFailed("plugin_never_connected", message, retryable=False))
                failed = True
                continue
            if waiting.status is not JobStatus.WAITING_FOR_PLUGIN or waiting.wait_reason != reason:
                waiting.status = JobStatus.WAITING_FOR_PLUGIN
                waiting.wait_reason = reason
                waiting.wait_until = None
                waiting.waiting_since = waiting.waiting_since or _at(now)
                tx.save(waiting)
                turn.messages.append(waiting_message(str(waiting.id), reason, None))
            wake = min(wake, (waiting.waiting_since or _at(now)).timestamp() + self._config.plugin_wait_seconds)
        tx.lane.wake_at = _at(wake)
        # Jobs that expired free the lane for the next: look again. Else the lane waits for the extension
        # (ws_connect and plugin_status wake it) or for its next check.
        turn.outcome = None if failed else WakeOutcome.PARKED
        return None

    def _user_tabs(self, user_id: str) -> list[Connection]:
        if self._tabs is None:
            self._tabs = self._connections.for_user(user_id)
        return self._tabs

    # ------------------------------------------------------------------ bulk calls (crosslist.jobs.bulk)
    def _bulk_workflow(self, job: Job) -> BulkWorkflow | None:
        if not self._config.bulk_calls or job.batch_id is None:
            return None
        return bulk_of(self._workflows(job.marketplace, job.action_code))

    def _bulk(self, tx: LaneTransaction, turn: _Turn, job: Job, step: Step, now: float) -> bool:
        """The step of a batch's job as one call with the batch's next jobs at that step, or, while one of those is
        still at an earlier step, after it; False: the job's own call goes, alone."""
        workflow, context = self._bulk_workflow(job), self._context(job, None)
        group = workflow.bulk_group(step, context) if workflow is not None else None
        if workflow is None or group is None or job.batch_id is None:
            return False
        # The job and the batch's next jobs in the lane: the group a call may carry (the job is queued when it has
        # not started, or gave way).
        window = [other for other in tx.batch_queue(job.batch_id, workflow.max_bulk) if other.id != job.id]
        window = window[: workflow.max_bulk - 1]
        late = bulk.behind(window, job, now)
        if late is not None:  # it catches up first: then they share this step's call
            self._give_way(tx, job, late)
            self._advance_job(tx, turn, late, now)
            return True
        carried, contexts = [(job, workflow.bulk_key(step, context))], [context]
        for other in bulk.alongside(window, job, now):
            theirs = self._context(other, None)
            if workflow.bulk_group(step, theirs) == group:
                carried.append((other, workflow.bulk_key(step, theirs)))
                contexts.append(theirs)
        if len(carried) < 2:
            return False
        try:
            call = workflow.bulk_plan(step, contexts)
        except StepFailed as failure:
            self._failed(tx, turn, job, failure, now)
            return True
        self._call(
            tx, turn, job, step=step, action=call, tab=None, verifying=False, last=False, now=now, carried=carried
        )
        return True

    def _outranking_bulk(self, tx: LaneTransaction, job: Job) -> Job | None:
        """A started job of a batch whose steps go in bulk lets a queued job of higher priority go first between two
        steps (an auto-delist delete waits for one bulk call at most, not for a whole group's three)."""
        if job.started_at is None or job.priority <= 1 or self._bulk_workflow(job) is None:
            return None
        ahead = tx.next_job(outranking=job.priority)
        if ahead is not None:
            self._give_way(tx, job, ahead)
        return ahead

    @staticmethod
    def _give_way(tx: LaneTransaction, job: Job, ahead: Job) -> None:
        """`job` goes back to the lane's queue, its step and data kept, while `ahead` goes first."""
        if job.status is JobStatus.RUNNING:
            job.status = JobStatus.PENDING
            tx.save(job)
        tx.lane.active_job_id = ahead.id if ahead.started_at is not None else None

    def _bulk_apply(
        self, tx: LaneTransaction, turn: _Turn, flight: dict[str, Any], outcome: Reply | StepFailed, now: float
    ) -> None:
        """A bulk call's reply, or why it was never sent, split per job by the workflow: each job it carried applies
        its own part or fails alone; one left out goes again as it is. A failure of the whole call is the lane's
        job's (a 429 pauses the lane, a 5xx backs it off: the others wait for it), or every job's when it is final."""
        lead = uuid.UUID(flight["job_id"])
        jobs = [
            job
            for job_id in bulk.carried(flight)
            if (job := tx.job(job_id)) is not None and not job.ended and job.current_step == flight["step_index"]
        ]
        workflow = bulk_of(self._workflows(jobs[0].marketplace, jobs[0].action_code)) if jobs else None
        if workflow is None:
            return
        steps = workflow.steps(jobs[0].input)
        step = steps[flight["step_index"]]
        reply = outcome if isinstance(outcome, Reply) else None
        whole: StepFailed | None = None
        try:
            parts = workflow.bulk_apply(step, [self._context(job, None) for job in jobs], outcome)
        except StepFailed as failure:
            parts, whole = {}, failure
        except Exception as error:  # a reply the code did not expect must not strand the jobs
            logger.exception("applying a bulk reply failed", extra={"step": step.name})
            parts, whole = {}, StepFailed("infrastructure_error", _describe(error))
        for job in sorted(jobs, key=lambda one: one.id == lead):  # the lane's job last: it may pause the lane
            part = parts.get(str(job.id))
            if part is None and whole is not None and (job.id == lead or not whole.retryable):
                part = whole
            if part is None or isinstance(part, StepFailed):
                if reply is not None:
                    self._unconfirmed_if_landed(job, flight, reply)
                if isinstance(part, StepFailed):
                    self._item_failed(tx, turn, job, part, now, lead=job.id == lead)
            else:
                self._step_done(tx, turn, job, workflow=workflow, steps=steps, data=part)
                self._settle(tx, turn, job, workflow, steps)
            self._between_calls(tx, turn, job, lead=job.id == lead)

    def _bulk_lost(self, tx: LaneTransaction, turn: _Turn, flight: dict[str, Any]) -> None:
        """A bulk call whose reply never came (its invocation died): each job it carried is handled as a single call's
        would be (a write that may not be repeated is verified before anything is written again)."""
        lead = uuid.UUID(flight["job_id"])
        for job_id in bulk.carried(flight):
            job = tx.job(job_id)
            if job is None or job.ended or job.current_step != flight["step_index"]:
                continue
            if not flight["repeatable"]:
                job.unconfirmed_step = job.current_step
            self._between_calls(tx, turn, job, lead=job_id == lead)

    def _item_failed(
        self, tx: LaneTransaction, turn: _Turn, job: Job, failure: StepFailed, now: float, *, lead: bool
    ) -> None:
        """A job's part of a bulk call failed: the lane's job as any failure; another job fails alone, or tries its
        step again after a backoff without holding up the others (the lane sets its timer when it comes to it)."""
        if lead:
            self._failed(tx, turn, job, failure, now)
        elif not failure.retryable or job.attempts >= job.max_attempts:
            self._fail(tx, turn, job, failure)
        else:
            until = self._back_off(turn, job, failure, now)
            job.status = JobStatus.WAITING
            job.wait_reason, job.wait_until = "backoff", _at(until)
            tx.save(job)

    def _settle(self, tx: LaneTransaction, turn: _Turn, job: Job, workflow: Workflow, steps: list[Step]) -> None:
        """A carried job's next steps that need no call (Done: an offer just created needs no refresh) are done now:
        it is at the batch's next bulk step with the others, not left behind."""
        while not job.ended and not job.cancel_requested and job.unconfirmed_step != job.current_step:
            try:
                action = workflow.plan(steps[job.current_step], self._context(job, None))
            except StepFailed:
                return  # planned again, and failing then, when it is the lane's job
            if not isinstance(action, Done):
                return
            self._step_done(tx, turn, job, workflow=workflow, steps=steps, data=action.data)

    def _between_calls(self, tx: LaneTransaction, turn: _Turn, job: Job, *, lead: bool) -> None:
        """A job a bulk call carried, its part applied: the lane's job keeps the lane; another is queued again until
        the next call carries it, and a cancel asked for while the call was in flight takes effect now."""
        if job.ended:
            return
        if not lead:
            if job.cancel_requested:
                self._end(tx, turn, job, JobStatus.CANCELLED)
                return
            if job.status is JobStatus.RUNNING:
                job.status = JobStatus.PENDING
        tx.save(job)

    # ------------------------------------------------------------------ failures and waits
    def _failed(
        self,
        tx: LaneTransaction,
        turn: _Turn,
        job: Job,
        failure: StepFailed,
        now: float,
        *,
        connection_id: str | None = None,
    ) -> None:
        """Handle a classified failure of the job's current step."""
        lane = tx.lane
        logger.info("step failed", extra={"job_id": str(job.id), "code": failure.code, "kind": failure.kind})
        if failure.kind == "throttled":
            until = now + self._pause_seconds(lane, failure, now)
            lane.paused_until = _at(until)
            lane.pause_reason = "challenge" if failure.challenge else "rate_limited"
            job.error = failure.error
            self._wait(turn, tx, job, lane.pause_reason, until)
            return
        if failure.kind == "reauth":
            self._wait_for_reauth(tx, turn, job, failure, now)
            return
        if failure.kind == "logged_out":
            # The tab's extension is not logged in any more: no command goes to it until it says it is.
            if connection_id is not None:
                self._connections.set_logged_out(connection_id)
            self._tabs = None
            job.error = failure.error
            tx.save(job)
            turn.outcome = None
            return
        if failure.kind == "permanent" or job.attempts >= job.max_attempts:
            self._fail(tx, turn, job, failure)
            return
        self._wait(turn, tx, job, "backoff", self._back_off(turn, job, failure, now), notify=False)

    def _back_off(self, turn: _Turn, job: Job, failure: StepFailed, now: float) -> float:
        """The job's next attempt, after a backoff; when it is due."""
        job.attempts = max(job.attempts, 1) + 1  # a step may fail before the job's first call
        delays = self._config.backoff_seconds or (0.0,)
        delay = delays[min(job.attempts - 2, len(delays) - 1)] * self._rng.uniform(1 - JITTER, 1 + JITTER)
        job.next_attempt_at = _at(now + delay)
        job.error = failure.error
        turn.messages.append(retrying_message(str(job.id), job.attempts, job.next_attempt_at, failure.error))
        return now + delay

    def _pause_seconds(self, lane: Lane, failure: StepFailed, now: float) -> float:
        """Vinted: 15 min after a 429, 30 min after a challenge, doubling with each one the same day, capped
        (an anti-bot system remembers). A REST API (eBay, Etsy) says when to come back: its Retry-After is
        honoured as it is; without one, a minute, doubling the same day."""
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        seen = int(lane.throttles.get("count", 0)) if lane.throttles.get("day") == today else 0
        lane.throttles = {"day": today, "count": seen + 1}
        if lane.marketplace not in PLUGIN_MARKETPLACES:
            if failure.retry_after_seconds is not None:
                return min(failure.retry_after_seconds, self._config.max_pause_seconds)
            return float(min(self._config.api_throttle_pause_seconds * 2**seen, self._config.max_pause_seconds))
        base = self._config.challenge_pause_seconds if failure.challenge else self._config.throttle_pause_seconds
        pause = float(min(base * 2**seen, self._config.max_pause_seconds))
        if failure.retry_after_seconds is not None:
            pause = max(pause, min(failure.retry_after_seconds, self._config.max_pause_seconds))
        return pause

    def _wait_for_reauth(self, tx: LaneTransaction, turn: _Turn, job: Job, failure: StepFailed, now: float) -> None:
        """The account must be connected again: the lane's jobs wait (none fails) until the user does, which
        wakes the lane (LaneStore.resume_after_reauth); meanwhile the lane looks again now and then."""
        lane = tx.lane
        if lane.pause_reason != REAUTH_REQUIRED:  # the user is told once, not at every recheck
            turn.messages.append(reauth_required_message(lane.marketplace))
        until = now + REAUTH_RECHECK_SECONDS
        lane.paused_until = _at(until)
        lane.pause_reason = REAUTH_REQUIRED
        job.error = failure.error
        for waiting in tx.queued_jobs():
            if waiting.id != job.id and waiting.wait_reason != REAUTH_REQUIRED:
                waiting.status = JobStatus.WAITING
                waiting.wait_reason = REAUTH_REQUIRED
                waiting.wait_until = None
                tx.save(waiting)
                turn.messages.append(waiting_message(str(waiting.id), REAUTH_REQUIRED, None))
        self._wait(turn, tx, job, REAUTH_REQUIRED, until)

    def _wait(
        self, turn: _Turn, tx: LaneTransaction, job: Job, reason: str, until: float, *, notify: bool = True
    ) -> None:
        """The job waits until `until`; the lane is woken then by a timer."""
        if reason != "pacing":
            job.status = JobStatus.WAITING
        elif job.status is not JobStatus.RUNNING:  # spacing calls: a started job still runs, others queue
            job.status = JobStatus.RUNNING if job.id == tx.lane.active_job_id else JobStatus.PENDING
        changed = (job.wait_reason, job.wait_until) != (reason, _at(until))
        job.wait_reason = reason
        job.wait_until = _at(until)
        tx.save(job)
        if notify and changed:
            turn.messages.append(waiting_message(str(job.id), reason, job.wait_until))
        tx.lane.wake_at = _at(until + DEADLINE_SLACK_SECONDS)
        self._arm(tx, turn, until, self._clock())
        turn.outcome = WakeOutcome.TIMER

    def _arm(self, tx: LaneTransaction, turn: _Turn, due: float, now: float) -> None:
        """Have the lane woken at `due`, unless one of its timers already wakes it no later: the lane then
        sets the next one (each command's deadline would otherwise be a timer of its own, nearly always
        woken for nothing). A timer due in the past does not count: it has fired or was lost."""
        due_ms = int(due * 1000)
        # Timers long past have fired or were lost: forgotten (a timer just past may still be on its way).
        armed = [at for at in tx.lane.timers if at > (now - FORGET_TIMERS_AFTER_SECONDS) * 1000]
        if any(now * 1000 < at <= due_ms for at in armed):
            tx.lane.timers = armed
            return
        tx.lane.timers = sorted([*armed, due_ms])[-MAX_TIMERS_REMEMBERED:]
        turn.timer = due_ms / 1000

    def _fail(self, tx: LaneTransaction, turn: _Turn, job: Job, failure: StepFailed) -> None:
        job.error = failure.error
        self._end(tx, turn, job, JobStatus.FAILED)

    def _end(self, tx: LaneTransaction, turn: _Turn, job: Job, status: JobStatus) -> None:
        """A job failed or is cancelled (a completion ends through its workflow's records, `_step_done`): saved
        with its final status, which records its event (crosslist.jobs.ending), the lane freed, the user told."""
        self._final(job, status)
        tx.save(job)
        if tx.lane.active_job_id == job.id:
            tx.lane.active_job_id = None
        self._batch_progress(tx, turn, job)
        turn.messages.append(end_message(str(job.id), status, result=job.result, error=job.error))

    def _final(self, job: Job, status: JobStatus) -> None:
        """The job's final status, set (saving it ends it: crosslist.jobs.ending)."""
        job.status = status
        job.completed_at = _at(self._clock())
        _clear_wait(job)

    def _batch_progress(self, tx: LaneTransaction, turn: _Turn, job: Job) -> None:
        if job.batch_id is not None:
            turn.messages.append(batch_progress_message(str(job.batch_id), tx.batch_counts(job.batch_id)))

    def _timeout(self, job: Job) -> StepFailed:
        return StepFailed("plugin_timeout", f"the browser extension did not answer within {job.step_timeout_ms} ms")

    @staticmethod
    def _start(tx: LaneTransaction, job: Job, now: float) -> None:
        """The job runs: it holds the lane until it ends (a started job finishes before another starts)."""
        tx.lane.active_job_id = job.id
        job.status = JobStatus.RUNNING
        _clear_wait(job)
        job.waiting_since = None
        job.next_attempt_at = None
        job.attempts = max(job.attempts, 1)
        job.started_at = job.started_at or _at(now)

    @staticmethod
    def _context(job: Job, account_id: str | None) -> JobContext:
        return JobContext(
            job_id=str(job.id),
            user_id=job.user_id,
            input=job.input,
            accumulated=dict(job.accumulated_data or {}),
            step_timeout_ms=job.step_timeout_ms,
            account_id=account_id,
        )

    # ------------------------------------------------------------------ after the commit
    def _carry_out(self, user_id: str, marketplace: str, turn: _Turn) -> bool:
        """Send what the committed turn decided; returns whether the lane needs another turn now."""
        again = turn.outcome is None
        if turn.timer is not None:  # first: the lane has committed that it is set
            self._timers.wake_at(user_id, marketplace, turn.timer)
        messages = turn.messages
        if turn.send is not None:  # then the command: the user's progress messages must not delay it
            # The job's progress rides with its next command: that tab is not sent it twice.
            progress = next(
                (m for m in reversed(messages) if m["type"] == "job.progress" and m["job_id"] == turn.send.job_id),
                None,
            )
            gone = self._send(user_id, marketplace, turn.send, progress)
            again = gone or again
            if progress is not None and not gone:
                messages = [m for m in messages if m is not progress]
                others = [t for t in self._user_tabs(user_id) if t.connection_id != turn.send.tab.connection_id]
                if others:
                    self._notifier.to_user(user_id, progress, connections=others)
        self._tell_and_wake(user_id, messages, turn)
        if turn.http is not None:
            self._perform_http(user_id, marketplace, turn.http)
            again = True
        return again

    def _send(self, user_id: str, marketplace: str, send: _Send, progress: dict[str, Any] | None) -> bool:
        """Deliver a command to its tab; True when the tab was gone (the next turn picks another)."""
        self._commands.create(
            send.request_id,
            user_id,
            send.job_id,
            send.step,
            send.deadline,
            connection_id=send.tab.connection_id,
            marketplace=marketplace,
            hold_until=send.hold_until,
        )
        data = encode(
            command_message(send.request_id, send.job_id, send.step, send.command, send.timeout_ms, progress=progress)
        )
        try:
            self._gateway.post(send.tab.connection_id, data)
        except ConnectionGone:
            logger.info("stale connection closed", extra={"connection_id": send.tab.connection_id})
            self._connections.close(send.tab.connection_id)
            self._commands.delete(send.request_id)  # never delivered: the next turn sends it afresh
            self._abandoned.add(send.request_id)
            self._tabs = None
            self._look = True
            return True
        return False

    def _perform_http(self, user_id: str, marketplace: str, http: _Http) -> None:
        failure: StepFailed | None = None
        try:
            reply = self._perform(user_id, marketplace, http)
        except NeedsReauth:
            name = DISPLAY_NAMES.get(marketplace, marketplace)
            failure = StepFailed(
                "reauth_required",
                f"crosslist's access to your {name} account has ended: connect {name} again and the job carries on",
                kind="reauth",
            )
        except NotAvailable as missing:
            failure = StepFailed("marketplace_not_available", str(missing), retryable=False)
        except StepFailed as refused:  # e.g. a photo that cannot be downloaded: nothing reached the marketplace
            failure = refused
        turn = _Turn()
        with self._store.locked(user_id, marketplace) as tx:
            flight = tx.lane.in_flight
            if flight is None or flight.get("job_id") != str(http.job_id):
                return
            tx.lane.in_flight = None
            now = self._clock()
            if bulk.BULK in flight:  # one call for several jobs: each takes its own part
                self._bulk_apply(tx, turn, flight, failure or reply, now)
            else:
                job = tx.job(http.job_id)
                if job is None or job.ended or job.current_step != flight["step_index"]:
                    return
                if failure is not None:  # nothing was sent: the step is sent as it is once the lane can go on
                    self._failed(tx, turn, job, failure, now)
                else:
                    if reply.success and reply.retry_after:  # the API's budget is spent: its next call waits
                        tx.lane.paused_until = _at(now + reply.retry_after)
                        tx.lane.pause_reason = "rate_limited"
                    self._apply(tx, turn, job, flight=flight, reply=reply, now=now)
            self._beyond_lane(tx, turn)
        if turn.timer is not None:
            self._timers.wake_at(user_id, marketplace, turn.timer)
        self._tell_and_wake(user_id, turn.messages, turn)

    def _perform(self, user_id: str, marketplace: str, http: _Http) -> Reply:
        if isinstance(http.call, PhotoHashes):
            return Reply(True, {"hashes": self._photos(user_id, http.call.urls, http.timeout_seconds)}, None)
        return self._http(user_id, marketplace, http.call, http.timeout_seconds)

    def _tell_and_wake(self, user_id: str, messages: list[dict[str, Any]], turn: _Turn) -> None:
        """A committed turn's messages for the user, then the other lanes it queued jobs in."""
        for message in messages:
            self._notifier.to_user(user_id, message, connections=self._user_tabs(user_id))
        if self._events is not None:  # the user was told above, in order with the turn's other messages
            self._events.dispatch(turn.events, told=True)
        wake_lanes(turn.lanes_to_wake, self._jobs, self._store.mark_queued)


class _Records:
    """A completing job's view of the records it may change (workflows.base.Records)."""

    def __init__(self, tx: LaneTransaction, turn: _Turn) -> None:
        self._tx = tx
        self._turn = turn

    def listings(self) -> list[ListingRef]:
        return self._tx.listings()

    def update_listings(self, changes: list[ListingChange]) -> None:
        self._tx.update_listings(changes)

    def add_orders(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        return self._tx.add_orders(orders)

    def announce(self, message: JsonDict) -> None:
        self._turn.messages.append(message)

    def reconcile_catalogue(self, duplicates: list[Duplicate]) -> JsonDict:
        return self._tx.reconcile_catalogue(duplicates)

    def import_listings(self, import_id: str, items: list[ImportedItem]) -> JsonDict:
        return self._tx.import_listings(import_id, items)

    def annotate_listings(self, attributes: dict[str, JsonDict]) -> None:
        self._tx.annotate_listings(attributes)

    def create_product(self, fields: NewProduct) -> str:
        return self._tx.create_product(fields)

    def link(self, product_id: str, external_id: str, url: str | None, image_urls: list[str] | None) -> None:
        self._tx.link(product_id, external_id, url, image_urls)


def _no_api(user_id: str, marketplace: str, call: HttpCall, timeout_seconds: float) -> Reply:
    raise NotAvailable(f"{marketplace}'s API is not reachable from this engine")


def _no_photos(user_id: str, urls: tuple[str, ...], timeout_seconds: float) -> dict[str, str | None]:
    return dict.fromkeys(urls)


def _unavailable_reason(tabs: list[Connection]) -> str:
    if any(t.ready and t.challenge for t in tabs):
        return "challenge"
    if any(t.ready and not t.vinted_logged_in for t in tabs):
        return "plugin_logged_out"
    if tabs:
        return "plugin_not_ready"
    return "no_plugin"


def _clear_wait(job: Job) -> None:
    job.wait_reason = None
    job.wait_until = None


def _at(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"
