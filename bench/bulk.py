"""eBay's bulk calls and Etsy's pace (issue 20), through the devstack at its fake eBay and Etsy.

1. eBay: one user publishes a batch of N products (POST /jobs/batch, 1 photo each) and the run waits until every job
   has ended; then the same on a second devstack started with CROSSLIST_BULK_CALLS=off (one call per step and job,
   as before). Calls per product are the fake eBay's recorded calls while the batch ran (OAuth left out); wall time is
   from the batch's POST to its last job's end (the API's timestamps); process_job invocations as bench/marketplaces.py
   counts them.
2. Etsy: one user publishes a batch of M products against the fake Etsy enforcing its per-second budget (a call beyond
   it is a 429). crosslist has no fixed gap between Etsy calls: a reply whose rate-limit headers say this second's
   budget is spent pauses the lane for a second (crosslist.marketplaces.api `_retry_after`). Shown: calls per second,
   on average and in the busiest second, against the budget, and the 429s (none expected).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from bench.loop import devstack, prestart
from bench.marketplaces import (
    NOT_USED,
    OAUTH_PATHS,
    ProcessJobWakes,
    Seller,
    Wake,
    _call_kind,
    _warm_up,
)
from bench.stats import fmt, number, section, table
from devstack.fake_http import Call, FakeServer
from devstack.stack import DevStack

TARGETS = {"ebay_bulk_calls_per_product": 0.15, "etsy_429s": 0}
ENDED = frozenset({"completed", "failed", "cancelled"})
POLL_S = 0.5  # GET /batches/{id}: one request for the whole batch
QUIET_S = 0.5
QUIET_CAP_S = 5.0


@dataclass(frozen=True)
class BulkOptions:
    ebay_products: int = 200
    etsy_products: int = 50
    concurrency: int = 2
    timeout_s: float = 600.0


@dataclass
class BatchRun:
    """One batch publish and what it cost."""

    label: str
    marketplace: str
    products: int
    counts: dict[str, int] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)  # to the fake while the batch ran, OAuth left out
    wakes: list[Wake] = field(default_factory=list)
    wall_s: float = math.nan  # the batch's POST -> its last job's end, from the API's timestamps
    errors: list[str] = field(default_factory=list)
    budget_per_second: int | None = None  # Etsy: the fake's per-second budget

    def per_product(self, value: float) -> float:
        return value / self.products if self.products else math.nan

    @property
    def kinds(self) -> Counter[str]:
        return Counter(_call_kind(call) for call in self.calls)

    @property
    def throttled(self) -> int:
        return sum(call.status == 429 for call in self.calls)

    @property
    def calls_per_second(self) -> float:
        if len(self.calls) < 2:
            return math.nan
        span = max(call.finished_at for call in self.calls) - min(call.started_at for call in self.calls)
        return len(self.calls) / span if span > 0 else math.nan

    @property
    def busiest_second(self) -> int:
        """The most calls started within any one second (a sliding window, as Etsy counts)."""
        starts = sorted(call.started_at for call in self.calls)
        most, first = 0, 0
        for last, started in enumerate(starts):
            while starts[first] <= started - 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most


@dataclass
class BulkResult:
    options: BulkOptions
    runs: list[BatchRun] = field(default_factory=list)
    phases_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def run(self, label: str) -> BatchRun | None:
        return next((one for one in self.runs if one.label == label), None)


def run(options: BulkOptions) -> BulkResult:
    """Two devstacks, one after the other: bulk calls on (eBay, then Etsy), then off (eBay)."""
    result = BulkResult(options)
    started = time.perf_counter()
    for label, environment in (("bulk", {}), ("single", {"CROSSLIST_BULK_CALLS": "off"})):
        phase = time.perf_counter()
        with devstack(options.concurrency, environment) as running:
            wakes = ProcessJobWakes(running.stack)
            asyncio.run(_drive(running.stack, wakes, options, result, label))
        result.phases_s[f"devstack with bulk calls {'on' if label == 'bulk' else 'off'}"] = time.perf_counter() - phase
    result.wall_s = time.perf_counter() - started
    return result


async def _drive(stack: DevStack, wakes: ProcessJobWakes, options: BulkOptions, result: BulkResult, label: str) -> None:
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.get_running_loop().run_in_executor(None, prestart, stack, options.concurrency, NOT_USED)
        await _warm_up(Seller(stack, http, f"bench-bulk-warmup-{label}"), options.timeout_s)
        ebay = Seller(stack, http, f"bench-bulk-ebay-{label}")
        await ebay.connect("ebay")
        result.runs.append(
            await _batch(
                stack,
                wakes,
                ebay,
                "ebay",
                products=options.ebay_products,
                label=f"ebay {label}",
                timeout=options.timeout_s,
            )
        )
        if label != "bulk":
            return
        etsy = Seller(stack, http, "bench-bulk-etsy")
        await etsy.connect("etsy")
        stack.etsy.enforce_rate_limits = True  # a call beyond the second's budget is a 429
        await asyncio.sleep(1.1)  # the settings' own reads leave this second's budget to the batch
        run = await _batch(
            stack, wakes, etsy, "etsy", products=options.etsy_products, label="etsy", timeout=options.timeout_s
        )
        run.budget_per_second = stack.etsy.rate_limit_per_second
        result.runs.append(run)


async def _batch(
    stack: DevStack,
    wakes: ProcessJobWakes,
    seller: Seller,
    marketplace: str,
    *,
    products: int,
    label: str,
    timeout: float,
) -> BatchRun:
    fake: FakeServer = stack.ebay if marketplace == "ebay" else stack.etsy
    product_ids = [await seller.create_product(number, 1) for number in range(1, products + 1)]
    first_call = len(fake.calls)
    started = time.perf_counter()
    body = {"marketplace": marketplace, "action": "publish", "product_ids": product_ids}
    batch_id = (await seller.call("POST", "/jobs/batch", body, expect=202))["id"]
    view = await seller.call("GET", f"/batches/{batch_id}")
    deadline = time.monotonic() + timeout
    while any(view["counts"].get(status) for status in view["counts"] if status not in ENDED):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL_S)
        view = await seller.call("GET", f"/batches/{batch_id}")
    quiet_until = time.perf_counter() + QUIET_CAP_S
    while not wakes.quiet_for(QUIET_S) and time.perf_counter() < quiet_until:  # a last timer or wake-up
        await asyncio.sleep(0.1)
    ended = time.perf_counter()
    calls = [call for call in fake.calls[first_call:] if call.path not in OAUTH_PATHS[marketplace]]
    jobs = view["jobs"]
    created = [datetime.fromisoformat(job["created_at"]) for job in jobs]
    completed = [datetime.fromisoformat(job["completed_at"]) for job in jobs if job.get("completed_at")]
    wall = (max(completed) - min(created)).total_seconds() if completed and len(completed) == len(jobs) else math.nan
    errors = sorted({f"{job['error']['code']}: {job['error']['message']}" for job in jobs if job.get("error")})
    return BatchRun(
        label,
        marketplace,
        products,
        counts={status: count for status, count in view["counts"].items() if count},
        calls=calls,
        wakes=[wake for wake in wakes.between(started, ended) if wake.marketplace == marketplace],
        wall_s=wall,
        errors=errors[:3],
    )


# ------------------------------------------------------------------------------------------------------------
# Figures and report
# ------------------------------------------------------------------------------------------------------------


def _run_figures(one: BatchRun) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "products": one.products,
        "counts": one.counts,
        "errors": one.errors,
        "calls": len(one.calls),
        "calls_per_product": number(one.per_product(len(one.calls)), 3),
        "calls_by_kind": dict(one.kinds.most_common()),
        "wall_s": number(one.wall_s, 1),
        "products_per_second": number(one.products / one.wall_s if one.wall_s else math.nan, 2),
        "process_job_invocations_per_product": number(one.per_product(len(one.wakes)), 3),
        "process_job_billed_ms_per_product": number(one.per_product(sum(w.billed_ms for w in one.wakes)), 1),
    }
    if one.marketplace == "etsy":
        figures |= {
            "budget_per_second": one.budget_per_second,
            "calls_per_second_mean": number(one.calls_per_second, 2),
            "calls_in_busiest_second": one.busiest_second,
            "http_429": one.throttled,
        }
    return figures


def met(result: BulkResult) -> dict[str, bool | None]:
    bulk, etsy = result.run("ebay bulk"), result.run("etsy")
    return {
        "ebay_bulk_calls_per_product": None
        if bulk is None
        else bulk.per_product(len(bulk.calls)) <= TARGETS["ebay_bulk_calls_per_product"],
        "ebay_bulk_none_failed": None if bulk is None else set(bulk.counts) == {"completed"},
        "etsy_no_429": None if etsy is None else etsy.throttled == TARGETS["etsy_429s"],
        "etsy_none_failed": None if etsy is None else set(etsy.counts) == {"completed"},
    }


def figures(result: BulkResult) -> dict[str, Any]:
    o = result.options
    return {
        "targets": TARGETS,
        "met": met(result),
        "options": {"ebay_products": o.ebay_products, "etsy_products": o.etsy_products, "concurrency": o.concurrency},
        **{one.label.replace(" ", "_"): _run_figures(one) for one in result.runs},
        "phases_s": {name: number(seconds, 1) for name, seconds in result.phases_s.items()},
        "wall_s": number(result.wall_s, 1),
    }


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("OK" if ok else "MISSED")


def report(result: BulkResult) -> str:
    o, checks = result.options, met(result)
    lines = [section("Bulk calls on eBay, Etsy's pace (fake eBay and Etsy, through the devstack)"), ""]
    lines.append(
        f"  1. a batch of {o.ebay_products} eBay publishes (1 photo each), bulk calls on, then off (a second devstack"
        " with CROSSLIST_BULK_CALLS=off)"
    )
    rows = []
    for label in ("ebay bulk", "ebay single"):
        one = result.run(label)
        if one is None:
            continue
        rows.append(
            [
                label,
                ", ".join(f"{status} {count}" for status, count in one.counts.items()),
                fmt(len(one.calls)),
                fmt(one.per_product(len(one.calls)), 3),
                fmt(one.wall_s, 1),
                fmt(one.per_product(len(one.wakes)), 2),
                fmt(one.per_product(sum(w.billed_ms for w in one.wakes)), 0),
            ]
        )
    lines.append(
        table(["batch", "jobs", "calls", "calls/product", "wall s", "invocations/product", "billed ms/product"], rows)
    )
    for label in ("ebay bulk", "ebay single"):
        one = result.run(label)
        if one is not None:
            lines.append(f"  {label} calls: " + ", ".join(f"{kind} {n}" for kind, n in one.kinds.most_common()))
            lines += [f"  {label} error: {error}" for error in one.errors]
    bulk = result.run("ebay bulk")
    if bulk is not None:
        lines.append(
            f"  target: eBay calls per product <= {TARGETS['ebay_bulk_calls_per_product']}:"
            f" {fmt(bulk.per_product(len(bulk.calls)), 3)} {_mark(checks['ebay_bulk_calls_per_product'])}"
        )
    etsy = result.run("etsy")
    if etsy is not None:
        lines += [
            "",
            f"  2. a batch of {o.etsy_products} Etsy publishes (1 photo each: draft, photo, activation) against the"
            f" fake Etsy's budget of {etsy.budget_per_second} calls a second (enforced: beyond it, a 429)",
            table(
                ["figure", "now", "target", ""],
                [
                    ["jobs", ", ".join(f"{s} {n}" for s, n in etsy.counts.items()), "all completed", ""],
                    ["calls", fmt(len(etsy.calls)), "", ""],
                    ["calls per second, mean over the batch", fmt(etsy.calls_per_second, 2), "", ""],
                    ["calls started in the busiest second", fmt(etsy.busiest_second), f"{etsy.budget_per_second}", ""],
                    ["HTTP 429 answered", fmt(etsy.throttled), "0", _mark(checks["etsy_no_429"])],
                    ["wall s (POST -> last job ended)", fmt(etsy.wall_s, 1), "", ""],
                    [
                        "process_job invocations per product",
                        fmt(etsy.per_product(len(etsy.wakes)), 2),
                        "",
                        "",
                    ],
                ],
            ),
        ]
        causes = Counter(wake.cause for wake in etsy.wakes)
        lines.append(f"  Etsy process_job wake-ups by cause: {', '.join(f'{c} {n}' for c, n in causes.items())}")
        lines += [f"  etsy error: {error}" for error in etsy.errors]
    lines.append(
        f"  section took {result.wall_s:.0f} s: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.phases_s.items())
    )
    return "\n".join(lines)
