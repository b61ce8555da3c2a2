"""The job engine's paths, fast: lanes in memory (tests/support/lanes.py), commands and connections in
moto's DynamoDB, a fake clock (backoff, pacing, pauses and expiry without sleeping), queues that record
what they are asked, and the devstack's fake Vinted answering each command at once.

Only the public surface is used: `LaneEngine.wake`, the store's contents, the messages the tabs got,
the wake-ups and timers asked for.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from moto import mock_aws

from crosslist.db.models import JobStatus
from crosslist.jobs.engine import MAX_TURNS_PER_WAKE, SENDER_LIFETIME_SECONDS, EngineConfig, LaneEngine, WakeOutcome
from crosslist.jobs.lanes import Job
from crosslist.jobs.pacing import PacingConfig
from crosslist.jobs.queue import CarriedReply, LaneWake, TimerMessage
from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.vinted.publish import VintedPublish
from crosslist.realtime.commands import PendingCommandStore
from crosslist.realtime.connections import ConnectionStore
from crosslist.realtime.notifier import Notifier
from crosslist.realtime.sessions import PluginResults
from crosslist.workflows.base import (
    Completion,
    Done,
    HttpCall,
    JobContext,
    JsonDict,
    Listed,
    PhotoHashes,
    ProductSnapshot,
    Reply,
    Step,
    StepAction,
    StepFailed,
    Wait,
    Workflow,
)
from crosslist.workflows.registry import find_workflow
from devstack.plugin import VintedReply
from devstack.template import load_template
from tests.conftest import REPO
from tests.support.fakes import FakeGateway, FakeVinted
from tests.support.lanes import InMemoryLaneStore
from tests.support.products import vinted_product

Logger()  # the parent of the engine's child logger, as process_job's module creates it

USER = "alice"
START = datetime(2030, 6, 3, 9, 0, tzinfo=UTC).timestamp()  # a Monday morning: pauses stay within the day
TIMEOUT = 60.0  # the jobs' step timeout (s)
PACING_OFF = PacingConfig(
    enabled=False,
    read=(0, 0),
    write=(0, 0),
    delete=(0, 0),
    min_gap=0,
    pause_every=(10, 15),
    pause=(0, 0),
    writes_per_hour=1000,
)
CONFIG = EngineConfig(pacing=PACING_OFF, backoff_seconds=(30, 120, 480))
PACED = replace(
    CONFIG,
    pacing=replace(PACING_OFF, enabled=True, read=(5, 10), write=(5, 10), delete=(5, 10), pause_every=(50, 50)),
)
SENT, AWAITING, TIMER = WakeOutcome.SENT, WakeOutcome.AWAITING, WakeOutcome.TIMER
PARKED, IDLE, CONTINUED = WakeOutcome.PARKED, WakeOutcome.IDLE, WakeOutcome.CONTINUED


class Crash(BaseException):
    """The invocation dies here (a timeout, out of memory): nothing after it runs."""


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordedWakes:
    """The JobsQueue: records each wake-up asked for, and hands them out in order as SQS would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.pending: list[LaneWake] = []

    def wake(self, user_id: str, marketplace: str, cause: str, reply: CarriedReply | None = None) -> None:
        self.calls.append((user_id, marketplace, cause))
        self.pending.append(LaneWake(user_id=user_id, marketplace=marketplace, cause=cause, reply=reply))

    def wake_many(self, wakes: list[LaneWake]) -> set[str]:
        self.calls.extend((wake.user_id, wake.marketplace, wake.cause) for wake in wakes)
        self.pending.extend(wakes)
        return set()

    def next_for(self, marketplace: str) -> LaneWake:
        """The lane's oldest undelivered wake-up, else a bare one (a sweeper's or a timer's)."""
        for index, wake in enumerate(self.pending):
            if wake.marketplace == marketplace:
                return self.pending.pop(index)
        return LaneWake(user_id=USER, marketplace=marketplace, cause=f"sweep:{uuid.uuid4()}")


class RecordedTimers:
    """The TimersQueue: records each timer asked for; keeps the replies held until a due time."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []
        self.held: list[TimerMessage] = []

    def wake_at(
        self,
        user_id: str,
        marketplace: str,
        due: float,
        *,
        cause: str | None = None,
        reply: CarriedReply | None = None,
    ) -> None:
        self.calls.append((user_id, marketplace, due))
        if reply is not None:
            message = TimerMessage(user_id=user_id, marketplace=marketplace, due_ms=math.ceil(due * 1000), cause=cause)
            self.held.append(message.model_copy(update={"reply": reply}))

    def next_held(self, marketplace: str, now: float) -> TimerMessage | None:
        for index, timer in enumerate(self.held):
            if timer.marketplace == marketplace and timer.due_ms <= now * 1000:
                return self.held.pop(index)
        return None


class Commands(PendingCommandStore):
    """The real correlation records, whose next write can be made to crash the invocation."""

    crash_next_create = False
    reads = 0

    def get(self, request_id: str) -> Any:
        self.reads += 1
        return super().get(request_id)

    def create(self, *args: Any, **kwargs: Any) -> None:
        if self.crash_next_create:
            self.crash_next_create = False
            raise Crash("process_job died before the command's record was written")
        super().create(*args, **kwargs)


class FakeHttp:
    """eBay's REST API: answers each URL with its scripted replies in order; records every call."""

    def __init__(self, replies: dict[str, list[Reply | BaseException]]) -> None:
        self.replies = replies
        self.calls: list[HttpCall] = []

    def __call__(self, user_id: str, marketplace: str, call: HttpCall, timeout_seconds: float) -> Reply:
        self.calls.append(call)
        reply = self.replies[call.path].pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


