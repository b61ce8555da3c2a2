"""The core loop through the devstack, then the memory of its worker processes.

U users each open one plugin tab (the plugin simulator over a real WebSocket) and create P products
of K photos; then every user publishes every product at once, and the run waits until each job has
reported its end (`job.completed`, or a final `job.failed`) to its user's tab. The timestamps of each
job come from GET /jobs/{id} afterwards: nothing polls the API while the jobs run.

Before the burst, every instance it may use is started and one small publish warms them (`--no-warmup`
skips both). During the burst the devstack is observed from inside this process, its code unchanged:
each pool's `invoke` and the SQS triggers' ReceiveMessage are timed through wrappers set on the
objects, and CPU time is read from /proc for this process, every worker and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from bench.stats import fmt, number, percentile, section, table
from devstack.instances import Invocation
from devstack.plugin import JsonDict, VintedSimulator, run_plugin
from devstack.postgres import free_port
from devstack.stack import DevStack, StackConfig

REPO = Path(__file__).resolve().parent.parent
WARMUP_USER = "bench-warmup"


@dataclass(frozen=True)
class LoopOptions:
    users: int = 4
    products: int = 3
    photos: int = 3
    latency_ms: int = 0
    concurrency: int = 2  # instances per function, as the devstack's default
    warmup: bool = True
    timeout_s: float = 90.0


# ------------------------------------------------------------------------------------------------------------
# What the run observed
# ------------------------------------------------------------------------------------------------------------


@dataclass
class JobRecord:
    id: str
    user: str
    post_ms: float  # POST /jobs as the web app sees it
    status: str = "?"
    attempts: int = 0
    total_steps: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None
    finished_at: float | None = None  # monotonic, when the tab got the job's final message

    @property
    def queued_ms(self) -> float | None:
        return _ms(self.created_at, self.started_at)

    @property
    def run_ms(self) -> float | None:
        return _ms(self.started_at, self.completed_at)

    @property
    def duration_ms(self) -> float | None:
        return _ms(self.created_at, self.completed_at)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000


@dataclass
class UserTab:
    user: str
    vinted: VintedSimulator
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    products: list[str] = field(default_factory=list)
    replies: list[tuple[str, str, float]] = field(default_factory=list)  # (job id, step, monotonic) per command
    retryable_failures: int = 0
    rejected: int = 0  # `error` messages: the backend refused one of our plugin results


@dataclass
class Calls:
    """Invocations of one function while the burst ran, as its callers (gateway, SQS trigger) saw them."""

    function: str
    run_ms: list[float] = field(default_factory=list)  # the handler's own time
    wait_ms: list[float] = field(default_factory=list)  # waiting for a free instance (or starting one)
    batch_sizes: list[int] = field(default_factory=list)  # SQS records per invocation
    errors: int = 0


class Recorder:
    """Wraps each pool's `invoke` (an instance attribute: the devstack's code is unchanged) to time calls."""

    def __init__(self) -> None:
        self.recording = False
        self.calls: dict[str, Calls] = {}
        self.polls: list[tuple[float, int]] = []  # the SQS trigger's ReceiveMessage calls: (seconds, messages)
        self.per_connection: Counter[str] = Counter()  # WebSocket invocations by connection id
        self._lock = threading.Lock()

    def install(self, stack: DevStack) -> None:
        for pool in stack.pools.values():
            self.calls[pool.spec.name] = Calls(pool.spec.name)
            setattr(pool, "invoke", self._wrap(pool.spec.name, pool.invoke))  # noqa: B010
        receive = stack.sqs.receive_message  # the client the SQS triggers poll with

        def timed_receive(**kwargs: Any) -> Any:
            started = time.perf_counter()
            answer = receive(**kwargs)
            if self.recording:
                with self._lock:
                    self.polls.append((time.perf_counter() - started, len(answer.get("Messages", []))))
            return answer

        stack.sqs.receive_message = timed_receive

    def _wrap(self, name: str, invoke: Callable[[JsonDict], Invocation]) -> Callable[[JsonDict], Invocation]:
        def timed(event: JsonDict) -> Invocation:
            started = time.perf_counter()
            try:
                invocation = invoke(event)
            except Exception:
                if self.recording:
                    with self._lock:
                        self.calls[name].errors += 1
                raise
            if self.recording:
                total_ms = (time.perf_counter() - started) * 1000
                records = event.get("Records")
                context = event.get("requestContext")
                connection = context.get("connectionId") if isinstance(context, dict) else None
                with self._lock:
                    if isinstance(connection, str):
                        self.per_connection[connection] += 1
                    calls = self.calls[name]
                    calls.run_ms.append(invocation.duration_ms)
                    calls.wait_ms.append(max(0.0, total_ms - invocation.duration_ms))
                    if isinstance(records, list):
                        calls.batch_sizes.append(len(records))
            return invocation

        return timed


def _cpu_s(pid: int, include_children: bool = False) -> float:
    """User + system CPU seconds of a process (/proc/<pid>/stat), optionally with its reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if include_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _postmaster(stack: DevStack) -> int | None:
    cluster = stack.cluster
    if cluster is None:
        return None
    try:
        return int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_snapshot(stack: DevStack) -> dict[str, float]:
    """CPU seconds so far: this process (gateways, moto, SQS pollers, the simulated tabs), each
    function's workers, and PostgreSQL (the postmaster, its live children, and the children it reaped)."""
    snapshot = {"host process: gateways, moto, SQS pollers, the tabs": _cpu_s(os.getpid())}
    for pool in stack.pools.values():
        snapshot[f"workers: {pool.spec.name}"] = sum(_cpu_s(pid) for pid in pool.process_ids)
    postmaster = _postmaster(stack)
    if postmaster is not None:
        snapshot["postgresql"] = _cpu_s(postmaster, include_children=True) + sum(
            _cpu_s(child) for child in _children(postmaster)
        )
    return snapshot


