"""One user's message flood against another user's job (issue 6 item 6), through the devstack.

Two users' tabs are open on one warm devstack: a victim's (the plugin simulator) and a flooder's (a bare
WebSocket that says its extension is ready, then only sends what it is told to). The victim publishes
one product of PHOTOS photos, alone, REPETITIONS times: its baseline. Then, REPETITIONS times, the
flooder sends N `plugin_result` messages with unknown request ids as fast as it can and, right after,
the victim publishes the same kind of job. A job's duration is the victim's view of it: from sending
POST /jobs to its tab receiving `job.completed`.

ws_message counts each connection's messages in fixed windows of MESSAGE_WINDOW_SECONDS aligned on the
clock (crosslist.realtime.connections), so each flood starts in a window the flooder has not used yet,
early enough for the flood, the victim's job and the flooder's backlog to fit in it: each one meets a
fresh budget of MESSAGES_PER_WINDOW. What the flooder got back is counted per flood: the gateway's
throttles ("Too Many Requests", the stage's throttle or the connection's full backlog), `rate_limited`,
other errors (`unknown_request` for the messages within the budget), and the ws_message invocations its
connection caused (the harness's recorder, by connection id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from bench.loop import Client, Harness, Recorder, UserTab, devstack, token
from bench.stats import fmt, median, number, section, table
from crosslist.realtime.connections import MESSAGE_WINDOW_SECONDS, MESSAGES_PER_WINDOW
from devstack.plugin import EXTENSION_VERSION, VintedSimulator
from devstack.stack import DevStack

PHOTOS = 3
REPETITIONS = 3
VICTIM = "bench-flood-victim"
FLOODER = "bench-flood-flooder"
FLOODER_AGENT = "crosslist-bench-flooder/1"  # how the flooder's connection is told apart at the gateway
THROTTLED = "Too Many Requests"  # the gateway's answer, as API Gateway's
# A flood starts only with this much of its window left: its sending, the victim's job and the draining
# of the flooder's backlog take a few seconds at most.
WINDOW_ROOM_S = 5.0
DRAIN_TIMEOUT_S = 30.0
CHECK_FACTOR = 3.0
CHECK_MARGIN_MS = 1000.0


@dataclass(frozen=True)
class FloodOptions:
    messages: int = 2000
    repetitions: int = REPETITIONS
    concurrency: int = 2
    timeout_s: float = 90.0  # for each victim's job


@dataclass
class VictimJob:
    id: str
    duration_ms: float | None  # POST /jobs sent → job.completed seen by the victim's tab; None: not seen
    status: str
    error: Any = None


@dataclass
class Flood:
    job: VictimJob
    sent: int
    send_s: float  # sending the N messages
    drain_s: float | None  # first message sent → the flooder's backlog at the gateway empty; None: timed out
    answers: Counter[str] = field(default_factory=Counter)  # what the flooder got back, by kind
    invocations: int = 0  # ws_message invocations for the flooder's connection


@dataclass
class FloodResult:
    options: FloodOptions
    start_s: float = 0.0
    prestart_s: float = 0.0
    warmup_s: float = 0.0
    baseline: list[VictimJob] = field(default_factory=list)
    floods: list[Flood] = field(default_factory=list)
    victim_rejected: int = 0  # `error` messages the victim's tab got
    log_records: list[str] = field(default_factory=list)

    @property
    def baseline_p50(self) -> float:
        return median([d for j in self.baseline if (d := j.duration_ms) is not None])

    @property
    def flooded_p50(self) -> float:
        return median([d for f in self.floods if (d := f.job.duration_ms) is not None])

    @property
    def unfinished(self) -> int:
        jobs = [*self.baseline, *(f.job for f in self.floods)]
        return sum(1 for j in jobs if j.duration_ms is None or j.status != "completed")

    @property
    def limit_ms(self) -> float:
        return CHECK_FACTOR * self.baseline_p50 + CHECK_MARGIN_MS

    @property
    def ok(self) -> bool:
        return not self.unfinished and self.flooded_p50 <= self.limit_ms


# ------------------------------------------------------------------------------------------------------------
# Running it
# ------------------------------------------------------------------------------------------------------------


def run(options: FloodOptions) -> FloodResult:
    result = FloodResult(options)
    with devstack(options.concurrency) as running:
        result.start_s = running.start_s
        asyncio.run(_drive(running.stack, running.recorder, options, result))
    result.log_records = list(running.logs.lines)
    return result


class _Flooder:
    """Another user's tab: says its extension is ready, then sends what it is told; counts the answers."""

    def __init__(self, stack: DevStack, session: aiohttp.ClientSession) -> None:
        self._stack = stack
        self._session = session
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connection_id = ""
        self.answers: Counter[str] = Counter()
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        api = self._stack.websocket_api
        assert api is not None
        url = URL(self._stack.ws_url).update_query(token=token(self._stack, FLOODER))
        self.ws = await self._session.ws_connect(url, headers={"User-Agent": FLOODER_AGENT})
        await self.ws.send_json({"action": "plugin_status", "ready": True, "extension_version": EXTENSION_VERSION})
        self._reader = asyncio.create_task(self._read(self.ws), name="tab-flooder")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the gateway registers the socket just after the upgrade
            ids = [cid for cid, socket in list(api.sockets.items()) if socket.user_agent == FLOODER_AGENT]
            if ids:
                self.connection_id = ids[0]
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the gateway did not register the flooder's connection within 10 s")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                message = json.loads(frame.data)
            except ValueError:
                self.answers["invalid frame"] += 1
                continue
            if not isinstance(message, dict):
                self.answers["invalid frame"] += 1
            elif message.get("message") == THROTTLED and "type" not in message:
                self.answers[THROTTLED] += 1
            elif message.get("type") == "error":
                self.answers[str(message.get("code"))] += 1
            else:
                self.answers[str(message.get("type") or message.get("message"))] += 1

    async def flood(self, messages: int, tag: str) -> float:
        assert self.ws is not None
        started = time.monotonic()
        for n in range(messages):
            body = {"action": "plugin_result", "request_id": f"flood-{tag}-{n}", "success": True, "result": {}}
            await self.ws.send_str(json.dumps(body))
        return time.monotonic() - started

    def backlog_empty(self) -> bool:
        """The gateway has no message of this connection waiting or running."""
        api = self._stack.websocket_api
        socket = api.sockets.get(self.connection_id) if api is not None else None
        return socket is None or (socket.inbox.qsize() == 0 and not socket.draining)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await asyncio.wait_for(self._reader, 5)