class ScriptedWorkflow:
    """An eBay workflow for tests: each step's plans are used in order (the last one stays), a StepFailed
    is raised; `checks` are the reads verifying a write whose reply was lost (found: {"offer": ...})."""

    marketplace: Marketplace = "ebay"
    action = "publish"

    def __init__(
        self, plans: dict[str, list[StepAction | StepFailed]], checks: dict[str, HttpCall] | None = None
    ) -> None:
        self.plans = plans
        self.checks = checks or {}

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return {}

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step(name, f"Doing {name}") for name in self.plans]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        planned = self.plans[step.name]
        action = planned.pop(0) if len(planned) > 1 else planned[0]
        if isinstance(action, StepFailed):
            raise action
        return action

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if not reply.success:
            raise StepFailed("ebay_error", reply.error or "eBay refused", retryable=False)
        return {**context.accumulated, step.name: reply.result}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return self.checks.get(step.name)

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        offer = (reply.result or {}).get("offer")
        return {**context.accumulated, step.name: offer} if offer else None

    def complete(self, context: JobContext) -> Completion:
        return Completion(result=context.accumulated)


@dataclass
class World:
    store: InMemoryLaneStore
    commands: Commands
    connections: ConnectionStore
    gateway: FakeGateway
    results: PluginResults
    wakes: RecordedWakes = field(default_factory=RecordedWakes)
    timers: RecordedTimers = field(default_factory=RecordedTimers)
    clock: Clock = field(default_factory=Clock)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    config: EngineConfig = CONFIG
    http: Callable[[str, str, HttpCall, float], Reply] | None = None
    photos: Callable[[str, tuple[str, ...], float], dict[str, str | None]] | None = None
    fakes: dict[tuple[str, str], Workflow] = field(default_factory=dict)

    def engine(self) -> LaneEngine:
        """An invocation of process_job (each with a fresh engine, as in Lambda)."""
        return LaneEngine(
            self.store,
            commands=self.commands,
            connections=self.connections,
            gateway=self.gateway,
            notifier=Notifier(self.connections, self.gateway),
            jobs=self.wakes,
            timers=self.timers,
            config=self.config,
            clock=self.clock,
            rng=self.rng,
            http=self.http,
            photos=self.photos,
            workflows=lambda market, action: self.fakes.get((market, action)) or find_workflow(market, action),
        )

    def wake(self, marketplace: str = "vinted") -> WakeOutcome:
        """One invocation of process_job for the lane's next wake-up."""
        engine = self.engine()
        fifo_waiting = any(wake.marketplace == marketplace for wake in self.wakes.pending)
        held = None if fifo_waiting else self.timers.next_held(marketplace, self.clock.now)
        if held is not None:  # a reply held by pacing, now due (a TimersQueue message)
            return engine.wake(USER, marketplace, held.wake_cause, held.reply, exclusive=False)
        wake = self.wakes.next_for(marketplace)
        try:
            return engine.wake(USER, marketplace, wake.cause, wake.reply)
        except BaseException:
            self.wakes.pending.insert(0, wake)  # SQS delivers a message that failed again
            raise

    def wake_until_idle(self, marketplace: str = "vinted", limit: int = 40) -> list[WakeOutcome]:
        outcomes = [self.wake(marketplace)]
        while outcomes[-1] is not IDLE:
            assert len(outcomes) < limit, outcomes
            outcomes.append(self.wake(marketplace))
        return outcomes

    def open_tab(self, *, ready: bool = True, answers: bool = True, **behaviour: Any) -> tuple[str, FakeVinted]:
        """A web app tab with the extension, executing the commands it gets (unless not `answers`)."""
        connection_id = f"tab-{uuid.uuid4().hex[:8]}="
        self.connections.add(connection_id, USER, now=self.clock.now)

        def send(message: dict[str, Any]) -> None:  # what the web app does with the extension's answer
            self.results.receive(connection_id, json.dumps(message))

        vinted = FakeVinted(send=send, **behaviour)
        if ready:
            self.set_ready(connection_id, vinted)
        if answers:
            self.gateway.listeners[connection_id] = vinted
        return connection_id, vinted

    def set_ready(self, connection_id: str, vinted: FakeVinted) -> None:
        self.connections.set_plugin_status(
            connection_id, USER, ready=True, extension_version="1.0.0", vinted_user_id=vinted.vinted_user_id
        )

    def last_timer(self, marketplace: str = "vinted") -> float:
        user, lane, due = self.timers.calls[-1]
        assert (user, lane) == (USER, marketplace)
        return due

    def sent(self, connection_id: str, message_type: str) -> list[dict[str, Any]]:
        return self.gateway.of_type(connection_id, message_type)

    def ebay(self, workflow: ScriptedWorkflow, replies: dict[str, list[Reply | BaseException]]) -> FakeHttp:
        self.fakes[("ebay", "publish")] = workflow
        http = FakeHttp(replies)
        self.http = http
        return http


TABLES = load_template(REPO / "template.yaml")["Resources"]


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.resource("dynamodb")


def new_table(dynamodb: Any, logical_id: str) -> Any:
    """A fresh table shaped as template.yaml declares it (uniquely named: the mock lives for the module)."""
    properties = TABLES[logical_id]["Properties"]
    return dynamodb.create_table(
        TableName=f"{logical_id}-{uuid.uuid4().hex[:8]}",
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in properties.get("GlobalSecondaryIndexes", [])
        ],
    )


@pytest.fixture
def world(dynamodb: Any) -> World:
    commands = Commands(new_table(dynamodb, "PendingCommandsTable"))
    connections = ConnectionStore(new_table(dynamodb, "ConnectionsTable"))
    gateway = FakeGateway()
    wakes = RecordedWakes()
    timers = RecordedTimers()
    clock = Clock()
    results = PluginResults(
        connections,
        commands,
        Notifier(connections, gateway),
        request_session=lambda user, tab: None,
        wake=wakes.wake,
        wake_later=lambda user, market, due, cause, reply: timers.wake_at(user, market, due, cause=cause, reply=reply),
        clock=clock,
    )
    return World(InMemoryLaneStore(), commands, connections, gateway, results, wakes=wakes, timers=timers, clock=clock)


def publish(world: World, photos: int = 2, title: str = "Levi's 501", **job: Any) -> Job:
    """A Vinted publish job of a product with `photos` photos."""
    product = vinted_product(photos, id=str(uuid.uuid4()), title=title)
    return world.store.add_job(
        input=VintedPublish().prepare(product), product_id=uuid.UUID(product.id), step_timeout_ms=60_000, **job
    )


