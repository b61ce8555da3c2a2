"""The event-driven engine (issue 7): its figures, next to those measured on main before it.

Before issue 7, process_job ran a whole job in one invocation and polled DynamoDB for each plugin result:
billed for the browser's time. Now a lane (user x marketplace) is woken by a FIFO message, does what is
ready and ends. This section measures it through the devstack (real HTTP, real WebSockets, the SQS
triggers, the plugin simulator), on two devstacks one after the other, since the functions read pacing
once per instance:

pacing off (`--concurrency` instances per function)
  2.  billed process_job ms per 3-photo publish, 300 ms Vinted calls (6 users x 2 publishes);
  1.  backend time per step: a plugin result sent by the tab -> the next command received by it, both
      stamped in the tab's own loop; instant plugin. Three tabs take turns, each answering its 9 jobs at
      once (one tab would send more than ws_message's per-connection budget of 50 messages in 10 s and
      have results dropped). The jobs are created before their tab connects (they wait for it), so while
      a lane is timed its FIFO group holds nothing but its results' wake-ups. Each step is split where its
      time goes, at moto (the resolving UpdateItem, the next command's PutItem) and at the pools;
  6.  50 users x 10 one-photo jobs, priorities 1..9 drawn at random, created before the tabs connect:
      lost, duplicated (job.completed twice, or not exactly one fake Vinted item per job), lane order
      (per user, completions in priority-then-creation order), throughput;
pacing on, short ranges (PACING_SHORT; CAPACITY_CONCURRENCY instances per function at least)
  2.  the same billed figure;
  3.  Lambda capacity: 100 users x 5 one-photo publishes at once (a batch each); process_job invocations in
      flight on average = the sum of their durations / the wall time, over at most `capacity_window_s`
      (steady state: every lane at work). On a 2-core machine this run is bound by the devstack (moto and
      the gateways share one Python process): when a wake-up takes over twice as long as in the light
      paced run, the figure says more about the machine than the work and is not judged; the light run's
      busy time per lane, times the users (Little's law), is reported next to it;
  4.  DynamoDB reads per plugin command, and 5. $ per 1 000 publishes (pacing on), from 2.'s counts.

How it counts. Invocations: each function pool's `invoke` is wrapped (`Invocation.duration_ms` is the
instance's own time, billed rounded up to the next ms as Lambda does). DynamoDB and SQS requests: at the
server, since moto runs in this process (ThreadedMotoServer): its request handlers' `call_action` is
wrapped, one record per API request whoever made it. SQS requests the devstack's triggers make and AWS
would not (empty short polls, putting back a message of a busy FIFO group) are told apart and not billed.
WebSocket messages: counted at the tabs, every frame each way (a job's progress carried inside a command
is part of that command's frame). A command's deadline may set a timer (a no-op wake-up when the reply
came first), about one per step timeout while a lane works. The bench compresses time: its pacing ranges
(1-2 s) are about a sixth of the real ones (writes 5-12 s), so the publish action's step timeout is
lowered by the same factor in the devstack's database (STEP_TIMEOUT_S: 10 s for the catalogue's 60 s),
keeping as many deadline timers per publish as in production; a billed run ends once both queues are
empty and nothing runs.

Nothing in the engine is changed or configured beyond the CROSSLIST_* variables the devstack passes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import create_engine, text

from bench.loop import Client, Harness, _cpu_snapshot, devstack, prestart, token
from bench.stats import fmt, number, percentile, section, table
from devstack.instances import Invocation
from devstack.plugin import CARRIED_BY, Fault, ImageFetcher, JsonDict, VintedReply, VintedSimulator, run_plugin
from devstack.stack import DevStack

# ------------------------------------------------------------------------------------------------------------
# Before, targets, prices
# ------------------------------------------------------------------------------------------------------------

BEFORE_SOURCE = "measured on main before issue 7"
BEFORE: dict[str, float] = {
    "step_p50_ms": 84,
    "step_p99_ms": 107,
    "billed_ms_per_publish_instant": 380,
    "billed_ms_per_publish_300ms": 1660,
    "billed_ms_per_publish_paced": 28700,  # person-like pacing
    "in_flight": 100,  # about one per active user
    "usd_per_1000_publishes": 0.30,
}
TARGETS: dict[str, float] = {
    "step_p50_ms": 25,
    "step_p99_ms": 60,
    "billed_ms_per_publish_pacing_off": 400,
    "billed_ms_per_publish_pacing_on": 400,
    "in_flight": 10,
    "in_flight_projected": 10,
    "dynamodb_reads_per_command": 2,
    "usd_per_1000_publishes": 0.03,
}

# List prices, us-east-1, x86 Lambda, as published since November 2024 (DynamoDB on-demand's price cut of
# 1 November 2024; Lambda, SQS and API Gateway WebSocket at their first-tier prices, unchanged since).
PRICES_SOURCE = "AWS list prices, us-east-1, as published since November 2024 (first tiers, no free tier)"
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6  # on-demand, per read request unit
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # on-demand, per write request unit
SQS_FIFO_REQUEST = 0.50 / 1e6
SQS_STANDARD_REQUEST = 0.40 / 1e6
WEBSOCKET_MESSAGE = 1.00 / 1e6  # API Gateway WebSocket, per message (either way, 32 KB increments)
WEBSOCKET_CONNECTION_MINUTE = 0.25 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6  # API Gateway HTTP API (POST /jobs): shown, outside the engine's total

DYNAMODB_READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
SQS_BILLED = (
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
)
ENGINE_FUNCTIONS = ("process_job", "ws_message")  # what a publish costs once created

# ------------------------------------------------------------------------------------------------------------
# The runs
# ------------------------------------------------------------------------------------------------------------

PACING_OFF = {"CROSSLIST_PACING": "off"}
# Short ranges: every Vinted call still waits for a timer, seconds rather than a person's minutes.
PACING_SHORT = {
    "CROSSLIST_PACING": "on",
    "CROSSLIST_PACING_READ": "1-2",
    "CROSSLIST_PACING_WRITE": "1-2",
    "CROSSLIST_PACING_DELETE": "1-2",
    "CROSSLIST_PACING_MIN_GAP": "1",
    "CROSSLIST_PACING_PAUSE_EVERY": "10-15",
    "CROSSLIST_PACING_PAUSE": "2-3",
    "CROSSLIST_PACING_WRITES_PER_HOUR": "1000",
}
CAPACITY_CONCURRENCY = 4  # instances per function on the paced devstack, at least: above what the work needs
STEP_TIMEOUT_S = 10  # the publish action's step timeout (see the module's docstring), from the warm-up on
STEPS_STEP_TIMEOUT_S = 20  # while the steps are timed: a slow moment never times a step out
# The loaded runs (capacity, lanes) keep the action catalogue's own step timeout: as in production.
TITLE_PREFIX = "Levi's 501 jeans #"  # bench.loop.Client.create_product's titles, numbered
QUIET_S = 0.3  # "settled": both queues empty and no invocation for this long


@dataclass(frozen=True)
class EngineOptions:
    concurrency: int = 2  # instances per function on the unpaced devstack
    step_jobs: int = 27  # x 4 commands, on 3 tabs: 105 steps
    step_photos: int = 3
    step_tabs: int = 3
    billed_users: int = 6
    billed_products: int = 2
    billed_photos: int = 3
    billed_latency_ms: int = 300
    capacity_users: int = 100
    capacity_products: int = 5
    capacity_latency_ms: int = 300
    capacity_window_s: float = 45.0  # at most: steady state, every lane at work (the run stops there)
    lane_users: int = 50
    lane_jobs: int = 10
    timeout_s: float = 120.0  # for any one run's jobs


# ------------------------------------------------------------------------------------------------------------
# Observing the devstack from this process
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoked:
    function: str
    called: float  # perf_counter: the caller (SQS trigger, gateway) invoked it
    returned: float
    duration_ms: float  # the instance's own time
    key: str  # process_job: the wake-up's cause; ws_message: "route:request id"
    user: str = ""  # process_job: the lane's user

    @property
    def started(self) -> float:
        return self.returned - self.duration_ms / 1000

    @property
    def billed_ms(self) -> int:
        return math.ceil(self.duration_ms)


@dataclass(frozen=True)
class AwsCall:
    at: float  # perf_counter when moto answered
    service: str  # "dynamodb" or "sqs"
    action: str  # GetItem, SendMessage…
    resource: str  # table or queue name
    server_ms: float
    messages: int = 0  # ReceiveMessage: how many it returned
    request_id: str = ""  # DynamoDB: the item's request_id key (PendingCommands), if any


class MotoCounter:
    """Wraps moto's DynamoDB and SQS request handlers (class attributes, restored on exit): one record per
    API request, whichever process made it. moto serves from a thread of this process."""

    def __init__(self) -> None:
        self.calls: list[AwsCall] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[MotoCounter]:
        from moto.dynamodb.responses import DynamoHandler
        from moto.sqs.responses import SQSResponse

        originals: dict[type, Callable[[Any], Any]] = {
            DynamoHandler: DynamoHandler.call_action,
            SQSResponse: SQSResponse.call_action,
        }
        for wrapped, service in ((DynamoHandler, "dynamodb"), (SQSResponse, "sqs")):
            setattr(wrapped, "call_action", self._wrap(service, originals[wrapped]))  # noqa: B010
        try:
            yield self
        finally:
            for handler, original in originals.items():
                setattr(handler, "call_action", original)  # noqa: B010

    def _wrap(self, service: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        counter = self

        def call_action(handler: Any) -> Any:
            started = time.perf_counter()
            answer = original(handler)
            ended = time.perf_counter()
            with contextlib.suppress(Exception):  # counting must never break moto
                counter._record(service, handler, answer, started, ended)
            return answer

        return call_action

    def _record(self, service: str, handler: Any, answer: Any, started: float, ended: float) -> None:
        action = str(handler._get_action())
        messages = 0
        request_id = ""
        if service == "dynamodb":
            body = getattr(handler, "body", None)
            resource = str(body.get("TableName", "")) if isinstance(body, dict) else ""
            request_id = _item_request_id(body)
        else:
            resource = str(handler._get_queue_name())
            if action == "ReceiveMessage" and isinstance(answer, tuple) and len(answer) == 3:
                payload = answer[2]
                payload = payload.decode() if isinstance(payload, bytes) else str(payload)
                messages = payload.count('"ReceiptHandle"') + payload.count("<ReceiptHandle>")
        call = AwsCall(ended, service, action, resource, (ended - started) * 1000, messages, request_id)
        with self._lock:
            self.calls.append(call)


def _item_request_id(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for name in ("Key", "Item"):
        item = body.get(name)
        value = item.get("request_id") if isinstance(item, dict) else None
        if isinstance(value, dict):
            value = value.get("S")
        if isinstance(value, str):
            return value
    return ""


class Observer:
    """Every invocation of every function, the AWS requests at moto, and the SQS triggers' put-backs."""

    def __init__(self, stack: DevStack, moto: MotoCounter) -> None:
        self.stack = stack
        self.moto = moto
        self.invocations: list[Invoked] = []
        self.put_backs: list[float] = []  # the triggers' ChangeMessageVisibility (a busy FIFO group's message)
        self.active = 0
        self.last_returned = 0.0
        self._lock = threading.Lock()
        self.memory_mb = {pool.spec.name: pool.spec.memory_mb for pool in stack.pools.values()}
        for pool in stack.pools.values():
            setattr(pool, "invoke", self._wrap(pool.spec.name, pool.invoke))  # noqa: B010
        change = stack.sqs.change_message_visibility

        def counted_change(**kwargs: Any) -> Any:
            with self._lock:
                self.put_backs.append(time.perf_counter())
            return change(**kwargs)

        stack.sqs.change_message_visibility = counted_change

    def _wrap(self, name: str, invoke: Callable[[JsonDict], Invocation]) -> Callable[[JsonDict], Invocation]:
        def observed(event: JsonDict) -> Invocation:
            called = time.perf_counter()
            with self._lock:
                self.active += 1
            try:
                invocation = invoke(event)
            finally:
                returned = time.perf_counter()
                with self._lock:
                    self.active -= 1
                    self.last_returned = returned
            with self._lock:
                self.invocations.append(
                    Invoked(name, called, returned, invocation.duration_ms, _key(name, event), _user(event))
                )
            return invocation

        return observed

    def idle_for(self, seconds: float) -> bool:
        with self._lock:
            return self.active == 0 and time.perf_counter() - self.last_returned >= seconds

    def queues_empty(self, timers: bool = True) -> bool:
        provisioned = self.stack.provisioned
        assert provisioned is not None
        for name in ("JobsQueue", "TimersQueue") if timers else ("JobsQueue",):
            attributes = self.stack.sqs.get_queue_attributes(
                QueueUrl=provisioned.queues[name],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            if any(int(value) for value in attributes.values()):
                return False
        return True


def _key(function: str, event: JsonDict) -> str:
    records = event.get("Records")
    if isinstance(records, list):
        if function == "process_job" and len(records) == 1:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                body = json.loads(records[0]["body"])
                if "due_ms" in body:  # a TimersQueue message: a timer, or a reply held by pacing
                    return f"held result:{body['cause']}" if body.get("cause") else f"timer:{body['due_ms']}"
                return str(body.get("cause", "session"))
        return f"records:{len(records)}"
    context = event.get("requestContext")
    route = context.get("routeKey") if isinstance(context, dict) else None
    body = event.get("body")
    request_id = ""
    if isinstance(body, str):
        with contextlib.suppress(ValueError, AttributeError):
            request_id = str(json.loads(body).get("request_id") or "")
    return f"{route}:{request_id}" if route else ""


def _user(event: JsonDict) -> str:
    records = event.get("Records")
    if isinstance(records, list) and len(records) == 1:
        with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
            return str(json.loads(records[0]["body"]).get("user_id") or "")
    return ""


def cause_kind(cause: str) -> str:
    """A process_job wake-up's cause, as a kind: result, timer, created, connect…"""
    return cause.split(":", 1)[0] if ":" in cause else cause


# ------------------------------------------------------------------------------------------------------------
# The tabs
# ------------------------------------------------------------------------------------------------------------


@dataclass
class TimedVinted(VintedSimulator):
    """The fake Vinted, stamping when each command reached the tab (with the command)."""

    arrivals: list[tuple[float, JsonDict]] = field(default_factory=list)

    async def execute(self, command: JsonDict, fetch_image: ImageFetcher, *, fault: Fault | None = None) -> VintedReply:
        self.arrivals.append((time.perf_counter(), command))
        return await super().execute(command, fetch_image, fault=fault)


@dataclass
class Tab:
    user: str
    vinted: TimedVinted
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    opened_at: float = 0.0
    closed_at: float | None = None
    statuses: list[float] = field(default_factory=list)  # plugin_status sent (one per connection)
    results: list[tuple[float, str, str]] = field(default_factory=list)  # (sent, request id, job id)
    events: list[tuple[float, str]] = field(default_factory=list)  # (received, type) of every other message
    completed: list[str] = field(default_factory=list)  # job ids, in the order job.completed arrived
    failed: list[str] = field(default_factory=list)  # final job.failed
    retryable_failures: int = 0
    errors: int = 0  # `error` frames: the backend refused a message
    notes: list[str] = field(default_factory=list)  # the first errors and retryable failures, as said

    def frames_in(self, start: float, end: float) -> int:
        """Messages the tab sent to the backend in [start, end]."""
        return sum(start <= at <= end for at in self.statuses) + sum(start <= at <= end for at, _, _ in self.results)

    def frames_out(self, start: float, end: float) -> int:
        """Messages the backend sent to the tab in [start, end]."""
        return sum(start <= at <= end for at, _ in self.vinted.arrivals) + sum(
            start <= at <= end for at, _ in self.events
        )

    def commands(self, start: float, end: float) -> int:
        return sum(start <= at <= end for at, _ in self.vinted.arrivals)

    def connected_s(self, start: float, end: float) -> float:
        closed = self.closed_at if self.closed_at is not None else end
        return max(0.0, min(closed, end) - max(self.opened_at, start))


class Run:
    """One devstack's tabs, HTTP clients and jobs seen ending; waits for jobs and for quiet."""

    def __init__(self, stack: DevStack, observer: Observer, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.observer = observer
        self.session = session
        self.stop = asyncio.Event()
        self.tabs: dict[str, Tab] = {}
        self.ended: dict[str, float] = {}  # job id -> when its tab got job.completed (or a final job.failed)
        self.completions: Counter[str] = Counter()  # job.completed messages per job
        self.notices: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._database = create_engine(stack.database_url)
        self._catalogue_timeout_ms = self._read_step_timeout_ms()

    def client(self, user: str) -> Client:
        return Client(self.stack, self.session, user)

    async def open_tab(self, user: str, latency_ms: int) -> Tab:
        tab = Tab(user, TimedVinted(latency_ms=latency_ms))
        self.tabs[user] = tab

        def on_event(message: JsonDict) -> None:
            now = time.perf_counter()
            kind = str(message.get("type"))
            if CARRIED_BY not in message:  # a progress inside a command is no frame of its own
                tab.events.append((now, kind))
            job_id = str(message.get("job_id"))
            if kind == "job.completed":
                tab.completed.append(job_id)
                self.completions[job_id] += 1
                self.ended.setdefault(job_id, now)
            elif kind == "job.failed":
                if message.get("retryable"):
                    tab.retryable_failures += 1
                else:
                    tab.failed.append(job_id)
                    self.ended.setdefault(job_id, now)
                if len(tab.notes) < 5:
                    tab.notes.append(f"job.failed: {json.dumps(message.get('error'))[:200]}")
            elif kind == "error":
                tab.errors += 1
                if len(tab.notes) < 5:
                    tab.notes.append(f"error {message.get('code')}: {str(message.get('message'))[:200]}")

        def on_result(command: JsonDict, reply: JsonDict) -> None:
            tab.results.append((time.perf_counter(), str(reply.get("request_id")), str(command.get("job_id"))))

        def on_connected() -> None:
            tab.statuses.append(time.perf_counter())
            tab.connected.set()

        async def serve() -> None:
            try:
                await run_plugin(
                    self.stack.ws_url,
                    token(self.stack, user),
                    tab.vinted,
                    stop=self.stop,
                    on_event=on_event,
                    on_result=on_result,
                    on_connected=on_connected,
                    on_notice=self.notices.append,
                    session=self.session,
                )
            finally:
                tab.closed_at = time.perf_counter()

        tab.opened_at = time.perf_counter()
        task = asyncio.create_task(serve(), name=f"tab-{user}")
        self._tasks.append(task)
        connected = asyncio.create_task(tab.connected.wait())
        await asyncio.wait({task, connected}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if not tab.connected.is_set():
            connected.cancel()
            if task.done():
                task.result()  # raises why the tab could not connect
            raise RuntimeError(f"the tab of {user} did not connect within 30 s")
        return tab

    async def create_products(self, user: str, count: int, photos: int) -> list[str]:
        client = self.client(user)
        return [await client.create_product(number, photos) for number in range(1, count + 1)]

    async def clone_products(self, users: list[str], count: int, photos: int) -> list[list[str]]:
        """`count` products per user, titled "… #1" to "… #count": one made through the API, then copied in
        SQL (setup, not measured: a thousand POST /products would take this machine half a minute)."""
        template = (await self.create_products(f"bench-engine-template-{photos}", 1, photos))[0]
        with self._database.begin() as connection:
            columns = [
                str(name)
                for name in connection.execute(
                    text("SELECT column_name FROM information_schema.columns WHERE table_name = 'products'")
                ).scalars()
            ]
            chosen = {
                "id": "gen_random_uuid()",
                "user_id": "u.user_id",
                "title": "CAST(:prefix AS text) || n.n",
                "created_at": "now()",
                "updated_at": "now()",
            }
            select = ", ".join(chosen.get(column, f't."{column}"') for column in columns)
            names = ", ".join(f'"{column}"' for column in columns)
            rows = connection.execute(
                text(
                    f"INSERT INTO products ({names}) SELECT {select} FROM products AS t,"  # the names: the catalog's
                    " unnest(CAST(:users AS text[])) AS u(user_id), generate_series(1, :count) AS n(n)"
                    " WHERE t.id = CAST(:template AS uuid) RETURNING id::text, user_id, title"
                ),
                {"users": users, "count": count, "template": template, "prefix": TITLE_PREFIX},
            ).all()
        by_user: dict[str, list[tuple[int, str]]] = {user: [] for user in users}
        for product_id, user, title in rows:
            by_user[str(user)].append((int(str(title).rsplit("#", 1)[1]), str(product_id)))
        return [[product_id for _, product_id in sorted(by_user[user])] for user in users]

    async def publish(self, user: str, product_id: str, priority: int | None = None) -> str:
        body: JsonDict = {"marketplace": "vinted", "action": "publish", "product_id": product_id}
        if priority is not None:
            body["priority"] = priority
        status, answer = await self.client(user).call("POST", "/jobs", body)
        if status != 202:
            raise RuntimeError(f"POST /jobs answered {status}: {answer}")
        return str(answer["id"])

    async def publish_batch(self, user: str, product_ids: list[str]) -> list[str]:
        """POST /jobs/batch: one job per product (the web app's "publish these")."""
        body = {"marketplace": "vinted", "action": "publish", "product_ids": product_ids}
        status, answer = await self.client(user).call("POST", "/jobs/batch", body)
        if status != 202 or answer.get("refused"):
            raise RuntimeError(f"POST /jobs/batch answered {status}: {answer}")
        return [str(job["id"]) for job in answer["jobs"]]

    async def wait_ended(self, job_ids: list[str], timeout_s: float) -> int:
        """Wait until the tabs have seen every job end; returns how many had not when waiting gave up."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if all(job_id in self.ended for job_id in job_ids):
                return 0
            await asyncio.sleep(0.02)
        return sum(job_id not in self.ended for job_id in job_ids)

    async def settle(self, not_before: float | None = None, timeout_s: float = 60.0, *, timers: bool = True) -> bool:
        """Wait until `not_before` (perf_counter), then until nothing runs and the queues are empty (without
        `timers`: the JobsQueue alone, timers still delayed may come later)."""
        if not_before is not None:
            while (remaining := not_before - time.perf_counter()) > 0:
                await asyncio.sleep(min(remaining, 0.25))
        loop = asyncio.get_running_loop()
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self.observer.idle_for(QUIET_S) and await loop.run_in_executor(None, self.observer.queues_empty, timers):
                return True
            await asyncio.sleep(0.25)
        return False

    def _read_step_timeout_ms(self) -> int:
        with self._database.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT timeout_ms FROM marketplace_action_types"
                        " WHERE marketplace = 'vinted' AND code = 'publish'"
                    )
                ).scalar_one()
            )

    def set_step_timeout(self, seconds: float | None) -> None:
        """The publish action's step timeout for jobs created from now on (create_job reads it from the
        database); None: the action catalogue's own."""
        ms = self._catalogue_timeout_ms if seconds is None else int(seconds * 1000)
        with self._database.begin() as connection:
            connection.execute(
                text(
                    "UPDATE marketplace_action_types SET timeout_ms = :ms WHERE marketplace = 'vinted'"
                    " AND code = 'publish'"
                ),
                {"ms": ms},
            )

    def jobs(self, job_ids: list[str]) -> dict[str, JsonDict]:
        with self._database.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id::text AS id, user_id, priority, status, attempts, created_at, started_at, completed_at,"
                    " result FROM marketplace_jobs WHERE id::text = ANY(:ids)"
                ),
                {"ids": job_ids},
            ).mappings()
            return {str(row["id"]): dict(row) for row in rows}

    async def close(self) -> None:
        self.stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._database.dispose()