async def _victim_job(harness: Harness, client: Client, product_id: str, timeout_s: float) -> VictimJob:
    started = time.monotonic()
    job_id, _ = await client.publish(product_id)
    deadline = started + timeout_s
    while job_id not in harness.finish.at and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # the tab stamps the end as it arrives: this loop only notices it
    finished = harness.finish.at.get(job_id)
    job = await client.job(job_id)
    duration = (finished - started) * 1000 if finished is not None else None
    return VictimJob(job_id, duration, str(job.get("status")), job.get("error"))


def _window(moment: float) -> int:
    return int(moment) // MESSAGE_WINDOW_SECONDS  # as ConnectionStore.count_message


async def _fresh_window(after: float | None) -> None:
    """Wait for a budget window later than the one holding `after` (wall clock), with WINDOW_ROOM_S left."""
    while True:
        now = time.time()
        left = (_window(now) + 1) * MESSAGE_WINDOW_SECONDS - now
        if (after is None or _window(now) > _window(after)) and left >= WINDOW_ROOM_S:
            return
        await asyncio.sleep(left + 0.05)


async def _drive(stack: DevStack, recorder: Recorder, options: FloodOptions, result: FloodResult) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        harness = Harness(stack, session)
        flooder = _Flooder(stack, session)
        try:
            result.prestart_s, result.warmup_s = await harness.warm(options.concurrency)
            victim = UserTab(VICTIM, VintedSimulator(latency_ms=0))
            await harness.open_tab(victim)
            await flooder.open()
            client = harness.client(VICTIM)
            products = [await client.create_product(n, PHOTOS) for n in range(2 * options.repetitions + 1)]
            # One untimed job of the victim first: the warm-up publish may not have used every instance.
            await _victim_job(harness, client, products.pop(0), options.timeout_s)
            await asyncio.sleep(0.2)  # its last messages settle

            for product_id in products[: options.repetitions]:
                result.baseline.append(await _victim_job(harness, client, product_id, options.timeout_s))
                await asyncio.sleep(0.2)  # the last progress and completion messages settle

            recorder.recording = True  # counts the invocations by connection id from here on
            last_counted: float | None = None
            for number, product_id in enumerate(products[options.repetitions :], start=1):
                await _fresh_window(last_counted)
                flooder.answers = Counter()
                invocations_before = recorder.per_connection[flooder.connection_id]
                started = time.monotonic()
                send_s = await flooder.flood(options.messages, str(number))
                job = await _victim_job(harness, client, product_id, options.timeout_s)
                while not flooder.backlog_empty() and time.monotonic() - started < DRAIN_TIMEOUT_S:
                    await asyncio.sleep(0.01)
                drain_s = time.monotonic() - started if flooder.backlog_empty() else None
                last_counted = time.time()
                await asyncio.sleep(0.3)  # the answers to the last messages arrive
                result.floods.append(
                    Flood(
                        job=job,
                        sent=options.messages,
                        send_s=send_s,
                        drain_s=drain_s,
                        answers=flooder.answers,
                        invocations=recorder.per_connection[flooder.connection_id] - invocations_before,
                    )
                )
            recorder.recording = False
            result.victim_rejected = victim.rejected
        finally:
            await flooder.close()
            await harness.close()


# ------------------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------------------