def steps(vinted: FakeVinted) -> list[str]:
    return [f"{command['method']} {command['step']}" for command in vinted.commands]


def at(message: dict[str, Any], key: str) -> float:
    return datetime.fromisoformat(message[key]).timestamp()


# ---------------------------------------------------------------------- the happy path
def test_a_two_photo_publish_completes_through_successive_wakes_one_command_each(world: World) -> None:
    tab, vinted = world.open_tab()
    job = publish(world)

    outcomes, per_wake = [], []
    for _ in range(4):
        before = len(vinted.commands)
        outcomes.append(world.wake())
        per_wake.append(len(vinted.commands) - before)

    assert outcomes == [SENT, SENT, SENT, IDLE]
    assert per_wake == [1, 1, 1, 0]
    assert steps(vinted) == ["POST upload_photo_1", "POST upload_photo_2", "POST create_item"]
    # Each result woke the lane (ws_message's side), once.
    assert world.wakes.calls == [(USER, "vinted", f"result:{c['request_id']}") for c in vinted.commands]
    progress = world.sent(tab, "job.progress")
    # Each step's progress rides with the next command (one message, not two); the last one is job.completed.
    assert [(m["step"], m["current_step"], m["total_steps"]) for m in progress] == [
        ("upload_photo_1", 1, 3),
        ("upload_photo_2", 2, 3),
    ]
    commands = world.sent(tab, "plugin.command")
    assert [c.get("progress", {}).get("step") for c in commands] == [
        None,
        "upload_photo_1",
        "upload_photo_2",
    ]
    assert [m["type"] for m in world.gateway.messages[tab]] == ["plugin.command"] * 3 + ["job.completed"]
    [item] = vinted.items
    [completed] = world.sent(tab, "job.completed")
    assert completed["result"] == {"item_id": str(item["id"]), "url": item["url"], "photo_ids": item["photo_ids"]}
    stored = world.store.job(job.id)
    assert stored.status is JobStatus.COMPLETED
    assert stored.attempts == 1
    assert world.store.completed == [job.id]
    assert world.store.listings == {
        (USER, job.product_id, "vinted"): Listed(
            str(item["id"]), item["url"], image_urls=job.input["product"]["image_urls"]
        )
    }
    lane = world.store.lane()
    assert (lane.active_job_id, lane.in_flight) == (None, None)


def test_a_wake_while_the_command_awaits_its_reply_does_nothing(world: World) -> None:
    tab, vinted = world.open_tab(silent={"upload_photo_1"})
    job = publish(world)
    assert world.wake() is SENT
    world.clock.advance(10)

    assert world.wake() is AWAITING
    assert steps(vinted) == ["POST upload_photo_1"]
    assert world.timers.calls == [(USER, "vinted", START + TIMEOUT)]  # only the deadline set when it was sent
    assert world.store.job(job.id).status is JobStatus.RUNNING
    assert world.sent(tab, "job.waiting") == []


def test_a_result_carried_by_its_wake_up_is_applied_without_reading_the_record_and_one_timer_serves_the_lane(
    world: World,
) -> None:
    world.open_tab()
    job = publish(world, photos=3)

    world.wake_until_idle()

    assert world.store.job(job.id).status is JobStatus.COMPLETED
    assert world.commands.reads == 0  # every reply came with the wake-up ws_message sent
    # Four commands, each with a 60 s deadline: the first one's timer would wake the lane before any
    # later deadline, so it is the only one set.
    assert world.timers.calls == [(USER, "vinted", START + TIMEOUT)]


# ---------------------------------------------------------------------- crashes, timeouts, retries
def test_a_command_whose_record_was_never_written_is_sent_again_without_using_an_attempt(world: World) -> None:
    tab, vinted = world.open_tab()
    job = publish(world)
    world.commands.crash_next_create = True
    with pytest.raises(Crash):
        world.wake()
    assert world.store.lane().in_flight is not None  # the intent was committed before the crash
    assert vinted.commands == []

    assert world.wake() is SENT
    assert steps(vinted) == ["POST upload_photo_1"]
    assert world.store.job(job.id).attempts == 1
    assert world.wake() is SENT  # its reply applied, the next photo sent
    assert [m["step"] for m in world.sent(tab, "job.progress")] == ["upload_photo_1"]
    assert world.sent(tab, "job.retrying") == []


def test_a_timer_woken_beside_an_invocation_still_sending_a_call_never_sends_it_a_second_time(world: World) -> None:
    _, vinted = world.open_tab()
    publish(world)
    world.commands.crash_next_create = True  # stands for an invocation that committed the call, not sent it yet
    with pytest.raises(Crash):
        world.wake()
    world.wakes.pending.clear()  # that invocation has not ended: its message is not delivered again

    # Timers and results are consumed beside the lane's FIFO group: they may run during that send.
    for cause, exclusive in (("timer:1", False), ("result:another-request", True)):
        assert world.engine().wake(USER, "vinted", cause, exclusive=exclusive) is AWAITING
    assert vinted.commands == []

    world.clock.advance(SENDER_LIFETIME_SECONDS)  # that invocation cannot be running any more
    assert world.engine().wake(USER, "vinted", "timer:2", exclusive=False) is SENT
    assert steps(vinted) == ["POST upload_photo_1"]


def test_a_timed_out_photo_upload_is_retried_after_the_backoff(world: World) -> None:
    tab, vinted = world.open_tab()
    vinted.simulator.faults["upload_photo_1"] = ["no_reply"]
    job = publish(world)
    assert world.wake() is SENT
    world.clock.advance(TIMEOUT + 1)

    assert world.wake() is TIMER
    [retrying] = world.sent(tab, "job.retrying")
    assert retrying["attempt"] == 2
    assert retrying["error"]["code"] == "plugin_timeout"
    due = at(retrying, "next_attempt_at")
    assert world.clock.now + 30 * 0.8 <= due <= world.clock.now + 30 * 1.2
    assert world.last_timer() == pytest.approx(due)
    stored = world.store.job(job.id)
    assert (stored.status, stored.wait_reason, stored.attempts) == (JobStatus.WAITING, "backoff", 2)

    world.clock.now = due - 1
    assert world.wake() is TIMER
    assert steps(vinted) == ["POST upload_photo_1"]

    world.clock.now = due + 0.1
    assert world.wake() is SENT
    assert steps(vinted) == ["POST upload_photo_1", "POST upload_photo_1"]
    assert world.wake() is SENT
    assert [m["step"] for m in world.sent(tab, "job.progress")] == ["upload_photo_1"]