# ------------------------------------------------------------------------------------------------------------
# What a window of time cost
# ------------------------------------------------------------------------------------------------------------


@dataclass
class FunctionUse:
    invocations: int = 0
    ms: float = 0.0
    billed_ms: int = 0
    memory_mb: int = 0

    @property
    def gb_s(self) -> float:
        return self.billed_ms / 1000 * self.memory_mb / 1024


@dataclass
class Usage:
    """Everything counted in [start, end] (perf_counter)."""

    start: float
    end: float
    publishes: int
    commands: int
    functions: dict[str, FunctionUse]
    wake_causes: Counter[str]  # process_job invocations by cause kind and whether they sent a command
    dynamodb: Counter[str]  # by action
    dynamodb_by_table: Counter[str]  # "Table Action"
    sqs: Counter[str]  # billed requests, "queue Action"
    sqs_fifo: int
    sqs_standard: int
    sqs_empty_receives: int  # the devstack triggers' short polls that found nothing: not billed
    sqs_put_backs: int  # the devstack triggers giving back a busy group's message: not billed
    ws_in: int
    ws_out: int
    connection_minutes: float
    http_requests: int  # POST /jobs
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def dynamodb_reads(self) -> int:
        return sum(self.dynamodb[action] for action in DYNAMODB_READS)

    @property
    def dynamodb_writes(self) -> int:
        return sum(self.dynamodb[action] for action in DYNAMODB_WRITES)

    def per_publish(self, value: float) -> float:
        return value / self.publishes if self.publishes else math.nan

    def per_command(self, value: float) -> float:
        return value / self.commands if self.commands else math.nan

    def cost(self) -> dict[str, float]:
        """$ of this window, by line; "engine" sums all but POST /jobs (create_job + the HTTP API request)."""
        lines: dict[str, float] = {}
        for name in ENGINE_FUNCTIONS:
            use = self.functions.get(name, FunctionUse())
            lines[f"lambda {name}"] = use.invocations * LAMBDA_REQUEST + use.gb_s * LAMBDA_GB_SECOND
        lines["dynamodb reads"] = self.dynamodb_reads * DYNAMODB_READ_UNIT
        lines["dynamodb writes"] = self.dynamodb_writes * DYNAMODB_WRITE_UNIT
        lines["sqs fifo"] = self.sqs_fifo * SQS_FIFO_REQUEST
        lines["sqs standard"] = self.sqs_standard * SQS_STANDARD_REQUEST
        lines["websocket messages"] = (self.ws_in + self.ws_out) * WEBSOCKET_MESSAGE
        lines["websocket connection minutes"] = self.connection_minutes * WEBSOCKET_CONNECTION_MINUTE
        lines["engine"] = sum(lines.values())
        create = self.functions.get("create_job", FunctionUse())
        lines["POST /jobs (create_job + HTTP API)"] = (
            create.invocations * LAMBDA_REQUEST + create.gb_s * LAMBDA_GB_SECOND + self.http_requests * HTTP_API_REQUEST
        )
        return lines