@dataclass
class MemoryRow:
    function: str
    pids: list[int]
    rss_mb: list[float]


@dataclass
class LoopResult:
    options: LoopOptions
    start_s: float = 0.0
    prestart_s: float | None = None
    warmup_s: float | None = None
    wall_s: float = 0.0
    jobs: list[JobRecord] = field(default_factory=list)
    tabs: list[UserTab] = field(default_factory=list)
    unfinished: int = 0
    instances_before: dict[str, int] = field(default_factory=dict)
    instances_after: dict[str, int] = field(default_factory=dict)
    memory: list[MemoryRow] = field(default_factory=list)
    host_rss_mb: float | None = None
    calls: list[Calls] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # spent during the burst
    polls: list[tuple[float, int]] = field(default_factory=list)
    log_records: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------
# Running it
# ------------------------------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    """Keeps the devstack's warnings and errors (a failed invocation, a polling error) for the report."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        first = record.getMessage().strip().splitlines()
        self.lines.append(f"{record.levelname.lower()}: {first[-1] if first else ''}"[:300])


@contextlib.contextmanager
def _collected_logs() -> Iterator[_Collect]:
    handler = _Collect()
    logger = logging.getLogger("devstack")
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False  # the report shows them, once
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate


@dataclass
class Running:
    """A started devstack, the recorder set on it, and the warnings/errors it has logged so far."""

    stack: DevStack
    recorder: Recorder
    logs: _Collect
    start_s: float  # how long starting it took


@contextlib.contextmanager
def devstack(concurrency: int, extra_environment: dict[str, str] | None = None) -> Iterator[Running]:
    """Start a devstack on a throwaway cluster; stop it and remove everything on the way out."""
    base = Path(tempfile.mkdtemp(prefix="crosslist-bench-", dir="/tmp"))
    base.chmod(0o755)  # PostgreSQL runs as another OS user when we are root: it must reach its data dir
    config = StackConfig(
        root=REPO,
        http_port=free_port(),
        ws_port=free_port(),
        database_url=None,  # the devstack starts (and stops) its own cluster in data_dir
        data_dir=base / "state",
        concurrency=concurrency,
        schedules=False,
        extra_environment=extra_environment or {},
    )
    saved_environment = dict(os.environ)
    with _collected_logs() as logs:
        stack = DevStack(config)
        try:
            started = time.perf_counter()
            stack.start()
            start_s = time.perf_counter() - started
            recorder = Recorder()
            recorder.install(stack)
            yield Running(stack, recorder, logs, start_s)
        finally:
            try:
                stack.stop()
            finally:
                _forget_moto_state()
                shutil.rmtree(base, ignore_errors=True)
                os.environ.clear()
                os.environ.update(saved_environment)  # the devstack sets DATABASE_URL for its migrations


