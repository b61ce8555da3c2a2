"""`python -m bench`: print cold start, core loop, memory, flood, engine and eBay/Etsy figures (bench/__init__.py)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from bench import bulk, cold, deploy_cost, engine, flood, imports, loop, marketplaces, results
from bench.stats import machine

COLD_RUNS = 3


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark crosslist: cold starts, the publish loop through the devstack, worker memory, "
        "one user's message flood against another user's job, the event-driven engine's figures next to before, "
        "publishing on the fake eBay and Etsy and the auto-delist delay, eBay's bulk calls and Etsy's pace, "
        "importing a seller's three shops.",
    )
    parser.add_argument("--users", type=_positive, default=4, help="users publishing at once (default 4)")
    parser.add_argument("--products", type=_positive, default=3, help="products per user (default 3)")
    parser.add_argument("--photos", type=_positive, default=3, help="photos per product (default 3)")
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0, help="simulated Vinted latency per plugin command (default 0)"
    )
    parser.add_argument(
        "--only",
        choices=("cold", "loop", "memory", "flood", "engine", "marketplaces", "bulk", "imports", "cost"),
        help="run one section only",
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=2, help="instances per function, as the devstack's (default 2)"
    )
    parser.add_argument("--no-warmup", action="store_true", help="let the measured burst pay for the first instances")
    parser.add_argument(
        "--flood",
        type=_positive,
        default=2000,
        metavar="N",
        help="messages the flooding user sends before each of the victim's jobs (default 2000)",
    )
    parser.add_argument(
        "--sales",
        type=_positive,
        default=5,
        help="marketplaces: sales on eBay timed until the Etsy listing is delisted, a fresh product each (default 5)",
    )
    parser.add_argument(
        "--push-sales",
        type=_positive,
        default=20,
        help="marketplaces: sales on eBay whose import its push notification starts, timed from the sale (default 20)",
    )
    parser.add_argument(
        "--bulk-products",
        type=_positive,
        default=200,
        help="bulk: products in the eBay batch published with bulk calls on, then off (default 200)",
    )
    parser.add_argument(
        "--etsy-products", type=_positive, default=50, help="bulk: products in the Etsy batch (default 50)"
    )
    parser.add_argument(
        "--import-size",
        choices=("full", "small"),
        default="full",
        help="imports: the seeded shops, full (500 eBay, 200 Etsy, 300 Vinted) or small (a tenth; default full)",
    )
    parser.add_argument(
        "--photo-matching",
        choices=("on", "off"),
        default="on",
        help="imports: compare the listings' first photos (default on; off: titles and prices only)",
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the jobs (default 90)")
    return parser.parse_args(argv)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None, results_path: Path = results.RESULTS) -> int:
    args = parse(argv)
    # SIGTERM unwinds like Ctrl-C: the finally blocks stop the devstack, its workers and PostgreSQL.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args, argv, results_path)
    except KeyboardInterrupt:
        print("\nbenchmark interrupted: what it started has been stopped and removed", file=sys.stderr, flush=True)
        return 130


def _write_results(figures: dict[str, Any], argv: Sequence[str] | None, path: Path) -> None:
    """Merge this run's sections into the results file (the others in it are kept), see bench/results.py."""
    results.write(figures, list(sys.argv[1:] if argv is None else argv), path)
    print(f"\nfigures written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


def _run(args: argparse.Namespace, argv: Sequence[str] | None, results_path: Path) -> int:
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    print("crosslist benchmark", flush=True)
    print(machine(), flush=True)

    if args.only in (None, "cold"):
        measured = cold.measure(COLD_RUNS)
        print(cold.report(measured, COLD_RUNS, cold.before(results.read(results_path))), flush=True)
        figures["cold"] = cold.figures(measured, COLD_RUNS)

    if args.only in (None, "loop", "memory"):
        options = loop.LoopOptions(
            users=args.users,
            products=args.products,
            photos=args.photos,
            latency_ms=args.latency_ms,
            concurrency=args.concurrency,
            warmup=not args.no_warmup,
            timeout_s=args.timeout,
        )
        result = loop.run(options)
        if args.only in (None, "loop"):
            print(loop.report_loop(result), flush=True)
            figures["loop"] = loop.figures_loop(result)
        if args.only in (None, "memory"):
            if args.only == "memory":
                print(f"\n  (after a core loop of {len(result.jobs)} jobs, whose figures are not shown)")
            print(loop.report_memory(result), flush=True)
            figures["memory"] = loop.figures_memory(result)
        print(loop.report_logs(result), flush=True)

    if args.only in (None, "flood"):
        flooded = flood.run(
            flood.FloodOptions(messages=args.flood, concurrency=args.concurrency, timeout_s=args.timeout)
        )
        print(flood.report(flooded), flush=True)
        figures["flood"] = flood.figures(flooded)

    if args.only in (None, "engine"):
        measured_engine = engine.run(
            engine.EngineOptions(concurrency=args.concurrency, timeout_s=max(args.timeout, 120.0))
        )
        print(engine.report(measured_engine), flush=True)
        figures["engine"] = engine.figures(measured_engine)

    if args.only in (None, "marketplaces"):
        measured_marketplaces = marketplaces.run(
            marketplaces.MarketplacesOptions(
                users=args.users,
                products=args.products,
                photos=args.photos,
                sales=args.sales,
                push_sales=args.push_sales,
                concurrency=args.concurrency,
                warmup=not args.no_warmup,
                timeout_s=args.timeout,
            )
        )
        print(marketplaces.report(measured_marketplaces), flush=True)
        figures["marketplaces"] = marketplaces.figures(measured_marketplaces)

    if args.only in (None, "bulk"):
        measured_bulk = bulk.run(
            bulk.BulkOptions(
                ebay_products=args.bulk_products,
                etsy_products=args.etsy_products,
                concurrency=args.concurrency,
                timeout_s=max(args.timeout, 600.0),
            )
        )
        print(bulk.report(measured_bulk), flush=True)
        figures["bulk"] = bulk.figures(measured_bulk)

    if args.only in (None, "imports"):
        measured_imports = imports.run(
            imports.ImportsOptions(
                size=args.import_size,
                concurrency=args.concurrency,
                timeout_s=max(args.timeout, 900.0),
                photo_matching=args.photo_matching == "on",
            )
        )
        print(imports.report(measured_imports), flush=True)
        figures["imports"] = imports.figures(measured_imports)

    if figures:
        _write_results(figures, argv, results_path)
    if args.only in (None, "cost"):
        # Priced, not measured (nothing to write): after the other sections, so per 1 000 jobs uses this run's engine.
        print(deploy_cost.report(results_path), flush=True)
    print(f"\nbenchmark finished in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