def usage(
    run: Run,
    start: float,
    end: float,
    *,
    users: list[str],
    publishes: int,
    active_end: float | None = None,
    cpu_s: dict[str, float] | None = None,
) -> Usage:
    """What [start, end] cost. Connection minutes count the tabs of `users` until `active_end` (the last
    job's end): a tab is open for the user anyway, this is its share while it worked."""
    observer = run.observer
    functions: dict[str, FunctionUse] = {}
    causes: Counter[str] = Counter()
    arrivals = {user: [at for at, _ in run.tabs[user].vinted.arrivals] for user in users}
    for call in list(observer.invocations):
        if not start <= call.returned <= end:
            continue
        use = functions.setdefault(call.function, FunctionUse(memory_mb=observer.memory_mb.get(call.function, 0)))
        use.invocations += 1
        use.ms += call.duration_ms
        use.billed_ms += call.billed_ms
        if call.function == "process_job":
            # Whether it sent a command: one reached the lane's tab while it ran (or just after).
            sent = any(call.called <= at <= call.returned + 0.02 for at in arrivals.get(call.user, []))
            causes[f"{cause_kind(call.key)}, {'sent a command' if sent else 'no command'}"] += 1
    dynamodb: Counter[str] = Counter()
    by_table: Counter[str] = Counter()
    sqs: Counter[str] = Counter()
    fifo = standard = empty = 0
    for aws in list(observer.moto.calls):
        if not start <= aws.at <= end:
            continue
        if aws.service == "dynamodb":
            if aws.action in DYNAMODB_READS or aws.action in DYNAMODB_WRITES:
                dynamodb[aws.action] += 1
                by_table[f"{aws.resource} {aws.action}"] += 1
            continue
        if aws.action not in SQS_BILLED:
            continue
        if aws.action == "ReceiveMessage" and aws.messages == 0:
            empty += 1
            continue
        sqs[f"{_queue_label(aws.resource)} {aws.action}"] += 1
        if aws.resource.endswith(".fifo"):
            fifo += 1
        else:
            standard += 1
    put_backs = sum(start <= at <= end for at in list(observer.put_backs))
    # The put-backs were FIFO ChangeMessageVisibility requests (JobsQueue): not billed.
    fifo -= put_backs
    visibility = f"{_queue_label('x.fifo')} ChangeMessageVisibility"
    sqs[visibility] -= put_backs
    if sqs[visibility] <= 0:
        del sqs[visibility]
    tabs = [run.tabs[user] for user in users]
    until = active_end if active_end is not None else end
    return Usage(
        start=start,
        end=end,
        publishes=publishes,
        commands=sum(tab.commands(start, end) for tab in tabs),
        functions=functions,
        wake_causes=causes,
        dynamodb=dynamodb,
        dynamodb_by_table=by_table,
        sqs=sqs,
        sqs_fifo=fifo,
        sqs_standard=standard,
        sqs_empty_receives=empty,
        sqs_put_backs=put_backs,
        ws_in=sum(tab.frames_in(start, end) for tab in tabs),
        ws_out=sum(tab.frames_out(start, end) for tab in tabs),
        connection_minutes=sum(tab.connected_s(start, until) for tab in tabs) / 60,
        http_requests=publishes,
        cpu_s=cpu_s or {},
    )