def _forget_moto_state() -> None:
    """moto keeps its tables and queues in this process, past its server's stop: without this, the next
    devstack of the run (the flood section's) finds the last one's and cannot create its own."""
    from moto.moto_api._internal.models import moto_api_backend  # what moto's POST /moto-api/reset calls

    moto_api_backend.reset()


def run(options: LoopOptions) -> LoopResult:
    """Start a devstack on a throwaway cluster, run the loop, measure memory, stop and remove everything."""
    result = LoopResult(options)
    with devstack(options.concurrency, {}) as running:
        stack, recorder = running.stack, running.recorder
        result.start_s = running.start_s
        asyncio.run(_drive(stack, options, result, recorder))
        result.calls = sorted(recorder.calls.values(), key=lambda calls: calls.function)
        result.polls = list(recorder.polls)
        result.memory = _memory(stack)
        result.host_rss_mb = _rss_mb(os.getpid())
    result.log_records = list(running.logs.lines)  # with what stopping it logged
    return result


def token(stack: DevStack, user: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + 900}, stack.jwt_secret, algorithm="HS256")


class Client:
    """What the web app does over HTTP, for one user."""

    def __init__(self, stack: DevStack, session: aiohttp.ClientSession, user: str) -> None:
        self._stack = stack
        self._session = session
        self._headers = {"Authorization": f"Bearer {token(stack, user)}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = self._stack.http_url + path
        async with self._session.request(method, url, json=body, headers=self._headers) as reply:
            return reply.status, await reply.json(content_type=None)

    async def create_product(self, number: int, photos: int) -> str:
        images = [f"{self._stack.http_url}/__devstack/images/{n}.png" for n in range(1, photos + 1)]
        status, body = await self.call(
            "POST",
            "/products",
            {
                "title": f"Levi's 501 jeans #{number}",
                "price": "27.90",
                "image_urls": images,
                "marketplace_attributes": {"vinted": {"catalog_id": 1839, "status_id": 2, "package_size_id": 2}},
            },
        )
        if status != 201:
            raise RuntimeError(f"POST /products answered {status}: {body}")
        return str(body["id"])

    async def publish(self, product_id: str) -> tuple[str, float]:
        started = time.perf_counter()
        status, body = await self.call(
            "POST", "/jobs", {"marketplace": "vinted", "action": "publish", "product_id": product_id}
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        if status != 202:
            raise RuntimeError(f"POST /jobs answered {status}: {body}")
        return str(body["id"]), elapsed_ms

    async def job(self, job_id: str) -> JsonDict:
        status, body = await self.call("GET", f"/jobs/{job_id}")
        if status != 200:
            raise RuntimeError(f"GET /jobs/{job_id} answered {status}: {body}")
        return dict(body)


class _Finish:
    """The jobs whose end the tabs have seen, and an event set once every expected one is in."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.expected: set[str] = set()
        self.all_done = asyncio.Event()

    def saw(self, job_id: str) -> None:
        self.at.setdefault(job_id, time.monotonic())
        self.check()

    def check(self) -> None:
        if self.expected and self.expected <= self.at.keys():
            self.all_done.set()


class Harness:
    """The devstack, one HTTP session, the open tabs and what they have seen end."""

    def __init__(self, stack: DevStack, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.session = session
        self.finish = _Finish()
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def client(self, user: str) -> Client:
        return Client(self.stack, self.session, user)

    async def open_tab(self, tab: UserTab) -> None:
        finish = self.finish

        def on_event(message: JsonDict) -> None:
            kind = message.get("type")
            job_id = str(message.get("job_id"))
            if kind == "job.completed":
                finish.saw(job_id)
            elif kind == "job.retrying":
                tab.retryable_failures += 1
            elif kind == "job.failed":  # final
                finish.saw(job_id)
            elif kind == "error":
                tab.rejected += 1

        def on_result(command: JsonDict, _reply: JsonDict) -> None:
            tab.replies.append((str(command.get("job_id")), str(command.get("step")), time.monotonic()))

        task = asyncio.create_task(
            run_plugin(
                self.stack.ws_url,
                token(self.stack, tab.user),
                tab.vinted,
                stop=self.stop,
                on_event=on_event,
                on_result=on_result,
                on_connected=tab.connected.set,
                session=self.session,
            ),
            name=f"tab-{tab.user}",
        )
        self.tasks.append(task)
        connected = asyncio.create_task(tab.connected.wait())
        await asyncio.wait({task, connected}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if not tab.connected.is_set():
            connected.cancel()
            if task.done():
                task.result()  # raises why the tab could not connect
            raise RuntimeError(f"the tab of {tab.user} did not connect within 30 s")

    async def warm(self, concurrency: int) -> tuple[float, float]:
        """Start every instance (see `prestart`), then warm them with one publish: (seconds, seconds)."""
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, prestart, self.stack, concurrency)
        prestart_s = time.perf_counter() - started
        started = time.perf_counter()
        await self.warm_up()
        return prestart_s, time.perf_counter() - started

    async def warm_up(self) -> None:
        """One small publish first: the first invocation of an instance builds its clients and connections."""
        await self.open_tab(UserTab(WARMUP_USER, VintedSimulator(latency_ms=0)))
        client = self.client(WARMUP_USER)
        job_id, _ = await client.publish(await client.create_product(0, 1))
        deadline = time.monotonic() + 60
        while job_id not in self.finish.at and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if job_id not in self.finish.at:
            raise RuntimeError(f"the warm-up job {job_id} did not finish within 60 s: {await client.job(job_id)}")

    async def close(self) -> None:
        self.stop.set()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)


def prestart(stack: DevStack, concurrency: int, skip: tuple[str, ...] = ("oauth_refresh",)) -> None:
    """Start every instance the burst may use (like provisioned concurrency), all pools at once."""
    pools = [pool for pool in stack.pools.values() if pool.spec.name not in skip]
    with ThreadPoolExecutor(max_workers=len(pools)) as executor:
        list(executor.map(lambda pool: pool.prestart(concurrency), pools))


def _instances(stack: DevStack) -> dict[str, int]:
    return {pool.spec.name: len(pool.process_ids) for pool in stack.pools.values()}


async def _drive(stack: DevStack, options: LoopOptions, result: LoopResult, recorder: Recorder) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        harness = Harness(stack, session)
        finish = harness.finish
        try:
            if options.warmup:
                result.prestart_s, result.warmup_s = await harness.warm(options.concurrency)

            tabs = [
                UserTab(f"bench-user-{n:02d}", VintedSimulator(latency_ms=options.latency_ms))
                for n in range(1, options.users + 1)
            ]
            result.tabs = tabs
            for tab in tabs:  # one after the other, as people open the web app
                await harness.open_tab(tab)
            clients = {tab.user: harness.client(tab.user) for tab in tabs}

            async def create_products(tab: UserTab) -> None:
                for number in range(1, options.products + 1):
                    tab.products.append(await clients[tab.user].create_product(number, options.photos))

            await asyncio.gather(*(create_products(tab) for tab in tabs))
            result.instances_before = _instances(stack)

            # Everyone publishes everything at once.
            async def publish(tab: UserTab, product_id: str) -> JobRecord:
                job_id, post_ms = await clients[tab.user].publish(product_id)
                finish.expected.add(job_id)
                return JobRecord(job_id, tab.user, post_ms)

            recorder.recording = True
            cpu_before = _cpu_snapshot(stack)
            started = time.monotonic()
            records = await asyncio.gather(*(publish(tab, product) for tab in tabs for product in tab.products))
            finish.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finish.all_done.wait(), options.timeout_s)
            cpu_after = _cpu_snapshot(stack)
            result.cpu_s = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
            result.unfinished = sum(1 for r in records if r.id not in finish.at)
            seen = [finish.at[r.id] for r in records if r.id in finish.at]
            ended = max(seen) if seen and not result.unfinished else time.monotonic()  # or when waiting gave up
            result.wall_s = ended - started
            await asyncio.sleep(0.2)
            recorder.recording = False  # let the last progress/completion messages and results settle
            result.instances_after = _instances(stack)

            for record in records:
                record.finished_at = finish.at.get(record.id)
                _fill(record, await clients[record.user].job(record.id))
            result.jobs = list(records)
        finally:
            await harness.close()


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _fill(record: JobRecord, job: JsonDict) -> None:
    record.status = str(job.get("status"))
    record.attempts = int(job.get("attempts") or 0)
    record.total_steps = int(job.get("total_steps") or 0)
    record.created_at = _when(job.get("created_at"))
    record.started_at = _when(job.get("started_at"))
    record.completed_at = _when(job.get("completed_at"))
    record.error = job.get("error")


# ------------------------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------------------------


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _memory(stack: DevStack) -> list[MemoryRow]:
    rows = []
    for pool in stack.pools.values():
        known = pool.process_ids
        sizes = [size for size in (_rss_mb(pid) for pid in known) if size is not None]
        rows.append(MemoryRow(pool.spec.name, known, sizes))
    return sorted(rows, key=lambda row: row.function)


# ------------------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------------------


def _spread(label: str, values: list[float], unit: str = "ms") -> list[str]:
    return [
        label,
        unit,
        fmt(percentile(values, 0.5)),
        fmt(percentile(values, 0.95)),
        fmt(max(values) if values else None),
        fmt(len(values)),
    ]


def _step_gaps(tabs: list[UserTab], latency_ms: int) -> list[float]:
    """Client side: time between the plugin's replies to two consecutive steps of one job, minus the
    simulated latency, i.e. what the backend spends between one step's result and the next command."""
    gaps: list[float] = []
    for tab in tabs:
        last: dict[str, float] = {}
        for job_id, _step, at in tab.replies:
            if job_id in last:
                gaps.append((at - last[job_id]) * 1000 - latency_ms)
            last[job_id] = at
    return gaps


def _overlaps(jobs: list[JobRecord]) -> tuple[list[tuple[JobRecord, JobRecord]], int, int]:
    """(same-user overlapping pairs, cross-user overlapping pairs, max jobs running at once)."""
    spans = [(j, start, end) for j in jobs if (start := j.started_at) and (end := j.completed_at)]
    same: list[tuple[JobRecord, JobRecord]] = []
    cross = 0
    for i, (a, start_a, end_a) in enumerate(spans):
        for b, start_b, end_b in spans[i + 1 :]:
            if start_a < end_b and start_b < end_a:
                if a.user == b.user:
                    same.append((a, b) if start_a <= start_b else (b, a))
                else:
                    cross += 1
    points = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    running = peak = 0
    for _, delta in points:  # an end at the same instant as a start counts first: touching is not overlapping
        running += delta
        peak = max(peak, running)
    return same, cross, peak


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3] if moment else "-"


@dataclass
class _Summary:
    """What the core loop's report and its figures for bench/results.json are both computed from."""

    finished: list[JobRecord]
    failed: list[JobRecord]
    completed: list[JobRecord]
    steps: int
    timings: list[tuple[str, str, list[float]]]  # (key in results.json, label in the report, values in ms)
    same: list[tuple[JobRecord, JobRecord]]
    cross: int
    peak: int
    spawned: dict[str, int]  # instances started during the burst, by function


def _summary(result: LoopResult) -> _Summary:
    o = result.options
    jobs = result.jobs
    finished = [j for j in jobs if j.status in ("completed", "failed")]
    completed = [j for j in jobs if j.status == "completed"]
    durations = [d for j in completed if (d := j.duration_ms) is not None]
    runs = [r for j in completed if (r := j.run_ms) is not None]
    queued = [q for j in completed if (q := j.queued_ms) is not None]
    step_from_job = [d / j.total_steps - o.latency_ms for j in completed if (d := j.duration_ms) and j.total_steps]
    step_from_run = [r / j.total_steps - o.latency_ms for j in completed if (r := j.run_ms) and j.total_steps]
    same, cross, peak = _overlaps(finished)
    return _Summary(
        finished=finished,
        failed=[j for j in jobs if j.status == "failed"],
        completed=completed,
        steps=sum(j.total_steps for j in completed),
        timings=[
            ("post_jobs", "POST /jobs (web app → 202)", [j.post_ms for j in jobs]),
            ("queued", "queued (created_at → started_at)", queued),
            ("run", "run (started_at → completed_at)", runs),
            ("job_duration", "job duration (created_at → completed_at)", durations),
            ("step_overhead_from_duration", "per-step overhead: job duration / steps - latency", step_from_job),
            ("step_overhead_from_run", "per-step overhead: run / steps - latency", step_from_run),
            (
                "step_gap_seen_by_plugin",
                "per-step backend gap seen by the plugin",
                _step_gaps(result.tabs, o.latency_ms),
            ),
        ],
        same=same,
        cross=cross,
        peak=peak,
        spawned={
            name: result.instances_after.get(name, 0) - result.instances_before.get(name, 0)
            for name in result.instances_after
        },
    )


def report_loop(result: LoopResult) -> str:
    o = result.options
    jobs = result.jobs
    summary = _summary(result)
    finished, failed, completed, steps = summary.finished, summary.failed, summary.completed, summary.steps
    same, cross, peak = summary.same, summary.cross, summary.peak
    lines = [
        section("core loop through the devstack"),
        f"  {o.users} users x {o.products} products x {o.photos} photos = {len(jobs)} publish jobs of "
        f"{o.photos + 1} steps, simulated Vinted latency {o.latency_ms} ms, {o.concurrency} instances per function",
        f"  devstack started in {result.start_s:.1f} s"
        + (
            f"; warm-up: all instances started in {result.prestart_s:.1f} s, then one publish in "
            f"{result.warmup_s:.1f} s"
            if result.warmup_s is not None and result.prestart_s is not None
            else "; no warm-up: the burst starts the instances"
        ),
        "",
        table(
            ["figure", "value"],
            [
                [
                    "total wall time (first POST /jobs → last job's end seen by its tab)"
                    if not result.unfinished
                    else "total wall time (first POST /jobs → waiting gave up: jobs unfinished)",
                    f"{result.wall_s:.2f} s",
                ],
                ["throughput", f"{len(finished) / result.wall_s:.2f} jobs/s" if result.wall_s else "-"],
                ["plugin steps executed", f"{steps} ({steps / result.wall_s:.1f} steps/s)" if result.wall_s else "-"],
                ["jobs completed / failed / unfinished", f"{len(completed)} / {len(failed)} / {result.unfinished}"],
                ["jobs that needed more than one attempt", str(sum(1 for j in jobs if j.attempts > 1))],
                ["retryable step failures seen by the tabs", str(sum(t.retryable_failures for t in result.tabs))],
                ["plugin results the backend rejected", str(sum(t.rejected for t in result.tabs))],
            ],
        ),
        "",
        table(
            ["timing", "unit", "p50", "p95", "max", "n"],
            [_spread(label, values) for _, label, values in summary.timings],
        ),
        "  job duration includes the wait behind the same user's earlier jobs (one at a time per user); the run",
        "  and the plugin's gap between two replies of one job (minus latency) show the cost of a step itself",
        "",
        f"  check: failed jobs = {len(failed)}, unfinished after {o.timeout_s:.0f} s = {result.unfinished} "
        f"(expected 0 and 0) ........ {'OK' if not failed and not result.unfinished else 'NOT OK'}",
        f"  check: jobs of one user never overlap: {len(same)} overlapping pair(s) ........ "
        + ("OK" if not same else "NOT OK"),
        f"  check: jobs of different users overlap: {cross} overlapping pair(s), max {peak} job(s) running at once"
        + f" ........ {'OK' if cross > 0 else 'NOT OK (users ran one after another)'}",
    ]
    for first, second in same[:5]:
        lines.append(
            f"    {first.user}: job {first.id[:8]} ran {_clock(first.started_at)}-{_clock(first.completed_at)}, "
            f"job {second.id[:8]} ran {_clock(second.started_at)}-{_clock(second.completed_at)}"
        )
    empty = [seconds for seconds, count in result.polls if count == 0]
    lines += [
        "",
        _calls_table(result.calls),
        f"  SQS trigger polls (ReceiveMessage) during the burst: {len(result.polls)}, of which {len(empty)} came back "
        f"empty after {sum(empty):.1f} s of long polling in all",
        "",
        _cpu_table(result.cpu_s, result.wall_s),
    ]
    for job in failed[:5]:
        lines.append(f"  failed job {job.id[:8]} of {job.user}: {job.error}")
    cold = ", ".join(f"{name} +{n}" for name, n in sorted(summary.spawned.items()) if n > 0)
    lines.append(f"  instances started during the burst (cold starts): {cold or 'none'}")
    return "\n".join(lines)


def _calls_table(calls: list[Calls]) -> str:
    rows = []
    for c in calls:
        if not c.run_ms and not c.errors:
            continue
        batches = f"{sum(c.batch_sizes) / len(c.batch_sizes):.1f} (max {max(c.batch_sizes)})" if c.batch_sizes else ""
        rows.append(
            [
                c.function,
                fmt(len(c.run_ms)),
                fmt(c.errors),
                fmt(percentile(c.run_ms, 0.5)),
                fmt(percentile(c.run_ms, 0.95)),
                fmt(percentile(c.wait_ms, 0.5)),
                fmt(percentile(c.wait_ms, 0.95)),
                fmt(sum(c.run_ms) / 1000, 1),
                batches,
            ]
        )
    headers = [
        "invocations during the burst",
        "calls",
        "errors",
        "run p50 ms",
        "run p95",
        "wait p50 ms",
        "wait p95",
        "busy s",
        "SQS records/call",
    ]
    note = "  wait: for a free instance of the function (up to its concurrency), including starting one"
    return table(headers, rows) + "\n" + note


def _cpu_table(cpu_s: dict[str, float], wall_s: float) -> str:
    cores = len(os.sched_getaffinity(0))
    rows = [
        [name, fmt(spent, 2), f"{spent / wall_s:.0%}" if wall_s else "-"]
        for name, spent in sorted(cpu_s.items(), key=lambda item: -item[1])
        if spent > 0
    ]
    total = sum(cpu_s.values())
    rows.append(["all of the above", fmt(total, 2), f"{total / wall_s:.0%}" if wall_s else "-"])
    note = f"  % of one core over the burst's wall time; the machine has {cores} core(s) = {cores * 100}%"
    return table(["CPU during the burst", "cpu s", "% core"], rows) + "\n" + note


def report_memory(result: LoopResult) -> str:
    rows = []
    for row in result.memory:
        per = " ".join(f"{size:.0f}" for size in row.rss_mb) or "-"
        rows.append([row.function, fmt(len(row.pids)), per, fmt(sum(row.rss_mb), 0) if row.rss_mb else "-"])
    total = sum(sum(row.rss_mb) for row in result.memory)
    rows.append(["all worker processes", fmt(sum(len(r.pids) for r in result.memory)), "", fmt(total, 0)])
    if result.host_rss_mb is not None:
        rows.append(["host process: gateways, moto, SQS pollers, the tabs", "1", "", fmt(result.host_rss_mb, 0)])
    return "\n".join(
        [
            section("memory after the loop: VmRSS of each function's worker processes"),
            table(["function", "instances", "RSS per instance (MB)", "total MB"], rows),
            "  a function never invoked has no instance; PostgreSQL's own processes are not counted",
        ]
    )


def report_logs(result: LoopResult) -> str:
    if not result.log_records:
        return "  devstack warnings/errors during the run: none"
    shown = result.log_records[:10]
    more = len(result.log_records) - len(shown)
    lines = [f"  devstack warnings/errors during the run: {len(result.log_records)}"]
    lines += [f"    {line}" for line in shown]
    if more:
        lines.append(f"    … and {more} more")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# Figures for bench/results.json: what the reports print, as numbers
# ------------------------------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    return {
        "p50_ms": number(percentile(values, 0.5)),
        "p95_ms": number(percentile(values, 0.95)),
        "max_ms": number(max(values) if values else None),
        "n": len(values),
    }