def test_when_the_attempts_are_used_up_the_job_fails_and_the_next_one_starts(world: World) -> None:
    tab, vinted = world.open_tab(fail_always={"upload_photo_1"})
    failing, queued = publish(world), publish(world, title="Next")

    assert world.wake() is SENT
    for _ in range(2):
        assert world.wake() is TIMER  # a 503: retried after its backoff
        world.clock.advance(600)
        assert world.wake() is SENT
    assert world.wake() is SENT  # the third 503 ends the job; the lane goes on with the next

    assert [m["attempt"] for m in world.sent(tab, "job.retrying")] == [2, 3]
    [failed] = world.sent(tab, "job.failed")
    assert failed["job_id"] == str(failing.id)
    assert failed["error"]["code"] == "vinted_unavailable"
    stored = world.store.job(failing.id)
    assert (stored.status, stored.error) == (JobStatus.FAILED, failed["error"])
    assert world.store.lane().active_job_id == queued.id
    assert vinted.commands[-1]["job_id"] == str(queued.id)
    assert world.store.job(queued.id).status is JobStatus.RUNNING


class CrashingOnce(VintedPublish):
    """Vinted's publish whose first reply kills the invocation while it is being applied."""

    crashed = False

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        if not self.crashed:
            self.crashed = True
            raise Crash("killed while applying the reply")
        return super().apply(step, context, reply)


def test_a_wake_that_dies_while_applying_a_reply_changes_nothing_and_the_next_applies_it(world: World) -> None:
    world.fakes[("vinted", "publish")] = CrashingOnce()
    _, vinted = world.open_tab()
    job = publish(world)
    assert world.wake() is SENT
    in_flight = world.store.lane().in_flight

    with pytest.raises(Crash):
        world.wake()
    assert world.store.lane().in_flight == in_flight  # its transaction rolled back
    assert world.store.job(job.id).current_step == 0

    assert world.wake() is SENT
    assert steps(vinted) == ["POST upload_photo_1", "POST upload_photo_2"]
    assert world.store.job(job.id).attempts == 1


@pytest.mark.parametrize(
    "paced",
    [
        pytest.param(False, id="unpaced"),
        pytest.param(True, id="paced"),
    ],
)
def test_a_command_to_a_tab_that_is_gone_goes_to_the_next_ready_tab_at_once(world: World, paced: bool) -> None:
    world.config = PACED if paced else CONFIG
    _, other_vinted = world.open_tab()
    gone, gone_vinted = world.open_tab()  # the most recently ready: the engine picks it first
    world.gateway.gone.add(gone)
    job = publish(world)

    assert world.wake() is SENT
    assert (gone_vinted.commands, steps(other_vinted)) == ([], ["POST upload_photo_1"])
    assert world.store.job(job.id).attempts == 1


def run_to_the_create(world: World) -> None:
    for _ in range(3):
        assert world.wake() is SENT


def test_a_timed_out_create_is_verified_and_found_in_the_wardrobe_not_created_twice(world: World) -> None:
    tab, vinted = world.open_tab()
    vinted.simulator.faults["create_item"] = ["lost_reply"]  # carried out on Vinted, never answered
    job = publish(world)
    run_to_the_create(world)
    world.clock.advance(TIMEOUT + 1)
    assert world.wake() is TIMER
    world.clock.advance(60)

    assert world.wake() is SENT
    verify = vinted.commands[-1]
    assert (verify["method"], verify["path"].split("?")[0]) == ("GET", "/api/v2/wardrobe/31337/items")
    assert world.wake() is IDLE

    assert steps(vinted) == [
        "POST upload_photo_1",
        "POST upload_photo_2",
        "POST create_item",
        "GET create_item",
    ]
    [item] = vinted.items
    assert world.store.job(job.id).status is JobStatus.COMPLETED
    assert world.store.job(job.id).result == {
        "item_id": str(item["id"]),
        "url": item["url"],
        "photo_ids": item["photo_ids"],
    }
    assert len(world.sent(tab, "job.completed")) == 1


def test_a_create_vinted_accepted_whose_answer_does_not_parse_is_looked_for_not_created_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tab, vinted = world.open_tab()
    job = publish(world)
    perform = vinted.simulator.perform

    def changed_create_shape(command: dict[str, Any], **kwargs: Any) -> VintedReply:
        reply = perform(command, **kwargs)
        if (command["step"], command["method"]) == ("create_item", "POST") and reply.result is not None:
            return replace(reply, result={"listing": {"identifier": reply.result["item"]["id"]}})
        return reply

    monkeypatch.setattr(vinted.simulator, "perform", changed_create_shape)
    run_to_the_create(world)

    assert world.wake() is TIMER  # the reply did not parse: a retry after the backoff
    [retrying] = world.sent(tab, "job.retrying")
    assert retrying["error"]["code"] == "vinted_reply_unrecognised"
    world.clock.advance(60)
    assert world.wake() is SENT
    assert steps(vinted)[-2:] == ["POST create_item", "GET create_item"]  # the wardrobe, not a second create
    assert world.wake() is IDLE
    assert len(vinted.items) == 1
    assert world.store.job(job.id).status is JobStatus.COMPLETED


def test_a_timed_out_create_missing_from_the_wardrobe_is_created_again(world: World) -> None:
    _, vinted = world.open_tab()
    vinted.simulator.faults["create_item"] = ["no_reply"]  # never reached Vinted
    job = publish(world)
    run_to_the_create(world)
    world.clock.advance(TIMEOUT + 1)
    assert world.wake() is TIMER
    world.clock.advance(60)
    assert world.wake() is SENT  # the wardrobe read

    assert world.wake() is SENT  # not there: the create goes again, in the same wake
    assert steps(vinted)[-2:] == ["GET create_item", "POST create_item"]
    assert world.wake() is IDLE
    assert len(vinted.items) == 1
    assert world.store.job(job.id).status is JobStatus.COMPLETED