def _queue_label(name: str) -> str:
    return "fifo" if name.endswith(".fifo") else "standard"


def _cpu_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


# ------------------------------------------------------------------------------------------------------------
# The measurements
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Billed:
    """Measurement 2 (and the counts 4 and 5 use): 3-photo publishes with 300 ms Vinted calls."""

    pacing: bool
    usage: Usage
    jobs: int
    unfinished: int
    failed: int
    retryable_failures: int
    settled: bool
    wall_s: float  # first POST /jobs -> last job's end

    @property
    def billed_ms_per_publish(self) -> float:
        return self.usage.per_publish(self.usage.functions.get("process_job", FunctionUse()).billed_ms)


async def measure_billed(run: Run, options: EngineOptions, *, pacing: bool) -> Billed:
    label = "paced" if pacing else "unpaced"
    users = [f"bench-engine-{label}-{n:02d}" for n in range(1, options.billed_users + 1)]
    run.set_step_timeout(STEP_TIMEOUT_S)
    for user in users:
        await run.open_tab(user, options.billed_latency_ms)
    products = await asyncio.gather(
        *(run.create_products(user, options.billed_products, options.billed_photos) for user in users)
    )
    await run.settle()  # the tabs' connection wake-ups are done
    cpu_before = _cpu_snapshot(run.stack)
    start = time.perf_counter()

    async def publish_all(user: str, product_ids: list[str]) -> list[str]:
        return [await run.publish(user, product_id) for product_id in product_ids]

    per_user = await asyncio.gather(*(publish_all(user, ids) for user, ids in zip(users, products, strict=True)))
    job_ids = [job_id for ids in per_user for job_id in ids]
    unfinished = await run.wait_ended(job_ids, options.timeout_s)
    last_end = max((run.ended[j] for j in job_ids if j in run.ended), default=time.perf_counter())
    last_command = max(at for user in users for at, _ in run.tabs[user].vinted.arrivals)
    # Every command's deadline timer arrives (a no-op wake-up): the run ends when all is quiet.
    settled = await run.settle(not_before=last_command + STEP_TIMEOUT_S + 2.0)
    end = time.perf_counter() - QUIET_S
    cpu = _cpu_between(cpu_before, _cpu_snapshot(run.stack))
    measured = usage(run, start, end, users=users, publishes=len(job_ids), active_end=last_end, cpu_s=cpu)
    tabs = [run.tabs[user] for user in users]
    return Billed(
        pacing=pacing,
        usage=measured,
        jobs=len(job_ids),
        unfinished=unfinished,
        failed=sum(len(tab.failed) for tab in tabs),
        retryable_failures=sum(tab.retryable_failures for tab in tabs),
        settled=settled,
        wall_s=last_end - start,
    )


SPLIT = {  # a step's consecutive segments (they add up to it), as the report names them
    "gateway": "tab's result -> ws_message invoked (gateway)",
    "resolve": "ws_message invoked -> the record resolved (DynamoDB)",
    "wake": "resolved -> the wake-up that sends on running (SQS FIFO, trigger)",
    "work": "that wake-up running -> next command recorded (DynamoDB)",
    "deliver": "command recorded -> at the tab (post to the connection)",
}


@dataclass
class StepSplit:
    """Where one step's time went, in ms: the segments of SPLIT, then the whole and its kind."""

    gateway: float
    resolve: float
    wake: float
    work: float
    deliver: float
    total: float
    within_job: bool  # the next command was the same job's
    early_wake: bool  # the wake-up that sent on was already running when the result was resolved


@dataclass
class Steps:
    jobs: int
    photos: int
    unfinished: int
    steps_ms: list[float]
    splits: list[StepSplit]
    wake_ups: int  # process_job invocations while the tab worked
    wake_ms: list[float]  # their durations
    wake_calls: Counter[str]  # AWS requests made during those wake-ups (moto's view), all of them
    wake_server_ms: dict[str, float]  # moto's own time for those
    failed: int
    retryable_failures: int = 0
    errors: int = 0  # results the backend refused (e.g. one that came after its command timed out)
    excluded_ms: list[float] = field(default_factory=list)  # steps after a slow tab or a failure (not counted)
    notes: list[str] = field(default_factory=list)