def figures_loop(result: LoopResult) -> dict[str, Any]:
    """The core loop section's figures."""
    o = result.options
    summary = _summary(result)
    wall_s = result.wall_s
    cores = len(os.sched_getaffinity(0))

    def share(spent: float) -> float | None:
        return number(spent / wall_s * 100) if wall_s else None

    empty_polls = [seconds for seconds, count in result.polls if count == 0]
    return {
        "options": {
            "users": o.users,
            "products": o.products,
            "photos": o.photos,
            "jobs": len(result.jobs),
            "steps_per_job": o.photos + 1,
            "latency_ms": o.latency_ms,
            "concurrency": o.concurrency,
            "warmup": o.warmup,
            "timeout_s": o.timeout_s,
        },
        "devstack_start_s": number(result.start_s, 2),
        "prestart_s": number(result.prestart_s, 2),
        "warmup_s": number(result.warmup_s, 2),
        "wall_s": number(wall_s, 3),
        "throughput_jobs_per_s": number(len(summary.finished) / wall_s, 2) if wall_s else None,
        "steps": summary.steps,
        "steps_per_s": number(summary.steps / wall_s, 1) if wall_s else None,
        "jobs": {
            "completed": len(summary.completed),
            "failed": len(summary.failed),
            "unfinished": result.unfinished,
            "more_than_one_attempt": sum(1 for j in result.jobs if j.attempts > 1),
            "retryable_step_failures": sum(t.retryable_failures for t in result.tabs),
            "rejected_plugin_results": sum(t.rejected for t in result.tabs),
        },
        "timings": {key: _percentiles(values) for key, _, values in summary.timings},
        "overlaps": {
            "same_user_pairs": len(summary.same),
            "cross_user_pairs": summary.cross,
            "max_running_jobs": summary.peak,
        },
        "checks": {
            "no_failed_or_unfinished": not summary.failed and not result.unfinished,
            "same_user_never_overlap": not summary.same,
            "different_users_overlap": summary.cross > 0,
        },
        "invocations": {
            c.function: {
                "calls": len(c.run_ms),
                "errors": c.errors,
                "run_p50_ms": number(percentile(c.run_ms, 0.5)),
                "run_p95_ms": number(percentile(c.run_ms, 0.95)),
                "wait_p50_ms": number(percentile(c.wait_ms, 0.5)),
                "wait_p95_ms": number(percentile(c.wait_ms, 0.95)),
                "busy_s": number(sum(c.run_ms) / 1000, 2),
                "sqs_records_per_call": number(sum(c.batch_sizes) / len(c.batch_sizes), 2) if c.batch_sizes else None,
                "sqs_records_per_call_max": max(c.batch_sizes) if c.batch_sizes else None,
            }
            for c in result.calls
            if c.run_ms or c.errors
        },
        "sqs_polls": {
            "count": len(result.polls),
            "empty": len(empty_polls),
            "empty_long_poll_s": number(sum(empty_polls), 2),
        },
        "cpu": {
            "cores": cores,
            "processes": {
                name: {"cpu_s": number(spent, 3), "core_percent": share(spent)}
                for name, spent in sorted(result.cpu_s.items(), key=lambda item: -item[1])
                if spent > 0
            },
            "total": {
                "cpu_s": number(sum(result.cpu_s.values()), 3),
                "core_percent": share(sum(result.cpu_s.values())),
            },
        },
        "instances_started_during_burst": {name: n for name, n in sorted(summary.spawned.items()) if n > 0},
        "devstack_warnings": len(result.log_records),
    }


def figures_memory(result: LoopResult) -> dict[str, Any]:
    """The memory section's figures: VmRSS of each function's worker processes after the loop."""
    return {
        "after_jobs": len(result.jobs),
        "functions": {
            row.function: {
                "instances": len(row.pids),
                "rss_mb": [number(size) for size in row.rss_mb],
                "total_rss_mb": number(sum(row.rss_mb)) if row.rss_mb else None,
            }
            for row in result.memory
        },
        "workers": sum(len(row.pids) for row in result.memory),
        "workers_total_rss_mb": number(sum(sum(row.rss_mb) for row in result.memory)),
        "host_rss_mb": number(result.host_rss_mb),
    }