# ---------------------------------------------------------------------- cancel, priorities
def test_a_cancel_during_a_command_ends_the_job_at_the_next_step_boundary(world: World) -> None:
    tab, _ = world.open_tab(answers=False)
    job = publish(world)
    assert world.wake() is SENT
    world.store.job(job.id).cancel_requested = True  # the user cancelled (HTTP), the command still out

    assert world.wake() is AWAITING
    assert world.store.job(job.id).status is JobStatus.RUNNING
    assert world.sent(tab, "job.cancelled") == []

    [command] = world.sent(tab, "plugin.command")
    answer = {"action": "plugin_result", "request_id": command["request_id"], "success": True, "result": {"id": 77}}
    assert world.results.receive(tab, json.dumps(answer)) is None
    assert world.wake() is IDLE

    assert world.store.job(job.id).status is JobStatus.CANCELLED
    assert world.store.job(job.id).accumulated_data == {"photo_ids": [77]}  # the reply was applied first
    assert [m["job_id"] for m in world.sent(tab, "job.cancelled")] == [str(job.id)]
    assert len(world.sent(tab, "plugin.command")) == 1
    assert world.store.lane().active_job_id is None


def first_commands(vinted: FakeVinted) -> list[str]:
    """The jobs in the order they started."""
    return list(dict.fromkeys(command["job_id"] for command in vinted.commands))


def test_pending_jobs_run_by_priority_then_age(world: World) -> None:
    _, vinted = world.open_tab()
    normal, urgent, later = (publish(world, photos=1, priority=p) for p in (5, 1, 9))

    world.wake_until_idle()

    assert first_commands(vinted) == [str(urgent.id), str(normal.id), str(later.id)]
    assert {job.status for job in world.store.jobs()} == {JobStatus.COMPLETED}


def test_a_started_job_keeps_the_lane_when_a_higher_priority_job_arrives(world: World) -> None:
    _, vinted = world.open_tab()
    started = publish(world)
    assert world.wake() is SENT
    urgent = publish(world, photos=1, priority=1)

    assert world.wake() is SENT
    assert vinted.commands[-1]["job_id"] == str(started.id)
    world.wake_until_idle()
    job_ids = [command["job_id"] for command in vinted.commands]
    assert job_ids == [str(started.id)] * 3 + [str(urgent.id)] * 2


def job_steps(vinted: FakeVinted, *jobs: Job) -> list[tuple[int, str]]:
    """Each command as (which of `jobs` it was for, its method and step), in the order sent."""
    index = {str(job.id): n for n, job in enumerate(jobs)}
    return [(index[c["job_id"]], f"{c['method']} {c['step']}") for c in vinted.commands]


def test_a_job_in_backoff_lets_a_higher_priority_job_go_first_then_resumes_at_its_step(world: World) -> None:
    tab, vinted = world.open_tab(fail_once={"upload_photo_2"})
    backing_off = publish(world, photos=2)
    assert world.wake() is SENT
    assert world.wake() is SENT
    assert world.wake() is TIMER  # photo 2 got a 503: retried after the backoff
    [retrying] = world.sent(tab, "job.retrying")
    urgent = publish(world, photos=1, priority=1, title="Urgent")

    assert world.wake() is SENT  # the urgent job, at once: the backed-off one has no call to make
    assert world.wake() is SENT
    assert world.wake() is TIMER  # the urgent job is done; the other's backoff is not over yet
    assert world.store.completed == [urgent.id]
    assert world.clock.now < at(retrying, "next_attempt_at")
    world.clock.now = at(retrying, "next_attempt_at")
    world.wake_until_idle()

    assert job_steps(vinted, backing_off, urgent) == [
        (0, "POST upload_photo_1"),
        (0, "POST upload_photo_2"),
        (1, "POST upload_photo_1"),
        (1, "POST create_item"),
        (0, "POST upload_photo_2"),  # where it stopped: photo 1 is not uploaded again
        (0, "POST create_item"),
    ]
    assert world.store.completed == [urgent.id, backing_off.id]
    resumed = world.store.job(backing_off.id)
    assert (resumed.attempts, resumed.result and resumed.result["photo_ids"]) == (2, [9001, 9003])


def test_jobs_of_equal_or_lower_priority_still_wait_for_a_job_in_backoff(world: World) -> None:
    _, vinted = world.open_tab(fail_once={"upload_photo_1"})
    backing_off = publish(world, photos=1)
    assert world.wake() is SENT
    assert world.wake() is TIMER
    same = publish(world, photos=1, title="Same priority")
    lower = publish(world, photos=1, title="Lower priority", priority=9)

    assert world.wake() is TIMER
    assert len(vinted.commands) == 1
    world.clock.advance(600)
    world.wake_until_idle()

    assert first_commands(vinted) == [str(backing_off.id), str(same.id), str(lower.id)]
    assert world.store.completed == [backing_off.id, same.id, lower.id]


def test_a_write_in_doubt_that_gave_way_is_looked_for_not_sent_again_when_it_resumes(world: World) -> None:
    _, vinted = world.open_tab()
    vinted.simulator.faults["create_item"] = ["lost_reply"]  # created on Vinted, never answered
    backing_off = publish(world, photos=1)
    assert world.wake() is SENT
    assert world.wake() is SENT
    world.clock.advance(TIMEOUT + 1)
    assert world.wake() is TIMER  # timed out: retried after the backoff, the create in doubt
    urgent = publish(world, photos=1, priority=1, title="Urgent")
    assert world.wake() is SENT
    assert world.wake() is SENT
    assert world.wake() is TIMER
    world.clock.advance(600)
    world.wake_until_idle()

    assert job_steps(vinted, backing_off, urgent) == [
        (0, "POST upload_photo_1"),
        (0, "POST create_item"),
        (1, "POST upload_photo_1"),
        (1, "POST create_item"),
        (0, "GET create_item"),  # the wardrobe, where the lost create is found
    ]
    first, _ = vinted.items
    assert world.store.completed == [urgent.id, backing_off.id]
    assert world.store.job(backing_off.id).result == {
        "item_id": str(first["id"]),
        "url": first["url"],
        "photo_ids": first["photo_ids"],
    }


