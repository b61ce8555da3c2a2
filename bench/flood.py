"""One user's message flood against another user's job (issue 6 item 6), through the devstack.

Two users' tabs are open on one warm devstack: a victim's (the plugin simulator) and a flooder's
(FLOODER_TABS bare WebSockets that say their extension is ready, then only send what they are told to).
The victim publishes one product of PHOTOS photos, alone, REPETITIONS times: its baseline. Then, for each
spread (the flood over one of the flooder's connections, then over all FLOODER_TABS of them: a budget per
connection alone would let a user multiply it by opening tabs), REPETITIONS times, the flooder sends N
`plugin_result` messages with unknown request ids as fast as it can, round robin over the spread's
connections, and, right after, the victim publishes the same kind of job. A job's duration is the
victim's view of it: from sending POST /jobs to its tab receiving `job.completed`.

ws_message counts each connection's messages, and each user's, in fixed windows of MESSAGE_WINDOW_SECONDS
aligned on the clock (crosslist.realtime.connections), so each flood starts in a window the flooder has not
used yet, early enough for the flood and the victim's job to fit in it: each one meets fresh budgets (the
devstack works through the backlog of a flood over FLOODER_TABS connections for longer than a window: its
tail meets the next windows' budgets too). What the flooder got back is counted per flood: the gateway's
throttles ("Too Many Requests", the stage's throttle or a connection's full backlog), `rate_limited`, other
errors (`unknown_request` for the messages within the budgets), and the ws_message invocations its
connections caused (the harness's recorder, by connection id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from bench.loop import Client, Harness, Recorder, UserTab, devstack, token
from bench.stats import fmt, median, number, section, table
from crosslist.realtime.connections import MESSAGE_WINDOW_SECONDS, MESSAGES_PER_USER_WINDOW, MESSAGES_PER_WINDOW
from devstack.plugin import EXTENSION_VERSION, VintedSimulator
from devstack.stack import DevStack

PHOTOS = 3
REPETITIONS = 3
VICTIM = "bench-flood-victim"
FLOODER = "bench-flood-flooder"
FLOODER_AGENT = "crosslist-bench-flooder/1"  # how the flooder's connections are told apart at the gateway
FLOODER_TABS = 10  # the flooder's connections: the widest spread
THROTTLED = "Too Many Requests"  # the gateway's answer, as API Gateway's
# A flood starts only with this much of its window left: its sending and the victim's job take a few
# seconds at most.
WINDOW_ROOM_S = 5.0
DRAIN_TIMEOUT_S = 90.0  # a flood over 10 connections queues 1 280 messages at the gateway: tens of seconds
CHECK_FACTOR = 3.0
CHECK_MARGIN_MS = 1000.0


@dataclass(frozen=True)
class FloodOptions:
    messages: int = 2000
    repetitions: int = REPETITIONS
    concurrency: int = 2
    timeout_s: float = 90.0  # for each victim's job
    spreads: tuple[int, ...] = (1, FLOODER_TABS)  # over how many of the flooder's connections a flood goes


@dataclass
class VictimJob:
    id: str
    duration_ms: float | None  # POST /jobs sent → job.completed seen by the victim's tab; None: not seen
    status: str
    error: Any = None


@dataclass
class Flood:
    job: VictimJob
    connections: int  # the flooder's connections it was spread over
    sent: int
    send_s: float  # sending the N messages
    drain_s: float | None  # first message sent → the flooder's backlogs at the gateway empty; None: timed out
    answers: Counter[str] = field(default_factory=Counter)  # what the flooder got back, by kind
    invocations: int = 0  # ws_message invocations for the flooder's connections


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

    def floods_over(self, connections: int) -> list[Flood]:
        return [f for f in self.floods if f.connections == connections]

    def flooded_p50(self, connections: int) -> float:
        return median([d for f in self.floods_over(connections) if (d := f.job.duration_ms) is not None])

    def slowdown(self, connections: int) -> float:
        return self.flooded_p50(connections) / self.baseline_p50 if self.baseline_p50 else math.nan

    @property
    def unfinished(self) -> int:
        jobs = [*self.baseline, *(f.job for f in self.floods)]
        return sum(1 for j in jobs if j.duration_ms is None or j.status != "completed")

    @property
    def limit_ms(self) -> float:
        return CHECK_FACTOR * self.baseline_p50 + CHECK_MARGIN_MS

    @property
    def ok(self) -> bool:
        return not self.unfinished and all(self.flooded_p50(n) <= self.limit_ms for n in self.options.spreads)


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
    """Another user's tabs: each says its extension is ready, then sends what it is told; counts the answers."""

    def __init__(self, stack: DevStack, session: aiohttp.ClientSession) -> None:
        self._stack = stack
        self._session = session
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.connection_ids: list[str] = []
        self.answers: Counter[str] = Counter()
        self._readers: list[asyncio.Task[None]] = []

    async def open(self, tabs: int) -> None:
        for index in range(tabs):
            await self._open_tab(f"{FLOODER_AGENT} tab {index}")

    async def _open_tab(self, agent: str) -> None:
        api = self._stack.websocket_api
        assert api is not None
        url = URL(self._stack.ws_url).update_query(token=token(self._stack, FLOODER))
        ws = await self._session.ws_connect(url, headers={"User-Agent": agent})
        await ws.send_json({"action": "plugin_status", "ready": True, "extension_version": EXTENSION_VERSION})
        self.sockets.append(ws)
        self._readers.append(asyncio.create_task(self._read(ws), name=f"tab-flooder-{len(self.sockets)}"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the gateway registers the socket just after the upgrade
            ids = [cid for cid, socket in list(api.sockets.items()) if socket.user_agent == agent]
            if ids:
                self.connection_ids.append(ids[0])
                return
            await asyncio.sleep(0.01)
        raise RuntimeError(f"the gateway did not register the flooder's connection {agent!r} within 10 s")

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

    async def flood(self, messages: int, connections: int, tag: str) -> float:
        """Send `messages` round robin over the first `connections` tabs, as fast as possible."""
        sockets = self.sockets[:connections]
        started = time.monotonic()
        for n in range(messages):
            body = {"action": "plugin_result", "request_id": f"flood-{tag}-{n}", "success": True, "result": {}}
            await sockets[n % len(sockets)].send_str(json.dumps(body))
        return time.monotonic() - started

    def backlog_empty(self, connections: int) -> bool:
        """The gateway has no message of these connections waiting or running."""
        api = self._stack.websocket_api
        for connection_id in self.connection_ids[:connections]:
            socket = api.sockets.get(connection_id) if api is not None else None
            if socket is not None and (socket.inbox.qsize() > 0 or socket.draining):
                return False
        return True

    async def close(self) -> None:
        for ws in self.sockets:
            await ws.close()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, TimeoutError):
                await asyncio.wait_for(reader, 5)


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


async def _flood(
    harness: Harness,
    client: Client,
    flooder: _Flooder,
    recorder: Recorder,
    *,
    options: FloodOptions,
    connections: int,
    product_id: str,
    tag: str,
) -> Flood:
    """One flood over `connections` of the flooder's tabs, the victim's job right after it."""
    flooded_ids = flooder.connection_ids[:connections]
    flooder.answers = Counter()
    invocations_before = sum(recorder.per_connection[cid] for cid in flooded_ids)
    started = time.monotonic()
    send_s = await flooder.flood(options.messages, connections, tag)
    job = await _victim_job(harness, client, product_id, options.timeout_s)
    while not flooder.backlog_empty(connections) and time.monotonic() - started < DRAIN_TIMEOUT_S:
        await asyncio.sleep(0.01)
    drain_s = time.monotonic() - started if flooder.backlog_empty(connections) else None
    await asyncio.sleep(0.3)  # the answers to the last messages arrive
    return Flood(
        job=job,
        connections=connections,
        sent=options.messages,
        send_s=send_s,
        drain_s=drain_s,
        answers=flooder.answers,
        invocations=sum(recorder.per_connection[cid] for cid in flooded_ids) - invocations_before,
    )


async def _drive(stack: DevStack, recorder: Recorder, options: FloodOptions, result: FloodResult) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        harness = Harness(stack, session)
        flooder = _Flooder(stack, session)
        try:
            result.prestart_s, result.warmup_s = await harness.warm(options.concurrency)
            victim = UserTab(VICTIM, VintedSimulator(latency_ms=0))
            await harness.open_tab(victim)
            await flooder.open(max(options.spreads))
            client = harness.client(VICTIM)
            count = (1 + len(options.spreads)) * options.repetitions + 1
            products = [await client.create_product(n, PHOTOS) for n in range(count)]
            # One untimed job of the victim first: the warm-up publish may not have used every instance.
            await _victim_job(harness, client, products.pop(0), options.timeout_s)
            await asyncio.sleep(0.2)  # its last messages settle

            for product_id in products[: options.repetitions]:
                result.baseline.append(await _victim_job(harness, client, product_id, options.timeout_s))
                await asyncio.sleep(0.2)  # the last progress and completion messages settle

            recorder.recording = True  # counts the invocations by connection id from here on
            last_counted: float | None = None
            flooded = products[options.repetitions :]
            for spread_index, connections in enumerate(options.spreads):
                for repetition in range(options.repetitions):
                    product_id = flooded[spread_index * options.repetitions + repetition]
                    await _fresh_window(last_counted)
                    flood = await _flood(
                        harness,
                        client,
                        flooder,
                        recorder,
                        options=options,
                        connections=connections,
                        product_id=product_id,
                        tag=f"{connections}x{repetition + 1}",
                    )
                    result.floods.append(flood)
                    last_counted = time.time()
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


def _budget() -> str:
    return (
        f"{MESSAGES_PER_WINDOW} messages / {MESSAGE_WINDOW_SECONDS} s per connection, "
        f"{MESSAGES_PER_USER_WINDOW} per user"
    )


def report(result: FloodResult) -> str:
    o = result.options
    runs = [f"run {n}" for n in range(1, o.repetitions + 1)]

    def row(label: str, values: list[str], summary: str) -> list[str]:
        return [label, *(values + [""] * o.repetitions)[: o.repetitions], summary]

    rows = [row("victim's job alone (ms)", [_ms(j) for j in result.baseline], fmt(result.baseline_p50))]
    for connections in o.spreads:
        floods = result.floods_over(connections)
        over = f"over {connections} connection{'s' if connections > 1 else ''}"
        rows += [
            row(
                f"[{over}] victim's job under the flood (ms)",
                [_ms(f.job) for f in floods],
                fmt(result.flooded_p50(connections)),
            ),
            row(f"[{over}] flood: messages sent", [fmt(f.sent) for f in floods], ""),
            row(f"[{over}] flood: sending took (s)", [fmt(f.send_s, 2) for f in floods], ""),
            row(f"[{over}] flood: first sent → backlogs empty (s)", [fmt(f.drain_s, 2) for f in floods], ""),
        ]
        for kind in _kinds(floods):
            label = f'gateway throttles ("{THROTTLED}")' if kind == THROTTLED else kind
            rows.append(row(f"[{over}] flooder got: {label}", [fmt(f.answers[kind]) for f in floods], ""))
        rows.append(row(f"[{over}] ws_message invocations it caused", [fmt(f.invocations) for f in floods], ""))
    slowdowns = ", ".join(f"over {n} connection{'s' if n > 1 else ''} x{result.slowdown(n):.2f}" for n in o.spreads)
    checked = ", ".join(fmt(result.flooded_p50(n)) for n in o.spreads)
    lines = [
        section("one user's message flood against another user's job"),
        f"  a victim publishes 1 product of {PHOTOS} photos ({PHOTOS + 1} steps, latency 0 ms) alone, then right "
        f"after another user's tabs sent",
        f"  {o.messages:,} plugin_result messages with unknown request ids as fast as they could, round robin over "
        f"{' then '.join(str(n) for n in o.spreads)} connection(s);",
        f"  {o.repetitions} runs each, {o.concurrency} instances per function, warm (and one untimed job of the "
        f"victim first); each flood meets fresh budgets: {_budget()}",
        f"  devstack started in {result.start_s:.1f} s; warm-up: all instances started in {result.prestart_s:.1f} s, "
        f"then one publish in {result.warmup_s:.1f} s",
        "",
        table(["figure", *runs, "p50"], rows),
        "  victim's job: POST /jobs sent → job.completed received by its tab",
        f"  slowdown under the flood (p50 / p50): {slowdowns}; plugin results of the victim the backend "
        f"rejected: {result.victim_rejected}",
        "",
        f"  check: victim's job under each flood p50 ({checked} ms) <= {CHECK_FACTOR:g} x alone "
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
        "budget": {
            "messages": MESSAGES_PER_WINDOW,
            "user_messages": MESSAGES_PER_USER_WINDOW,
            "window_s": MESSAGE_WINDOW_SECONDS,
        },
        "victim_job_ms": {
            "alone": [number(j.duration_ms) for j in result.baseline],
            "alone_p50": number(result.baseline_p50),
        },
        "victim_statuses": [j.status for j in [*result.baseline, *(f.job for f in result.floods)]],
        "spreads": {
            str(connections): {
                "victim_job_ms": [number(f.job.duration_ms) for f in result.floods_over(connections)],
                "victim_job_p50_ms": number(result.flooded_p50(connections)),
                "slowdown": number(result.slowdown(connections), 2),
                "floods": [
                    {
                        "send_s": number(f.send_s, 3),
                        "drain_s": number(f.drain_s, 3),
                        "answers": dict(sorted(f.answers.items())),
                        "ws_message_invocations": f.invocations,
                    }
                    for f in result.floods_over(connections)
                ],
            }
            for connections in result.options.spreads
        },
        "check": {"limit_ms": number(result.limit_ms), "ok": result.ok},
        "devstack_warnings": len(result.log_records),
    }