def _ms(job: VictimJob) -> str:
    return fmt(job.duration_ms) if job.status == "completed" else f"{job.status} {fmt(job.duration_ms)}"


def _kinds(floods: list[Flood]) -> list[str]:
    """The flooder's answers: throttles and rate_limited first (always shown), then the others seen."""
    seen = {kind for f in floods for kind in f.answers}
    return [THROTTLED, "rate_limited", *sorted(seen - {THROTTLED, "rate_limited"})]


def report(result: FloodResult) -> str:
    o = result.options
    runs = [f"run {n}" for n in range(1, o.repetitions + 1)]

    def row(label: str, values: list[str], summary: str) -> list[str]:
        return [label, *(values + [""] * o.repetitions)[: o.repetitions], summary]

    rows = [
        row("victim's job alone (ms)", [_ms(j) for j in result.baseline], fmt(result.baseline_p50)),
        row("victim's job under the flood (ms)", [_ms(f.job) for f in result.floods], fmt(result.flooded_p50)),
        row("flood: messages sent", [fmt(f.sent) for f in result.floods], ""),
        row("flood: sending took (s)", [fmt(f.send_s, 2) for f in result.floods], ""),
        row("flood: first sent → flooder's backlog empty (s)", [fmt(f.drain_s, 2) for f in result.floods], ""),
    ]
    for kind in _kinds(result.floods):
        label = f'flooder got: gateway throttles ("{THROTTLED}")' if kind == THROTTLED else f"flooder got: {kind}"
        rows.append(row(label, [fmt(f.answers[kind]) for f in result.floods], ""))
    rows.append(row("ws_message invocations the flood caused", [fmt(f.invocations) for f in result.floods], ""))
    slowdown = result.flooded_p50 / result.baseline_p50 if result.baseline_p50 else float("nan")
    lines = [
        section("one user's message flood against another user's job"),
        f"  a victim publishes 1 product of {PHOTOS} photos ({PHOTOS + 1} steps, latency 0 ms) alone, then right "
        f"after another user's tab sent",
        f"  {o.messages:,} plugin_result messages with unknown request ids as fast as it could; {o.repetitions} runs "
        f"each, {o.concurrency} instances per function,",
        f"  warm (and one untimed job of the victim first); each flood meets a fresh budget of {MESSAGES_PER_WINDOW} "
        f"messages / {MESSAGE_WINDOW_SECONDS} s",
        f"  devstack started in {result.start_s:.1f} s; warm-up: all instances started in {result.prestart_s:.1f} s, "
        f"then one publish in {result.warmup_s:.1f} s",
        "",
        table(["figure", *runs, "p50"], rows),
        "  victim's job: POST /jobs sent → job.completed received by its tab",
        f"  slowdown under the flood (p50 / p50): x{slowdown:.2f}; plugin results of the victim the backend "
        f"rejected: {result.victim_rejected}",
        "",
        f"  check: victim's job under the flood p50 {fmt(result.flooded_p50)} ms <= {CHECK_FACTOR:g} x alone "
        f"+ {CHECK_MARGIN_MS / 1000:g} s = {fmt(result.limit_ms)} ms, every job completed "
        f"........ {'OK' if result.ok else 'NOT OK'}",
    ]
    for job in [*result.baseline, *(f.job for f in result.floods)]:
        if job.status != "completed" or job.duration_ms is None:
            lines.append(f"    victim's job {job.id[:8]}: {job.status} {job.error or ''}".rstrip())
    if result.log_records:
        lines.append(f"  devstack warnings/errors during the flood section: {len(result.log_records)}")
        lines += [f"    {line}" for line in result.log_records[:10]]
    return "\n".join(lines)


def figures(result: FloodResult) -> dict[str, Any]:
    """The section's figures for bench/results.json."""
    return {
        "messages": result.options.messages,
        "repetitions": result.options.repetitions,
        "photos": PHOTOS,
        "concurrency": result.options.concurrency,
        "budget": {"messages": MESSAGES_PER_WINDOW, "window_s": MESSAGE_WINDOW_SECONDS},
        "victim_job_ms": {
            "alone": [number(j.duration_ms) for j in result.baseline],
            "flooded": [number(f.job.duration_ms) for f in result.floods],
            "alone_p50": number(result.baseline_p50),
            "flooded_p50": number(result.flooded_p50),
            "slowdown": number(result.flooded_p50 / result.baseline_p50 if result.baseline_p50 else None, 2),
        },
        "victim_statuses": [j.status for j in [*result.baseline, *(f.job for f in result.floods)]],
        "floods": [
            {
                "send_s": number(f.send_s, 3),
                "drain_s": number(f.drain_s, 3),
                "answers": dict(sorted(f.answers.items())),
                "ws_message_invocations": f.invocations,
            }
            for f in result.floods
        ],
        "check": {"limit_ms": number(result.limit_ms), "ok": result.ok},
        "devstack_warnings": len(result.log_records),
    }