# ---------------------------------------------------------------------- pacing, throttling
def test_with_pacing_a_reply_waits_for_the_next_calls_due_time_and_one_wake_applies_it_and_sends_that_call(
    world: World,
) -> None:
    world.config = PACED
    tab, vinted = world.open_tab()
    job = publish(world)  # two photos and the create
    assert world.wake() is SENT

    [held] = world.timers.held  # the reply came at once, but the next call may only go 5-10 s later
    due = held.due_ms / 1000
    assert START + 5 <= due <= START + 10
    assert world.wakes.calls == []  # so ws_message did not wake the lane now
    assert world.wake() is AWAITING  # a wake-up before then (a sweep) finds the call as it was
    assert world.sent(tab, "job.progress") == []

    world.clock.now = due
    assert world.wake() is SENT  # the held reply applied and the next photo sent, in one wake-up
    assert steps(vinted) == ["POST upload_photo_1", "POST upload_photo_2"]
    assert world.sent(tab, "plugin.command")[1]["progress"]["step"] == "upload_photo_1"
    assert world.sent(tab, "job.waiting") == []  # nothing waited for pacing in the user's eyes

    world.clock.now = world.timers.held[0].due_ms / 1000
    assert world.wake() is SENT
    # The create is the job's last call: its reply is not held, the user is told at once.
    assert world.timers.held == []
    assert world.wake() is IDLE
    assert world.store.job(job.id).status is JobStatus.COMPLETED
    assert [m["type"] for m in world.gateway.messages[tab]] == ["plugin.command"] * 3 + ["job.completed"]


def test_a_failed_reply_is_not_held_by_pacing(world: World) -> None:
    world.config = replace(PACED, backoff_seconds=(1,))
    tab, vinted = world.open_tab()
    vinted.simulator.faults["upload_photo_1"] = ["unavailable"]
    job = publish(world)
    assert world.wake() is SENT

    assert world.timers.held == []
    assert world.wakes.calls == [(USER, "vinted", f"result:{vinted.commands[0]['request_id']}")]
    assert world.wake() is TIMER
    [retrying] = world.sent(tab, "job.retrying")
    assert retrying["job_id"] == str(job.id)


def test_a_call_that_must_wait_for_pacing_waits_without_sending_and_the_user_is_told(world: World) -> None:
    world.config = PACED
    tab, vinted = world.open_tab()
    first = publish(world, photos=1)
    second = publish(world, photos=1)
    assert world.wake() is SENT
    world.clock.now = world.timers.held[0].due_ms / 1000
    assert world.wake() is SENT  # the create: the job's last call, whose reply is applied at once

    assert world.wake() is TIMER  # the first job done; the second one's call is not due yet
    assert world.store.job(first.id).status is JobStatus.COMPLETED
    assert len(vinted.commands) == 2
    [waiting] = world.sent(tab, "job.waiting")
    assert (waiting["job_id"], waiting["reason"]) == (str(second.id), "pacing")
    due = at(waiting, "until")
    assert world.clock.now + 4 <= due <= world.clock.now + 10
    assert world.last_timer() == pytest.approx(due)

    world.clock.now = due - 0.5
    assert world.wake() is TIMER
    assert len(world.sent(tab, "job.waiting")) == 1  # told once
    world.clock.now = due + 0.01
    assert world.wake() is SENT
    assert [c["job_id"] for c in vinted.commands] == [str(first.id)] * 2 + [str(second.id)]


def test_a_throttled_lane_pauses_doubling_each_time_the_same_day_up_to_the_cap(world: World) -> None:
    world.config = replace(CONFIG, throttle_pause_seconds=900, max_pause_seconds=2500)
    tab, vinted = world.open_tab(throttle_once={"upload_photo_1"})
    job = publish(world)

    pauses = []
    for _ in range(3):
        assert world.wake() is SENT  # answered 429
        assert world.wake() is TIMER
        lane, stored = world.store.lane(), world.store.job(job.id)
        assert lane.paused_until is not None
        pause = lane.paused_until.timestamp() - world.clock.now
        pauses.append(round(pause))
        assert (lane.pause_reason, stored.status, stored.wait_reason) == (
            "rate_limited",
            JobStatus.WAITING,
            "rate_limited",
        )
        assert stored.wait_until == lane.paused_until
        assert stored.attempts == 1  # a throttle uses no attempt
        # The lane's one timer wakes it no later than the pause's end (then it arms the next).
        assert any(due / 1000 <= lane.paused_until.timestamp() + 0.001 for due in lane.timers)
        assert at(world.sent(tab, "job.waiting")[-1], "until") == pytest.approx(lane.paused_until.timestamp())

        sent = len(vinted.commands)
        world.clock.advance(pause - 60)
        assert world.wake() is TIMER  # still paused: nothing sent
        assert len(vinted.commands) == sent
        world.clock.advance(61)
        vinted.throttle_once.add("upload_photo_1")

    assert pauses == [900, 1800, 2500]
    assert [m["reason"] for m in world.sent(tab, "job.waiting")] == ["rate_limited"] * 3
    assert world.sent(tab, "job.retrying") == []


def test_a_longer_retry_after_is_honoured(world: World) -> None:
    world.open_tab(throttle_once={"upload_photo_1"}, retry_after=1200)
    publish(world)
    assert world.wake() is SENT
    assert world.wake() is TIMER
    paused_until = world.store.lane().paused_until
    assert paused_until is not None
    assert paused_until.timestamp() == pytest.approx(START + 1200)