async def measure_steps(run: Run, options: EngineOptions, prefix: str = "bench-engine-steps") -> Steps:
    """Each tab answers at once; tabs take turns, so that none sends more than ws_message's budget of
    messages per connection and window (issue 6): an instant tab would, and its results be dropped."""
    run.set_step_timeout(STEPS_STEP_TIMEOUT_S)
    users = [f"{prefix}-{n}" for n in range(1, options.step_tabs + 1)]
    per_tab = -(-options.step_jobs // options.step_tabs)
    jobs: dict[str, list[str]] = {}
    for user in users:
        product_ids = await run.create_products(user, per_tab, options.step_photos)
        jobs[user] = [await run.publish(user, product_id) for product_id in product_ids]
    await run.settle(timers=False)  # every job was looked at and waits for a tab: the lanes' FIFO groups are empty
    unfinished = 0
    for user in users:  # one tab at a time: nothing else runs while a lane's steps are timed
        await run.open_tab(user, 0)
        unfinished += await run.wait_ended(jobs[user], options.timeout_s)
    await asyncio.sleep(0.3)  # the last invocations return
    first, last = run.tabs[users[0]].opened_at, time.perf_counter()

    invocations = [i for i in run.observer.invocations if first <= i.called <= last]
    ws_called = {i.key.split(":", 1)[1]: i.called for i in invocations if i.function == "ws_message" and ":" in i.key}
    wakes = [i for i in invocations if i.function == "process_job" and i.user in users]
    pending = [c for c in run.observer.moto.calls if first <= c.at <= last and c.request_id]
    resolved = {c.request_id: c.at for c in pending if c.action == "UpdateItem"}
    recorded = {c.request_id: c.at for c in pending if c.action == "PutItem"}

    steps: list[float] = []
    splits: list[StepSplit] = []
    excluded: list[float] = []
    for tab in (run.tabs[user] for user in users):
        arrivals = tab.vinted.arrivals
        asked = {str(command.get("request_id")): at for at, command in arrivals}
        troubles = [at for at, kind in tab.events if kind in ("job.failed", "error")]
        for sent, request_id, job_id in tab.results:
            following = next(((at, command) for at, command in arrivals if at > sent), None)
            if following is None:
                continue
            received, command = following
            # Not the backend's time: the tab took over a second to answer (a stalled image download), or
            # the step failed in between (its retry waits a backoff).
            if sent - asked.get(request_id, sent) > 1.0 or any(sent <= at <= received for at in troubles):
                excluded.append((received - sent) * 1000)
                continue
            steps.append((received - sent) * 1000)
            called = ws_called.get(request_id)
            done = resolved.get(request_id)
            written = recorded.get(str(command.get("request_id")))
            # The wake-up that recorded the next command: it sent on (maybe not the one this result sent).
            wake = next((w for w in wakes if written is not None and w.called <= written <= w.returned), None)
            if called is None or done is None or written is None or wake is None:
                continue
            running = max(wake.called, done)
            splits.append(
                StepSplit(
                    gateway=(called - sent) * 1000,
                    resolve=(done - called) * 1000,
                    wake=(running - done) * 1000,
                    work=(written - running) * 1000,
                    deliver=(received - written) * 1000,
                    total=(received - sent) * 1000,
                    within_job=str(command.get("job_id")) == job_id,
                    early_wake=wake.called < done,
                )
            )
    calls: Counter[str] = Counter()
    server_ms: dict[str, float] = {}
    for call in run.observer.moto.calls:
        if call.action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
            continue  # the SQS triggers' and this bench's own
        if any(w.called <= call.at <= w.returned for w in wakes):
            name = f"{call.service} {call.action}" + (f" {call.resource}" if call.service == "dynamodb" else "")
            calls[name] += 1
            server_ms[name] = server_ms.get(name, 0.0) + call.server_ms
    tabs = [run.tabs[user] for user in users]
    return Steps(
        jobs=sum(len(ids) for ids in jobs.values()),
        photos=options.step_photos,
        unfinished=unfinished,
        steps_ms=steps,
        splits=splits,
        wake_ups=len(wakes),
        wake_ms=[w.duration_ms for w in wakes],
        wake_calls=calls,
        wake_server_ms=server_ms,
        failed=sum(len(tab.failed) for tab in tabs),
        retryable_failures=sum(tab.retryable_failures for tab in tabs),
        errors=sum(tab.errors for tab in tabs),
        excluded_ms=excluded,
        notes=[note for tab in tabs for note in tab.notes],
    )


@dataclass
class Capacity:
    users: int
    products: int
    concurrency: int
    pacing: dict[str, str]
    jobs: int
    unfinished: int
    failed: int
    retryable_failures: int
    wall_s: float
    busy_s: float  # sum of process_job durations within the window
    invocations: int
    peak: int  # most process_job invocations running at once
    wait_p50_ms: float  # waiting for a free process_job instance
    wait_p95_ms: float
    run_p50_ms: float
    run_p95_ms: float
    usage: Usage

    @property
    def in_flight(self) -> float:
        return self.busy_s / self.wall_s if self.wall_s else math.nan


async def measure_capacity(run: Run, options: EngineOptions, concurrency: int) -> Capacity:
    users = [f"bench-engine-capacity-{n:03d}" for n in range(1, options.capacity_users + 1)]
    run.set_step_timeout(None)
    await asyncio.gather(*(run.open_tab(user, options.capacity_latency_ms) for user in users))
    products = await run.clone_products(users, options.capacity_products, 1)
    await run.settle(timers=False)
    cpu_before = _cpu_snapshot(run.stack)
    start = time.perf_counter()
    # Every user publishes their products at once (one batch each).
    per_user = await asyncio.gather(*(run.publish_batch(user, ids) for user, ids in zip(users, products, strict=True)))
    job_ids = [job_id for ids in per_user for job_id in ids]
    unfinished = await run.wait_ended(job_ids, options.capacity_window_s - (time.perf_counter() - start))
    end = (
        max(run.ended[j] for j in job_ids)
        if not unfinished
        else time.perf_counter()  # the window's end: every lane was still at work until then
    )
    cpu = _cpu_between(cpu_before, _cpu_snapshot(run.stack))
    await asyncio.sleep(0.2)
    calls = [i for i in run.observer.invocations if i.function == "process_job" and i.returned >= start]
    busy = sum(max(0.0, min(i.returned, end) - max(i.started, start)) for i in calls)
    points = sorted([(i.started, 1) for i in calls] + [(i.returned, -1) for i in calls])
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    within = [i for i in calls if i.returned <= end]
    waits = [max(0.0, (i.started - i.called) * 1000) for i in within]
    tabs = [run.tabs[user] for user in users]
    return Capacity(
        users=len(users),
        products=options.capacity_products,
        concurrency=concurrency,
        pacing=PACING_SHORT,
        jobs=len(job_ids),
        unfinished=unfinished,
        failed=sum(len(tab.failed) for tab in tabs),
        retryable_failures=sum(tab.retryable_failures for tab in tabs),
        wall_s=end - start,
        busy_s=busy,
        invocations=len(within),
        peak=peak,
        wait_p50_ms=percentile(waits, 0.5),
        wait_p95_ms=percentile(waits, 0.95),
        run_p50_ms=percentile([i.duration_ms for i in within], 0.5),
        run_p95_ms=percentile([i.duration_ms for i in within], 0.95),
        usage=usage(run, start, end, users=users, publishes=len(job_ids), cpu_s=cpu),
    )


@dataclass
class Lanes:
    users: int
    jobs_per_user: int
    jobs: int
    lost: int  # never completed
    duplicated: int  # completed more than once, or not exactly one Vinted item
    extra_items: int  # Vinted items no job explains
    out_of_order_users: int  # users whose jobs did not complete in priority-then-creation order
    failed: int
    wall_s: float  # first tab opening -> last job's end
    examples: list[str]

    @property
    def throughput(self) -> float:
        return self.jobs / self.wall_s if self.wall_s else math.nan


async def measure_lanes(run: Run, options: EngineOptions) -> Lanes:
    users = [f"bench-engine-lanes-{n:02d}" for n in range(1, options.lane_users + 1)]
    rng = random.Random(7)
    run.set_step_timeout(None)
    products = await run.clone_products(users, options.lane_jobs, 1)
    priorities = {user: [rng.randint(1, 9) for _ in range(options.lane_jobs)] for user in users}

    async def publish_all(user: str, product_ids: list[str]) -> list[str]:
        return [
            await run.publish(user, product_id, priority)
            for product_id, priority in zip(product_ids, priorities[user], strict=True)
        ]

    # Created while no tab is open: each lane holds its ten jobs before it runs any.
    per_user = await asyncio.gather(*(publish_all(user, ids) for user, ids in zip(users, products, strict=True)))
    job_ids = [job_id for ids in per_user for job_id in ids]
    await run.settle(timers=False)
    start = time.perf_counter()
    await asyncio.gather(*(run.open_tab(user, 0) for user in users))
    unfinished = await run.wait_ended(job_ids, options.timeout_s)
    end = max((run.ended[j] for j in job_ids if j in run.ended), default=time.perf_counter())
    rows = run.jobs(job_ids)

    lost = duplicated = extra = out_of_order = failed = missing_items = 0
    examples: list[str] = []
    for user, ids, product_ids in zip(users, per_user, products, strict=True):
        tab = run.tabs[user]
        failed += len(tab.failed)
        for job_id in ids:
            row = rows.get(job_id)
            if row is None or row["status"] != "completed" or run.completions[job_id] == 0:
                lost += 1
            elif run.completions[job_id] > 1:
                duplicated += 1
        titles = Counter(str(item.get("title")) for item in tab.vinted.items.values())
        for product in range(1, len(product_ids) + 1):
            made = titles.pop(f"{TITLE_PREFIX}{product}", 0)
            if made > 1:
                duplicated += 1
            elif made == 0:
                missing_items += 1
        extra += sum(titles.values())
        expected = sorted(
            (job_id for job_id in ids if job_id in rows),
            key=lambda job_id: (rows[job_id]["priority"], rows[job_id]["created_at"], job_id),
        )
        if tab.completed != expected[: len(tab.completed)]:  # those that completed, in the lane's order
            out_of_order += 1
            if len(examples) < 3:
                shown = [f"{rows[j]['priority']}" for j in tab.completed if j in rows]
                examples.append(f"{user}: completed in priorities {' '.join(shown)}")
    del unfinished  # counted as lost
    lost = max(lost, missing_items)  # a job completed without its item would be lost too
    return Lanes(
        users=len(users),
        jobs_per_user=options.lane_jobs,
        jobs=len(job_ids),
        lost=lost,
        duplicated=duplicated,
        extra_items=extra,
        out_of_order_users=out_of_order,
        failed=failed,
        wall_s=end - start,
        examples=examples,
    )


# ------------------------------------------------------------------------------------------------------------
# Running it all
# ------------------------------------------------------------------------------------------------------------


@dataclass
class EngineResult:
    options: EngineOptions
    capacity_concurrency: int = 0
    unpaced: Billed | None = None
    paced: Billed | None = None
    steps: Steps | None = None
    capacity: Capacity | None = None
    lanes: Lanes | None = None
    devstack_s: list[float] = field(default_factory=list)  # start + warm-up of each devstack
    phases_s: dict[str, float] = field(default_factory=dict)
    log_records: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run(options: EngineOptions) -> EngineResult:
    result = EngineResult(options, capacity_concurrency=max(options.concurrency, CAPACITY_CONCURRENCY))
    started = time.perf_counter()
    moto = MotoCounter()
    with moto.installed():
        with devstack(options.concurrency, PACING_OFF) as running:
            asyncio.run(_unpaced(running.stack, Observer(running.stack, moto), options, result))
        result.log_records += running.logs.lines
        moto.calls.clear()
        with devstack(result.capacity_concurrency, PACING_SHORT) as running:
            asyncio.run(_paced(running.stack, Observer(running.stack, moto), options, result))
        result.log_records += running.logs.lines
    result.wall_s = time.perf_counter() - started
    return result


@contextlib.asynccontextmanager
async def _session() -> Any:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


async def _warm(stack: DevStack, session: aiohttp.ClientSession, concurrency: int) -> tuple[Harness, float]:
    """Every instance the runs use started (no schedules run), then one publish through them."""
    started = time.perf_counter()
    harness = Harness(stack, session)
    await asyncio.get_running_loop().run_in_executor(None, prestart, stack, concurrency, ("oauth_refresh", "sweeper"))
    await harness.warm_up()
    return harness, time.perf_counter() - started


async def _phase(result: EngineResult, name: str, started: float) -> None:
    result.phases_s[name] = time.perf_counter() - started


async def _unpaced(stack: DevStack, observer: Observer, options: EngineOptions, result: EngineResult) -> None:
    async with _session() as session:
        engine_run = Run(stack, observer, session)
        engine_run.set_step_timeout(STEP_TIMEOUT_S)  # the warm-up's deadline timers too: they come soon
        harness, warm_s = await _warm(stack, session, options.concurrency)
        result.devstack_s.append(warm_s)
        try:
            started = time.perf_counter()
            result.unpaced = await measure_billed(engine_run, options, pacing=False)
            await _phase(result, "billed, pacing off", started)
            started = time.perf_counter()
            result.steps = await measure_steps(engine_run, options)
            await _phase(result, "backend time per step", started)
            started = time.perf_counter()
            result.lanes = await measure_lanes(engine_run, options)
            await _phase(result, "50 users x 10 jobs", started)
        finally:
            result.notices += engine_run.notices
            await engine_run.close()
            await harness.close()


async def _paced(stack: DevStack, observer: Observer, options: EngineOptions, result: EngineResult) -> None:
    async with _session() as session:
        engine_run = Run(stack, observer, session)
        engine_run.set_step_timeout(STEP_TIMEOUT_S)  # the warm-up's deadline timers too: they come soon
        harness, warm_s = await _warm(stack, session, result.capacity_concurrency)
        result.devstack_s.append(warm_s)
        try:
            started = time.perf_counter()
            result.paced = await measure_billed(engine_run, options, pacing=True)
            await _phase(result, "billed, pacing on", started)
            started = time.perf_counter()
            result.capacity = await measure_capacity(engine_run, options, result.capacity_concurrency)
            await _phase(result, "capacity", started)
        finally:
            result.notices += engine_run.notices
            await engine_run.close()
            await harness.close()


# ------------------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------------------


def _usd_per_1000(billed: Billed | None) -> float:
    if billed is None:
        return math.nan
    return billed.usage.per_publish(billed.usage.cost()["engine"]) * 1000


def _reads_per_command(billed: Billed | None) -> float:
    return billed.usage.per_command(billed.usage.dynamodb_reads) if billed is not None else math.nan


def _within(value: float, target: float) -> bool | None:
    return None if math.isnan(value) else value <= target


def _mean_wake_ms(use: Usage) -> float:
    pj = use.functions.get("process_job", FunctionUse())
    return pj.ms / pj.invocations if pj.invocations else math.nan


def projected_in_flight(result: EngineResult) -> float:
    """process_job invocations in flight for the capacity run's users, scaled from the light paced run
    (Little's law: each lane keeps process_job busy this share of the time, wherever it runs)."""
    paced, capacity = result.paced, result.capacity
    if paced is None or capacity is None or not paced.wall_s:
        return math.nan
    busy_s = paced.usage.functions.get("process_job", FunctionUse()).ms / 1000
    return capacity.users * busy_s / (result.options.billed_users * paced.wall_s)


def slowdown(result: EngineResult) -> float:
    """How much longer a wake-up took in the capacity run than in the light paced run (mean): > 2 means
    the devstack (this machine), not the work, set the capacity run's pace."""
    if result.paced is None or result.capacity is None:
        return math.nan
    return _mean_wake_ms(result.capacity.usage) / _mean_wake_ms(result.paced.usage)


def headline(result: EngineResult) -> list[tuple[str, str, float, float, str, bool | None]]:
    """(key, label, now, target, before, met) for each figure with a target."""
    steps = result.steps.steps_ms if result.steps else []
    p50, p99 = percentile(steps, 0.5), percentile(steps, 0.99)
    off = result.unpaced.billed_ms_per_publish if result.unpaced else math.nan
    on = result.paced.billed_ms_per_publish if result.paced else math.nan
    in_flight = result.capacity.in_flight if result.capacity else math.nan
    reads = max(_reads_per_command(result.unpaced), _reads_per_command(result.paced))
    usd = _usd_per_1000(result.paced)
    rows = [
        ("step_p50_ms", "1. backend time per step p50 (ms)", p50, "84"),
        ("step_p99_ms", "1. backend time per step p99 (ms)", p99, "107"),
        ("billed_ms_per_publish_pacing_off", "2. billed process_job ms / publish, pacing off", off, "1,660"),
        ("billed_ms_per_publish_pacing_on", "2. billed process_job ms / publish, pacing on", on, "28,700"),
        ("in_flight", "3. process_job invocations in flight (average)", in_flight, "~100"),
        ("in_flight_projected", "3. the same, from the light paced run x users", projected_in_flight(result), "~100"),
        ("dynamodb_reads_per_command", "4. DynamoDB reads per plugin command", reads, "-"),
        ("usd_per_1000_publishes", "5. $ per 1 000 publishes (pacing on)", usd, "~0.30"),
    ]
    judged = [
        (key, label, value, TARGETS[key], before, _within(value, TARGETS[key])) for key, label, value, before in rows
    ]
    if slowdown(result) > 2:  # the machine set the capacity run's pace: its figure cannot judge the work
        judged = [(k, label, v, t, b, None if k == "in_flight" else met) for k, label, v, t, b, met in judged]
    return judged


def _usage_figures(use: Usage) -> dict[str, Any]:
    cost = use.cost()
    return {
        "window_s": number(use.seconds, 2),
        "publishes": use.publishes,
        "commands": use.commands,
        "functions": {
            name: {
                "invocations": f.invocations,
                "invocations_per_publish": number(use.per_publish(f.invocations), 2),
                "ms": number(f.ms, 1),
                "billed_ms": f.billed_ms,
                "billed_ms_per_publish": number(use.per_publish(f.billed_ms), 1),
                "memory_mb": f.memory_mb,
            }
            for name, f in sorted(use.functions.items())
        },
        "process_job_wake_ups_by_cause": dict(sorted(use.wake_causes.items())),
        "dynamodb": {
            "reads": use.dynamodb_reads,
            "writes": use.dynamodb_writes,
            "reads_per_command": number(use.per_command(use.dynamodb_reads), 2),
            "writes_per_command": number(use.per_command(use.dynamodb_writes), 2),
            "by_table_and_action": dict(sorted(use.dynamodb_by_table.items())),
        },
        "sqs": {
            "billed_requests": use.sqs_fifo + use.sqs_standard,
            "fifo": use.sqs_fifo,
            "standard": use.sqs_standard,
            "per_command": number(use.per_command(use.sqs_fifo + use.sqs_standard), 2),
            "by_queue_and_action": dict(sorted(use.sqs.items())),
            "not_billed": {"empty_short_polls": use.sqs_empty_receives, "busy_group_put_backs": use.sqs_put_backs},
        },
        "websocket": {
            "messages_in": use.ws_in,
            "messages_out": use.ws_out,
            "messages_per_publish": number(use.per_publish(use.ws_in + use.ws_out), 2),
            "connection_minutes": number(use.connection_minutes, 3),
        },
        "usd_per_1000_publishes": {line: number(use.per_publish(value) * 1000, 5) for line, value in cost.items()},
        "cpu_s": {name: number(spent, 2) for name, spent in sorted(use.cpu_s.items()) if spent > 0},
    }


def _billed_figures(billed: Billed | None) -> dict[str, Any] | None:
    if billed is None:
        return None
    return {
        "jobs": billed.jobs,
        "unfinished": billed.unfinished,
        "failed": billed.failed,
        "retryable_failures": billed.retryable_failures,
        "settled": billed.settled,
        "wall_s": number(billed.wall_s, 2),
        "billed_process_job_ms_per_publish": number(billed.billed_ms_per_publish, 1),
        "usage": _usage_figures(billed.usage),
    }


def _split_figures(splits: list[StepSplit]) -> dict[str, Any]:
    return {
        name: {
            "p50_ms": number(percentile([getattr(s, name) for s in splits], 0.5)),
            "p99_ms": number(percentile([getattr(s, name) for s in splits], 0.99)),
            "mean_ms": number(sum(getattr(s, name) for s in splits) / len(splits)) if splits else None,
        }
        for name in (*SPLIT, "total")
    }


def figures(result: EngineResult) -> dict[str, Any]:
    o = result.options
    steps, capacity, lanes = result.steps, result.capacity, result.lanes
    rows = headline(result)
    lane_checks = {
        "no_lost": lanes is not None and lanes.lost == 0,
        "no_duplicated": lanes is not None and lanes.duplicated == 0 and lanes.extra_items == 0,
        "lane_order_respected": lanes is not None and lanes.out_of_order_users == 0,
    }
    return {
        "before": {"source": BEFORE_SOURCE, **BEFORE},
        "targets": TARGETS,
        "figures": {key: number(value, 4 if key == "usd_per_1000_publishes" else 1) for key, _, value, _, _, _ in rows},
        "met": {key: met for key, _, _, _, _, met in rows} | lane_checks,
        "prices": {
            "source": PRICES_SOURCE,
            "lambda_gb_second": LAMBDA_GB_SECOND,
            "lambda_per_million_requests": LAMBDA_REQUEST * 1e6,
            "dynamodb_per_million_read_units": DYNAMODB_READ_UNIT * 1e6,
            "dynamodb_per_million_write_units": DYNAMODB_WRITE_UNIT * 1e6,
            "sqs_fifo_per_million": SQS_FIFO_REQUEST * 1e6,
            "sqs_standard_per_million": SQS_STANDARD_REQUEST * 1e6,
            "websocket_per_million_messages": WEBSOCKET_MESSAGE * 1e6,
            "websocket_per_million_connection_minutes": WEBSOCKET_CONNECTION_MINUTE * 1e6,
            "http_api_per_million_requests": HTTP_API_REQUEST * 1e6,
            "units": "1 read unit per read request, 1 write unit per write request (items under 1 KB)",
        },
        "options": {
            "concurrency": o.concurrency,
            "capacity_concurrency": result.capacity_concurrency,
            "pacing_short": PACING_SHORT,
            "step_timeout_s": {
                "billed": STEP_TIMEOUT_S,
                "steps": STEPS_STEP_TIMEOUT_S,
                "capacity_and_lanes": "the action catalogue's",
            },
            "billed": {
                "users": o.billed_users,
                "products": o.billed_products,
                "photos": o.billed_photos,
                "latency_ms": o.billed_latency_ms,
            },
            "steps": {"jobs": o.step_jobs, "photos": o.step_photos, "tabs": o.step_tabs, "latency_ms": 0},
            "capacity": {
                "users": o.capacity_users,
                "products": o.capacity_products,
                "photos": 1,
                "latency_ms": o.capacity_latency_ms,
            },
            "lanes": {"users": o.lane_users, "jobs": o.lane_jobs, "photos": 1, "latency_ms": 0},
        },
        "steps": None
        if steps is None
        else {
            "n": len(steps.steps_ms),
            "p50_ms": number(percentile(steps.steps_ms, 0.5)),
            "p90_ms": number(percentile(steps.steps_ms, 0.9)),
            "p99_ms": number(percentile(steps.steps_ms, 0.99)),
            "max_ms": number(max(steps.steps_ms) if steps.steps_ms else None),
            "within_job_p50_ms": number(percentile([s.total for s in steps.splits if s.within_job], 0.5)),
            "next_job_p50_ms": number(percentile([s.total for s in steps.splits if not s.within_job], 0.5)),
            "unfinished": steps.unfinished,
            "failed": steps.failed,
            "retryable_failures": steps.retryable_failures,
            "results_refused": steps.errors,
            "not_counted_ms": [number(ms) for ms in steps.excluded_ms],
            "notes": steps.notes,
            "split": _split_figures(steps.splits),
            "early_wake_share": number(sum(sp.early_wake for sp in steps.splits) / len(steps.splits), 2)
            if steps.splits
            else None,
            "wake_ups": steps.wake_ups,
            "wake_up_p50_ms": number(percentile(steps.wake_ms, 0.5)),
            "wake_up_p99_ms": number(percentile(steps.wake_ms, 0.99)),
            "aws_requests_per_wake_up": {
                name: {
                    "count": number(count / steps.wake_ups, 2),
                    "moto_ms_each": number(steps.wake_server_ms[name] / count, 2),
                }
                for name, count in sorted(steps.wake_calls.items())
            }
            if steps.wake_ups
            else {},
        },
        "billed_pacing_off": _billed_figures(result.unpaced),
        "billed_pacing_on": _billed_figures(result.paced),
        "capacity": None
        if capacity is None
        else {
            "in_flight": number(capacity.in_flight, 2),
            "in_flight_projected": number(projected_in_flight(result), 2),
            "wake_up_slowdown_vs_light_run": number(slowdown(result), 1),
            "saturated": slowdown(result) > 2,
            "peak_in_flight": capacity.peak,
            "concurrency": capacity.concurrency,
            "jobs": capacity.jobs,
            "unfinished": capacity.unfinished,
            "failed": capacity.failed,
            "retryable_failures": capacity.retryable_failures,
            "wall_s": number(capacity.wall_s, 2),
            "busy_s": number(capacity.busy_s, 2),
            "invocations": capacity.invocations,
            "run_p50_ms": number(capacity.run_p50_ms),
            "run_p95_ms": number(capacity.run_p95_ms),
            "wait_p50_ms": number(capacity.wait_p50_ms),
            "wait_p95_ms": number(capacity.wait_p95_ms),
            "usage": _usage_figures(capacity.usage),
        },
        "lanes": None
        if lanes is None
        else {
            "jobs": lanes.jobs,
            "lost": lanes.lost,
            "duplicated": lanes.duplicated,
            "extra_items": lanes.extra_items,
            "out_of_order_users": lanes.out_of_order_users,
            "failed": lanes.failed,
            "wall_s": number(lanes.wall_s, 2),
            "throughput_jobs_per_s": number(lanes.throughput, 2),
            "examples": lanes.examples,
        },
        "phases_s": {name: number(seconds, 1) for name, seconds in result.phases_s.items()},
        "devstack_start_and_warm_up_s": [number(s, 1) for s in result.devstack_s],
        "wall_s": number(result.wall_s, 1),
        "load_average": list(os.getloadavg()),
        "devstack_warnings": len(result.log_records),
    }


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------


def _mark(met: bool | None, key: str = "") -> str:
    if met is None:
        return "saturated" if key == "in_flight" else "-"
    return "OK" if met else "MISSED"


def report(result: EngineResult) -> str:
    o = result.options
    lines = [section("event-driven engine (issue 7): now, next to before"), ""]
    rows = []
    for key, label, value, target, before, met in headline(result):
        digits = 3 if key == "usd_per_1000_publishes" else (2 if key.endswith("per_command") else 0)
        if key.startswith("in_flight"):
            digits = 1
        rows.append([label, before, fmt(value, digits), f"<= {fmt(target, 3 if digits == 3 else 0)}", _mark(met, key)])
    lanes = result.lanes
    if lanes is not None:
        rows.append(
            [
                f"6. {lanes.users} users x {lanes.jobs_per_user} jobs: lost / duplicated / lanes out of order",
                "-",
                f"{lanes.lost} / {lanes.duplicated + lanes.extra_items} / {lanes.out_of_order_users}",
                "0 / 0 / 0",
                _mark(
                    not lanes.lost and not lanes.duplicated and not lanes.extra_items and not lanes.out_of_order_users
                ),
            ]
        )
        rows.append([f"6. throughput, pacing off ({lanes.jobs} jobs)", "-", f"{lanes.throughput:.1f} jobs/s", "", ""])
    lines.append(table(["figure", "before", "now", "target", ""], rows))
    lines.append(f"  before: {BEFORE_SOURCE} (billed ms per publish before: 380 with an instant plugin, 1 660 at")
    lines.append("  300 ms per call, 28 700 with person-like pacing); prices: " + PRICES_SOURCE)
    lines.append(
        f"  runs: pacing off on {o.concurrency} instance(s) per function; pacing on ("
        + ", ".join(
            f"{k.removeprefix('CROSSLIST_PACING_').lower() or 'on'}={v}"
            for k, v in PACING_SHORT.items()
            if k != "CROSSLIST_PACING"
        )
        + f") on {result.capacity_concurrency}"
    )
    lines += ["", *_detail(result)]
    if result.log_records:
        lines.append(f"  devstack warnings/errors: {len(result.log_records)}")
        lines += [f"    {line}" for line in result.log_records[:5]]
    if result.notices:
        lines.append(f"  tab notices: {len(result.notices)} (first: {result.notices[0]})")
    lines.append(
        "  section took "
        + f"{result.wall_s:.0f} s: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.phases_s.items())
        + ", devstack starts + warm-ups "
        + " + ".join(f"{s:.0f} s" for s in result.devstack_s)
    )
    return "\n".join(lines)


def _detail(result: EngineResult) -> list[str]:
    o = result.options
    lines: list[str] = []
    steps = result.steps
    if steps is not None:
        split = _split_figures(steps.splits)
        lines.append(
            f"  1. {len(steps.steps_ms)} steps ({steps.jobs} publishes of {steps.photos} photos, "
            f"{o.step_tabs} lanes one after another, instant plugin):"
            f" p50 {percentile(steps.steps_ms, 0.5):.0f} ms, p90 {percentile(steps.steps_ms, 0.9):.0f}, "
            f"p99 {percentile(steps.steps_ms, 0.99):.0f}, max {max(steps.steps_ms, default=math.nan):.0f}; "
            f"unfinished {steps.unfinished}, failed {steps.failed}, retried {steps.retryable_failures}, "
            f"results refused {steps.errors}"
            + (
                f"; {len(steps.excluded_ms)} step(s) not counted (after a tab slow to answer or a failed step: "
                + ", ".join(f"{ms:.0f}" for ms in steps.excluded_ms[:3])
                + f" ms; {'; '.join(steps.notes[:2])})"
                if steps.excluded_ms
                else ""
            )
        )
        lines.append(
            table(
                ["where a step's time goes, in order (ms)", "p50", "p99", "mean"],
                [
                    [label, fmt(split[name]["p50_ms"]), fmt(split[name]["p99_ms"]), fmt(split[name]["mean_ms"])]
                    for name, label in [*SPLIT.items(), ("total", "the step")]
                ],
            )
        )
        if steps.splits:
            early = sum(sp.early_wake for sp in steps.splits) / len(steps.splits)
            lines.append(
                f"  {early:.0%} of the next commands were sent by a wake-up already running when the result was"
                " resolved (the previous result's, say)"
            )
        if steps.wake_ups:
            per_wake = ", ".join(
                f"{name} {count / steps.wake_ups:.1f}" for name, count in steps.wake_calls.most_common()
            )
            lines.append(
                f"  {steps.wake_ups} wake-ups, p50 {percentile(steps.wake_ms, 0.5):.0f} ms; AWS requests per wake-up "
                f"(moto's own time is {sum(steps.wake_server_ms.values()) / steps.wake_ups:.1f} ms of it): {per_wake}"
            )
    for billed in (result.unpaced, result.paced):
        if billed is None:
            continue
        use = billed.usage
        pj = use.functions.get("process_job", FunctionUse())
        lines.append(
            f"  2. pacing {'on ' if billed.pacing else 'off'}: {billed.jobs} publishes, {use.commands} commands, "
            f"{pj.invocations} process_job wake-ups ({use.per_publish(pj.invocations):.1f}/publish: "
            + ", ".join(f"{k} {v}" for k, v in use.wake_causes.most_common())
            + f") billed {pj.billed_ms} ms; unfinished {billed.unfinished}, failed {billed.failed}, retried "
            f"{billed.retryable_failures}{'' if billed.settled else ', NOT settled'}"
        )
    for billed in (result.unpaced, result.paced):
        if billed is None:
            continue
        use = billed.usage
        lines.append(
            f"  4. pacing {'on ' if billed.pacing else 'off'} per command: DynamoDB reads "
            f"{use.per_command(use.dynamodb_reads):.2f}, writes {use.per_command(use.dynamodb_writes):.2f}; "
            f"SQS requests {use.per_command(use.sqs_fifo + use.sqs_standard):.2f}; WebSocket messages "
            f"{use.per_command(use.ws_in + use.ws_out):.2f}"
        )
    if result.paced is not None:
        use = result.paced.usage
        cost = use.cost()
        lines.append(
            table(
                ["5. $ per 1 000 publishes, pacing on", "$"],
                [[line, f"{use.per_publish(value) * 1000:.4f}"] for line, value in cost.items()],
            )
        )
    capacity = result.capacity
    if capacity is not None:
        lines.append(
            f"  3. {capacity.users} users x {capacity.products} one-photo publishes, pacing on, "
            f"{capacity.concurrency} process_job instances: {capacity.invocations} wake-ups, busy "
            f"{capacity.busy_s:.1f} s over {capacity.wall_s:.1f} s = {capacity.in_flight:.2f} in flight "
            f"(peak {capacity.peak}); run p50 {capacity.run_p50_ms:.0f} ms p95 {capacity.run_p95_ms:.0f}; waiting "
            f"for an instance p50 {capacity.wait_p50_ms:.0f} ms p95 {capacity.wait_p95_ms:.0f}; "
            f"{capacity.jobs - capacity.unfinished} of {capacity.jobs} jobs ended"
            + (
                f" (the run stops after {o.capacity_window_s:.0f} s: the others were still at work)"
                if capacity.unfinished
                else ""
            )
            + f", failed {capacity.failed}"
        )
        lines.append(
            f"     a wake-up took {slowdown(result):.1f}x as long as in the light paced run"
            + (
                ": the machine, not the work, set this run's pace (the figure is bounded by the instances);"
                if slowdown(result) > 2
                else ";"
            )
            + f" scaled from the light run ({o.billed_users} lanes) to {capacity.users} lanes: "
            f"{projected_in_flight(result):.1f} in flight"
        )
        cpu = capacity.usage.cpu_s
        if cpu and capacity.wall_s:
            lines.append(
                f"     CPU over the run: {sum(cpu.values()) / capacity.wall_s:.0%} of one core "
                f"({len(os.sched_getaffinity(0))} cores), "
                + ", ".join(
                    f"{name} {spent / capacity.wall_s:.0%}"
                    for name, spent in sorted(cpu.items(), key=lambda x: -x[1])[:4]
                )
            )
    lanes = result.lanes
    if lanes is not None:
        lines.append(
            f"  6. {lanes.jobs} jobs in {lanes.wall_s:.1f} s from the first tab opening; failed {lanes.failed}"
            + ("; " + "; ".join(lanes.examples) if lanes.examples else "")
        )
    return lines