# ---------------------------------------------------------------------- the extension not there
def test_without_a_tab_the_lanes_jobs_wait_for_the_plugin_then_fail_when_it_never_comes(world: World) -> None:
    world.config = replace(CONFIG, plugin_wait_seconds=3600)
    first, second = publish(world), publish(world)

    assert world.wake() is PARKED
    for job in (first, second):
        stored = world.store.job(job.id)
        assert (stored.status, stored.wait_reason) == (JobStatus.WAITING_FOR_PLUGIN, "no_plugin")
    assert world.gateway.messages == {}  # no tab: job.waiting reached no one
    assert world.store.lane().wake_at == datetime.fromtimestamp(START + 600, UTC)  # looked at again in 10 min

    world.clock.advance(600)
    assert world.wake() is PARKED
    world.clock.advance(3000)
    assert world.wake() is IDLE
    for job in (first, second):
        stored = world.store.job(job.id)
        assert stored.status is JobStatus.FAILED
        assert stored.error is not None
        assert stored.error["code"] == "plugin_never_connected"


def test_a_tab_whose_extension_becomes_ready_unparks_the_lane(world: World) -> None:
    tab, vinted = world.open_tab(ready=False)
    first, second = publish(world), publish(world)

    assert world.wake() is PARKED
    assert [(m["job_id"], m["reason"]) for m in world.sent(tab, "job.waiting")] == [
        (str(first.id), "plugin_not_ready"),
        (str(second.id), "plugin_not_ready"),
    ]
    assert world.wake() is PARKED
    assert len(world.sent(tab, "job.waiting")) == 2  # told once

    world.set_ready(tab, vinted)
    assert world.wake() is SENT
    assert world.store.job(first.id).status is JobStatus.RUNNING
    assert world.store.job(second.id).status is JobStatus.PENDING
    assert steps(vinted) == ["POST upload_photo_1"]


# ---------------------------------------------------------------------- direct HTTP, Done, Wait
EBAY = "https://api.ebay.test/sell/inventory/v1"
CREATE = HttpCall("POST", f"{EBAY}/offer", "write")
PUBLISH = HttpCall("POST", f"{EBAY}/offer/o-1/publish", "write")
FIND = HttpCall("GET", f"{EBAY}/offer?sku=A1", "read", repeatable=True)


def ok(body: JsonDict) -> Reply:
    return Reply(True, body, None, status=200)


def test_an_http_call_is_performed_and_applied_in_the_same_wake(world: World) -> None:
    tab, _ = world.open_tab(ready=False, answers=False)
    http = world.ebay(
        ScriptedWorkflow({"create_offer": [CREATE], "publish_offer": [PUBLISH]}),
        {CREATE.path: [ok({"offerId": "o-1"})], PUBLISH.path: [ok({"listingId": "l-1"})]},
    )
    job = world.store.add_job(marketplace="ebay")

    assert world.wake("ebay") is IDLE
    assert http.calls == [CREATE, PUBLISH]
    stored = world.store.job(job.id)
    assert stored.status is JobStatus.COMPLETED
    assert stored.result == {"create_offer": {"offerId": "o-1"}, "publish_offer": {"listingId": "l-1"}}
    assert [m["step"] for m in world.sent(tab, "job.progress")] == ["create_offer"]  # then job.completed
    assert [m["type"] for m in world.gateway.messages[tab]] == ["job.progress", "job.completed"]
    assert len(world.sent(tab, "job.completed")) == 1


@pytest.mark.parametrize(
    ("check", "calls"),
    [
        pytest.param({"offer": {"offerId": "o-1"}}, [CREATE, FIND, PUBLISH], id="landed"),
        pytest.param({"offer": None}, [CREATE, FIND, CREATE, PUBLISH], id="not-landed"),
    ],
)
def test_an_http_write_whose_invocation_died_is_verified_before_being_sent_again(
    world: World, check: JsonDict, calls: list[HttpCall]
) -> None:
    http = world.ebay(
        ScriptedWorkflow({"create_offer": [CREATE], "publish_offer": [PUBLISH]}, checks={"create_offer": FIND}),
        {
            CREATE.path: [Crash("killed while eBay answered"), ok({"offerId": "o-1"})],
            FIND.path: [ok(check)],
            PUBLISH.path: [ok({"listingId": "l-1"})],
        },
    )
    job = world.store.add_job(marketplace="ebay")
    with pytest.raises(Crash):
        world.wake("ebay")
    in_flight = world.store.lane(USER, "ebay").in_flight
    assert in_flight is not None
    assert in_flight["http"] is True

    assert world.wake("ebay") is IDLE
    assert http.calls == calls
    stored = world.store.job(job.id)
    assert stored.status is JobStatus.COMPLETED
    assert stored.attempts == 1


def test_a_done_step_advances_without_a_call(world: World) -> None:
    tab, _ = world.open_tab(ready=False, answers=False)
    http = world.ebay(
        ScriptedWorkflow({"create_offer": [CREATE], "summarise": [Done({"summary": "ok"})]}),
        {CREATE.path: [ok({"offerId": "o-1"})]},
    )
    job = world.store.add_job(marketplace="ebay")

    assert world.wake("ebay") is IDLE
    assert http.calls == [CREATE]
    assert world.store.job(job.id).result == {"summary": "ok"}
    assert [m["step"] for m in world.sent(tab, "job.progress")] == ["create_offer"]  # then job.completed


def test_a_job_whose_first_step_is_done_goes_on_to_its_next_step(world: World) -> None:
    http = world.ebay(
        ScriptedWorkflow({"prepare_offer": [Done({"sku": "A1"})], "create_offer": [CREATE]}),
        {CREATE.path: [ok({"offerId": "o-1"})]},
    )
    job = world.store.add_job(marketplace="ebay")

    world.wake("ebay")
    assert http.calls == [CREATE]
    assert world.store.job(job.id).status is JobStatus.COMPLETED


def test_a_wait_step_sets_a_timer_and_the_job_waits(world: World) -> None:
    tab, _ = world.open_tab(ready=False, answers=False)
    status = HttpCall("GET", f"{EBAY}/offer/o-1", "read", repeatable=True)
    http = world.ebay(
        ScriptedWorkflow({"check_offer": [Wait(300, reason="backoff"), status]}),
        {status.path: [ok({"status": "PUBLISHED"})]},
    )
    job = world.store.add_job(marketplace="ebay")

    assert world.wake("ebay") is TIMER
    stored = world.store.job(job.id)
    assert (stored.status, stored.wait_reason) == (JobStatus.WAITING, "backoff")
    assert world.timers.calls == [("alice", "ebay", START + 300)]
    assert [at(m, "until") for m in world.sent(tab, "job.waiting")] == [START + 300]

    world.clock.advance(100)
    assert world.wake("ebay") is TIMER
    assert http.calls == []
    world.clock.advance(201)
    assert world.wake("ebay") is IDLE
    assert http.calls == [status]
    assert world.store.job(job.id).status is JobStatus.COMPLETED


def test_an_early_wake_keeps_the_reason_of_a_wait(world: World) -> None:
    tab, _ = world.open_tab(ready=False, answers=False)
    world.ebay(ScriptedWorkflow({"check_offer": [Wait(300, reason="ebay_processing")]}), {})
    job = world.store.add_job(marketplace="ebay")
    assert world.wake("ebay") is TIMER
    world.clock.advance(100)

    assert world.wake("ebay") is TIMER
    assert world.store.job(job.id).wait_reason == "ebay_processing"
    assert [m["reason"] for m in world.sent(tab, "job.waiting")] == ["ebay_processing"]


def test_a_job_waiting_in_a_wait_step_keeps_the_lane(world: World) -> None:
    status = HttpCall("GET", f"{EBAY}/offer/o-1", "read", repeatable=True)
    world.ebay(
        ScriptedWorkflow({"check_offer": [Wait(300), status]}),
        {status.path: [ok({"status": "PUBLISHED"}), ok({"status": "PUBLISHED"})]},
    )
    started = world.store.add_job(marketplace="ebay")
    assert world.wake("ebay") is TIMER
    urgent = world.store.add_job(marketplace="ebay", priority=1)

    assert world.wake("ebay") is TIMER  # woken by the new job's creation: the started one still waits
    assert world.store.completed == []
    world.clock.advance(301)
    assert world.wake("ebay") is IDLE
    assert world.store.completed == [started.id, urgent.id]


def test_a_step_failing_before_its_first_call_is_retried_after_the_first_backoff(world: World) -> None:
    tab, _ = world.open_tab(ready=False, answers=False)
    unavailable = StepFailed("ebay_token_refresh", "eBay's token endpoint is down")  # retryable
    world.ebay(ScriptedWorkflow({"create_offer": [unavailable]}), {})
    world.store.add_job(marketplace="ebay")

    assert world.wake("ebay") is TIMER
    [retrying] = world.sent(tab, "job.retrying")
    assert retrying["attempt"] == 2
    assert START + 24 <= at(retrying, "next_attempt_at") <= START + 36


def test_a_lane_with_more_failing_jobs_than_turns_hands_over_to_a_new_invocation(world: World) -> None:
    refused = StepFailed("ebay_refused", "eBay does not accept this category", retryable=False)
    world.ebay(ScriptedWorkflow({"create_offer": [refused]}), {})
    jobs = [world.store.add_job(marketplace="ebay") for _ in range(MAX_TURNS_PER_WAKE + 5)]

    assert world.wake("ebay") is CONTINUED
    statuses = [world.store.job(job.id).status for job in jobs]
    assert statuses.count(JobStatus.FAILED) == MAX_TURNS_PER_WAKE
    [(user, marketplace, cause)] = world.wakes.calls
    assert (user, marketplace, cause.startswith("continue:")) == (USER, "ebay", True)

    assert world.wake("ebay") is IDLE
    assert {world.store.job(job.id).status for job in jobs} == {JobStatus.FAILED}
    assert world.store.job(jobs[0].id).error == refused.error


class Photographer:
    """Hashes photos for the engine (crosslist.imports.photos, without the internet); dies when told to."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, ...]] = []
        self.die_next = False

    def __call__(self, user_id: str, urls: tuple[str, ...], timeout_seconds: float) -> dict[str, str | None]:
        self.asked.append(urls)
        if self.die_next:
            self.die_next = False
            raise Crash("process_job died while fetching photos")
        return {url: f"{n:016x}" for n, url in enumerate(urls, 1)}


def photo_job(world: World, *steps: StepAction) -> Job:
    workflow = ScriptedWorkflow({f"step_{n}": [action] for n, action in enumerate(steps)})
    workflow.marketplace = "vinted"
    world.fakes[("vinted", "publish")] = workflow
    return world.store.add_job()


PHOTOS = PhotoHashes(("https://images.test/1.jpg", "https://images.test/2.jpg"))


def test_photo_steps_are_hashed_by_the_engine_neither_sent_to_the_extension_nor_paced(world: World) -> None:
    world.config = PACED  # two Vinted reads in a row would be 5 to 10 s apart
    tab, _ = world.open_tab()
    world.photos = photographer = Photographer()
    more = PhotoHashes(("https://images.test/3.jpg",))
    job = photo_job(world, PHOTOS, more)

    assert world.wake_until_idle() == [IDLE]

    assert photographer.asked == [PHOTOS.urls, more.urls]
    stored = world.store.job(job.id)
    assert stored.status is JobStatus.COMPLETED, stored.error
    assert stored.result is not None
    assert stored.result["step_0"] == {"hashes": {PHOTOS.urls[0]: f"{1:016x}", PHOTOS.urls[1]: f"{2:016x}"}}
    assert world.sent(tab, "command") == []
    assert world.timers.calls == []


def test_a_photo_step_whose_invocation_died_is_simply_done_again(world: World) -> None:
    world.open_tab()
    world.photos = photographer = Photographer()
    photographer.die_next = True
    job = photo_job(world, PHOTOS)
    with pytest.raises(Crash):
        world.wake()
    world.clock.advance(SENDER_LIFETIME_SECONDS + 1)

    world.wake_until_idle()

    assert photographer.asked == [PHOTOS.urls, PHOTOS.urls]
    stored = world.store.job(job.id)
    assert stored.status is JobStatus.COMPLETED
    assert stored.attempts == 1


def test_without_a_photographer_photos_have_no_hash_and_the_job_goes_on(world: World) -> None:
    world.open_tab()
    job = photo_job(world, PHOTOS)

    world.wake_until_idle()

    assert world.store.job(job.id).result == {"step_0": {"hashes": dict.fromkeys(PHOTOS.urls)}}
