"""Imports (issue 20): a reseller's three shops imported at once through the devstack, then again.

The shops are devstack.shops' seeded ones (seed 7): at the full size 500 eBay listings (100 made on ebay.com, outside
the Inventory API), 200 Etsy and 300 Vinted; `--import-size small` seeds a tenth of that. One user connects eBay and
Etsy at their fakes as a seller would (bench/marketplaces.py's Seller), opens one plugin tab (the simulator over a
real WebSocket, 300 ms per command as `crosslist dev plugin`), and the functions run with Vinted's person-like pacing
on at its production ranges (CROSSLIST_PACING=on, nothing shortened: the devstack's own default is off).

1. POST /imports for the three marketplaces at once, then GET /imports/{id} every 0.5 s until it is not running.
   Per marketplace: the job's created_at -> completed_at (GET /jobs/{id}), the HTTP calls made to the fake eBay and
   Etsy while it ran (their `calls`, OAuth left out), the plugin commands the tab answered (its `on_result`: the
   Vinted wardrobe reads), and process_job invocations (bench/marketplaces.py's ProcessJobWakes), each per listing
   seeded there. eBay's wait for its Feed report is the fake's own: ready at the third look, which the import makes
   after FIRST_POLL_SECONDS then POLL_SECONDS twice (marketplaces/ebay/imports.py); `small` makes it ready at the
   first look (the fake's `feed_task_polls`, so a smoke run stays short; the import's code is unchanged), and skips
   the warm-up publish (the instances are started beforehand either way).
2. Duplicates: the truth's groups (the listings that are one item) whose listings ended up on two or more products
   while none of them waits as a proposal; and listings on two products at once (impossible by the schema). Read
   from GET /products (every page: each product shows its listings).
3. Matches against the truth (devstack.shops.score, over pairs of listings): the automatic links alone, then with
   every pending proposal counted as the pairs it proposes (its listing with each listing of the proposed product,
   and with the other proposals made to that product); how many proposals the user must review; look-alike pairs
   (another size or colour, the same price) linked, and proposed.
4. A second import of the same shops: its wall time and counts (nothing created, linked or proposed).
5. What was skipped, by marketplace and reason.

Why a group was split is read from the devstack's PostgreSQL (imported_listings: decision, reason, confidence),
for the report's examples only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from sqlalchemy import create_engine, text

from bench.loop import devstack, prestart, token
from bench.marketplaces import OAUTH_PATHS, ProcessJobWakes, Seller, Wake, _call_kind, _warm_up
from bench.stats import fmt, number, phase, section, table
from devstack.fake_http import Call, FakeServer
from devstack.plugin import JsonDict, VintedSimulator, run_plugin
from devstack.shops import Score, Seeded, Shops, pairs, score, seed_all, sized_shops
from devstack.stack import DevStack

Size = Literal["full", "small"]
MARKETPLACES = ("ebay", "etsy", "vinted")
LABELS = {"ebay": "eBay", "etsy": "Etsy", "vinted": "Vinted"}
TARGETS: dict[str, float] = {
    "duplicates": 0,  # truth groups on 2+ products, none of their listings pending as a proposal
    "listings_on_two_products": 0,
    "distractor_pairs_linked": 0,
    "auto_link_precision": 0.99,  # at least
    "second_import_created_linked_proposed": 0,
}
SEED = 7
USER = "bench-importer"
WARMUP_USER = "bench-importer-warmup"
PACING = {"CROSSLIST_PACING": "on"}  # Vinted paced like a person, at the production ranges (settings.py)
VINTED_LATENCY_MS = 300  # per plugin command, as `crosslist dev plugin` answers by default
IMAGES_PATH = "/__devstack/images"  # the devstack's demo photos, as `crosslist dev seed-shops` points them
POLL_S = 0.5  # GET /imports/{id}
QUIET_S = 0.5
QUIET_CAP_S = 5.0
PRODUCTS_PAGE = 100  # GET /products' largest page
EXAMPLES = 5
# Pools the section never calls: not started beforehand.
NOT_USED = ("oauth_refresh", "sweeper", "scheduler", "deliver_webhooks", "notifications", "migrate")


@dataclass(frozen=True)
class ImportsOptions:
    size: Size = "full"
    seed: int = SEED
    concurrency: int = 2
    timeout_s: float = 900.0  # for each import
    photo_matching: bool = True  # off: titles and prices only (CROSSLIST_PHOTO_MATCHING)


# ------------------------------------------------------------------------------------------------------------
# What the run observed
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One plugin command the tab answered."""

    kind: str  # "GET wardrobe/{id}/items"
    success: bool
    at: float  # perf_counter when answered


@dataclass
class JobRun:
    """One marketplace's import job and what it cost."""

    marketplace: str
    job_id: str
    listings: int  # seeded on the marketplace
    status: str = "?"
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    calls: list[Call] = field(default_factory=list)  # to the fake (eBay, Etsy), OAuth left out
    commands: list[Command] = field(default_factory=list)  # answered by the tab (Vinted)
    wakes: list[Wake] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        if self.created_at is None or self.completed_at is None:
            return math.nan
        return (self.completed_at - self.created_at).total_seconds()

    @property
    def requests(self) -> int:
        """HTTP calls to the fake, or plugin commands for Vinted."""
        return len(self.commands) if self.marketplace == "vinted" else len(self.calls)

    def per_listing(self, value: float) -> float:
        return value / self.listings if self.listings else math.nan

    @property
    def longest_ms(self) -> float:
        return max((wake.duration_ms for wake in self.wakes), default=math.nan)

    @property
    def kinds(self) -> Counter[str]:
        if self.marketplace == "vinted":
            return Counter(command.kind for command in self.commands)
        return Counter(_call_kind(call) for call in self.calls)

    def count(self, name: str) -> int:
        value = self.result.get(name, 0)
        return value if isinstance(value, int) else 0


@dataclass
class ImportRun:
    label: str
    import_id: str = ""
    status: str = "?"
    wall_s: float = math.nan  # POST -> the first GET that no longer says running
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    jobs: dict[str, JobRun] = field(default_factory=dict)
    report_wait_s: float = math.nan  # eBay: its Feed report asked -> downloaded
    report_looks: int = 0
    # eBay's job in phases, from the fake's calls: inventory items and offers (first call -> the report asked),
    # the report's wait, the listings made on ebay.com (the report downloaded -> the last Browse call)
    ebay_phases_s: dict[str, float] = field(default_factory=dict)
    fake_ms_per_call: dict[str, float] = field(default_factory=dict)  # the fakes' own time to answer, mean

    def count(self, name: str) -> int:
        return int(self.counts.get(name, 0))

    @property
    def skipped_by_reason(self) -> Counter[tuple[str, str]]:
        return Counter((str(one["marketplace"]), str(one["reason"])) for one in self.skipped)


@dataclass
class Analysis:
    """The products the import made, against the truth."""

    products: int = 0
    auto: Score | None = None
    with_proposals: Score | None = None
    proposals: int = 0  # pending, as GET /imports/{id}/matches lists them
    proposals_right: int = 0  # proposing a product that holds the same item
    distractor_pairs: int = 0
    distractors_linked: int = 0
    distractors_proposed: int = 0
    truth_groups: int = 0
    duplicates: int = 0  # truth groups on 2+ products, none pending
    duplicates_untellable: int = 0  # of those, items with a listing both reworded and re-photographed
    split_pending: int = 0  # on 2+ products, with a listing pending as a proposal
    listings_on_two_products: int = 0
    groups_whole: int = 0  # every listing on one product
    examples: list[str] = field(default_factory=list)
    wrong_links: list[str] = field(default_factory=list)
    split_reasons: Counter[str] = field(default_factory=Counter)  # the decision of each split group's listings
    # eBay listings on a product, and whether the product kept what crosslist needs to revise or end them there: the
    # listing's own SKU (Inventory API listings) or the mark `outside_inventory_api` (listings made on ebay.com).
    ebay_inventory_listed: int = 0
    ebay_sku_lost: Counter[str] = field(default_factory=Counter)  # by how the listing got there (created, linked)
    ebay_outside_listed: int = 0
    ebay_outside_unmarked: Counter[str] = field(default_factory=Counter)
    # The harder pairs (the shops' notes) found automatically, and with the pending proposals: titles reworded (the
    # photo re-hosted), items re-photographed on their other marketplace.
    hard: dict[str, tuple[Score, Score]] = field(default_factory=dict)
    stock_photo_pairs: int = 0  # look-alikes sharing one stock photo (another size or colour)
    stock_photo_linked: int = 0
    stock_photo_proposed: int = 0
    by_photo: Counter[str] = field(default_factory=Counter)  # decisions the photo made (linked, proposed)


@dataclass
class ImportsResult:
    options: ImportsOptions
    shops: dict[str, int] = field(default_factory=dict)
    first: ImportRun | None = None
    second: ImportRun | None = None
    analysis: Analysis | None = None
    products_after_second: int | None = None
    phases_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    log_records: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------
# Running it
# ------------------------------------------------------------------------------------------------------------


def run(options: ImportsOptions) -> ImportsResult:
    """One devstack (Vinted pacing on), one seller with the seeded shops, two imports."""
    result = ImportsResult(options)
    started = time.perf_counter()
    photos = {"CROSSLIST_PHOTO_MATCHING": "on" if options.photo_matching else "off"}
    with devstack(options.concurrency, {**PACING, **photos}) as running:
        result.phases_s["devstack start"] = running.start_s
        stack = running.stack
        if options.size == "small":
            stack.ebay.feed_task_polls = 0  # the report is ready at the import's first look
        wakes = ProcessJobWakes(stack)
        asyncio.run(_drive(stack, wakes, options, result))
    result.log_records = list(running.logs.lines)
    result.wall_s = time.perf_counter() - started
    return result


class Tab:
    """The seller's plugin tab: the simulator's fake Vinted holding the seeded wardrobe, over a real WebSocket."""

    def __init__(self, stack: DevStack) -> None:
        self.vinted = VintedSimulator(latency_ms=VINTED_LATENCY_MS)
        self.commands: list[Command] = []
        self.events: Counter[str] = Counter()
        self._stack = stack
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        def on_result(command: JsonDict, reply: JsonDict) -> None:
            self.commands.append(Command(_command_kind(command), bool(reply.get("success")), time.perf_counter()))

        def on_event(message: JsonDict) -> None:
            self.events[str(message.get("type"))] += 1

        self._task = asyncio.create_task(
            run_plugin(
                self._stack.ws_url,
                token(self._stack, USER),
                self.vinted,
                stop=self._stop,
                on_event=on_event,
                on_result=on_result,
                on_connected=self._connected.set,
                on_notice=lambda _line: None,
            ),
            name=f"tab-{USER}",
        )
        connected = asyncio.create_task(self._connected.wait())
        await asyncio.wait({self._task, connected}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if not self._connected.is_set():
            connected.cancel()
            if self._task.done():
                self._task.result()  # raises why the tab could not connect
            raise RuntimeError(f"the tab of {USER} did not connect within 30 s")

    def between(self, start: float, end: float) -> list[Command]:
        return [command for command in self.commands if start <= command.at <= end]

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(self._task, return_exceptions=True), 10)


_DIGITS = re.compile(r"^(?=.*\d)[\w.-]+$")


def _command_kind(command: JsonDict) -> str:
    """`GET wardrobe/{id}/items`: the method and the path without its query, ids replaced, /api/v2/ dropped."""
    path = urlsplit(str(command.get("path", ""))).path.removeprefix("/api/v2/")
    parts = ["{id}" if _DIGITS.match(part) else part for part in path.split("/")]
    return f"{str(command.get('method', '')).upper()} {'/'.join(parts)}"


async def _drive(stack: DevStack, wakes: ProcessJobWakes, options: ImportsOptions, result: ImportsResult) -> None:
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        full = options.size == "full"
        with phase(result.phases_s, "instances started" + (", warm-up publish" if full else "")):
            await asyncio.get_running_loop().run_in_executor(None, prestart, stack, options.concurrency, NOT_USED)
            if full:  # a smoke run lets the first import pay for its instances' first connections
                await _warm_up(Seller(stack, http, WARMUP_USER), 120.0)
        seller = Seller(stack, http, USER)
        tab = Tab(stack)
        try:
            with phase(result.phases_s, "connect, seed the shops, open the tab"):
                await asyncio.gather(seller.connect("ebay"), seller.connect("etsy"))
                shops = sized_shops(
                    options.seed, small=options.size == "small", image_base=stack.http_url + IMAGES_PATH
                )
                seeded = seed_all(shops, ebay=stack.ebay, etsy=stack.etsy, vinted=tab.vinted, account=USER)
                result.shops = shops.counts()
                await tab.open()
            with phase(result.phases_s, "first import"):
                result.first = await _import(
                    stack, wakes, seller, tab, shops, label="first", timeout_s=options.timeout_s
                )
            with phase(result.phases_s, "products and matches read"):
                matches = (await seller.call("GET", f"/imports/{result.first.import_id}/matches"))["items"]
                products = await _products(seller)
                decisions = await asyncio.to_thread(_decisions, stack.database_url)
                result.analysis = analyse(seeded, shops, products, matches, decisions)
            with phase(result.phases_s, "second import"):
                result.second = await _import(
                    stack, wakes, seller, tab, shops, label="second", timeout_s=options.timeout_s
                )
            result.products_after_second = len(await _products(seller))
        finally:
            await tab.close()


def _seeded_listings(shops: Shops) -> dict[str, int]:
    return {"ebay": len(shops.ebay), "etsy": len(shops.etsy), "vinted": len(shops.vinted)}


async def _import(
    stack: DevStack, wakes: ProcessJobWakes, seller: Seller, tab: Tab, shops: Shops, *, label: str, timeout_s: float
) -> ImportRun:
    fakes: dict[str, FakeServer] = {"ebay": stack.ebay, "etsy": stack.etsy}
    first_call = {marketplace: len(fake.calls) for marketplace, fake in fakes.items()}
    started = time.perf_counter()
    view = await seller.call("POST", "/imports", {"marketplaces": list(MARKETPLACES)}, expect=202)
    run = ImportRun(label, import_id=str(view["id"]))
    deadline = time.monotonic() + timeout_s
    while view["status"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        view = await seller.call("GET", f"/imports/{run.import_id}")
    if view["status"] != "running":
        run.wall_s = time.perf_counter() - started
    quiet_until = time.perf_counter() + QUIET_CAP_S
    while not wakes.quiet_for(QUIET_S) and time.perf_counter() < quiet_until:  # a last timer or wake-up
        await asyncio.sleep(0.1)
    ended = time.perf_counter()
    run.status = str(view["status"])
    run.counts = {key: int(value) for key, value in view["counts"].items()}
    run.skipped = list(view["skipped"])
    run.warnings = list(view["warnings"])
    listings = _seeded_listings(shops)
    window = wakes.between(started, ended)
    for entry in view["jobs"]:
        marketplace = str(entry["marketplace"])
        job = await seller.job(str(entry["job_id"]))
        one = JobRun(
            marketplace,
            str(entry["job_id"]),
            listings[marketplace],
            status=str(job["status"]),
            created_at=_when(job.get("created_at")),
            started_at=_when(job.get("started_at")),
            completed_at=_when(job.get("completed_at")),
            result=dict(job.get("result") or job.get("accumulated_data", {}).get("counts") or {}),
            error=f"{job['error']['code']}: {job['error']['message']}" if job.get("error") else None,
            wakes=[wake for wake in window if wake.marketplace == marketplace],
        )
        if marketplace in fakes:
            one.calls = [
                call
                for call in fakes[marketplace].calls[first_call[marketplace] :]
                if call.path not in OAUTH_PATHS[marketplace] and call.account != WARMUP_USER
            ]
        else:
            one.commands = tab.between(started, ended)
        run.jobs[marketplace] = one
    ebay = run.jobs.get("ebay")
    if ebay is not None:
        asked = [c for c in ebay.calls if c.method == "POST" and c.path.endswith("/inventory_task")]
        downloaded = [c for c in ebay.calls if c.path.endswith("/download_result_file") and c.status == 200]
        run.report_looks = sum(c.method == "GET" and "/inventory_task/" in c.path for c in ebay.calls)
        if asked and downloaded:
            run.report_wait_s = downloaded[-1].finished_at - asked[0].started_at
            ordered = sorted(ebay.calls, key=lambda call: call.started_at)
            run.ebay_phases_s = {
                "inventory_items_and_offers": asked[0].started_at - ordered[0].started_at,
                "report_wait": run.report_wait_s,
                "listings_made_on_ebay_com": ordered[-1].finished_at - downloaded[-1].finished_at,
            }
    for marketplace, one in run.jobs.items():
        if one.calls:
            run.fake_ms_per_call[marketplace] = (
                sum(call.finished_at - call.started_at for call in one.calls) / len(one.calls) * 1000
            )
    return run


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


async def _products(seller: Seller) -> list[dict[str, Any]]:
    """Every product of the seller with its listings (GET /products, page after page)."""
    found: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = await seller.call("GET", f"/products?limit={PRODUCTS_PAGE}&offset={offset}")
        found += page["items"]
        offset = page["next_offset"]
    return found


def _decisions(database_url: str) -> dict[tuple[str, str], str]:
    """(marketplace, external id) -> "decision reason confidence" of each listing the imports recorded."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT marketplace, external_id, decision, reason, confidence FROM imported_listings"
                    " WHERE user_id = :user"
                ),
                {"user": USER},
            )
            return {
                (str(row.marketplace), str(row.external_id)): " ".join(
                    part for part in (row.decision, row.reason, f"{row.confidence}" if row.confidence else "") if part
                )
                for row in rows
            }
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------------------------
# Against the truth
# ------------------------------------------------------------------------------------------------------------

Key = tuple[str, str]  # (marketplace, external id)


def analyse(
    seeded: Seeded,
    shops: Shops,
    products: list[dict[str, Any]],
    matches: list[dict[str, Any]],
    decisions: Mapping[Key, str] | None = None,
) -> Analysis:
    """Duplicates, links and proposals against the truth (pure: the API's views in, figures out)."""
    decisions = decisions or {}
    product_of: dict[Key, set[str]] = defaultdict(set)
    listings_of: dict[str, dict[str, str]] = {}
    for product in products:
        mine = listings_of.setdefault(str(product["id"]), {})
        for listing in product["listings"]:
            key = (str(listing["marketplace"]), str(listing["external_id"]))
            product_of[key].add(str(product["id"]))
            mine[key[0]] = key[1]
    linked_groups = [group for group in listings_of.values() if len(group) > 1]
    pending = [match for match in matches if match.get("status") == "proposed"]
    waiting = {(str(match["marketplace"]), str(match["external_id"])) for match in pending}

    found = Analysis(products=len(products), proposals=len(pending))
    found.auto = score(seeded.truth, linked_groups)
    proposed_groups = _proposed_pairs(pending, listings_of)
    found.with_proposals = score(seeded.truth, [*linked_groups, *proposed_groups])
    truth_pairs, distractor_pairs = pairs(seeded.truth), pairs(seeded.distractors)
    found.distractor_pairs = len(distractor_pairs)
    found.distractors_linked = len(distractor_pairs & pairs(linked_groups))
    found.distractors_proposed = len(distractor_pairs & pairs(proposed_groups))
    found.proposals_right = sum(
        any(pair in truth_pairs for pair in pairs(_proposal_groups(match, listings_of))) for match in pending
    )
    found.listings_on_two_products = sum(len(owners) > 1 for owners in product_of.values())

    titles = _titles(seeded, shops)
    found.truth_groups = len(seeded.truth)
    untellable = pairs(seeded.notes.get("reworded", [])) & pairs(seeded.notes.get("rephotographed", []))
    for group in seeded.truth:
        keys = sorted(group.items())
        owners = {owner for key in keys for owner in product_of.get(key, ())}
        if len(owners) <= 1:
            found.groups_whole += int(len(owners) == 1 and all(key in product_of for key in keys))
            continue
        if any(key in waiting for key in keys):
            found.split_pending += 1
            continue
        found.duplicates += 1
        found.duplicates_untellable += bool(pairs([group]) & untellable)
        for key in keys:
            found.split_reasons[f"{key[0]} {_decision_kind(decisions.get(key, '?'))}"] += 1
        if len(found.examples) < EXAMPLES:
            found.examples.append(
                " | ".join(f"{LABELS[m]} {titles.get((m, i), i)} [{decisions.get((m, i), '?')}]" for m, i in keys)
            )
    _ebay_attributes(found, seeded, shops, products, decisions)
    _hard_pairs(found, seeded, linked_groups, proposed_groups, decisions)
    for pair in sorted(pairs(linked_groups) - truth_pairs, key=sorted)[:EXAMPLES]:
        found.wrong_links.append(
            " = ".join(f"{LABELS[m]} {titles.get((m, i), i)} [{decisions.get((m, i), '?')}]" for m, i in sorted(pair))
        )
    return found


def _hard_pairs(
    found: Analysis,
    seeded: Seeded,
    linked: list[dict[str, str]],
    proposed: list[dict[str, str]],
    decisions: Mapping[Key, str],
) -> None:
    notes = seeded.notes
    rephotographed = pairs(notes.get("rephotographed", []))
    subsets = {
        "reworded titles, photo re-hosted": pairs(notes.get("reworded", [])) - rephotographed,
        "re-photographed": rephotographed,
    }
    for name, subset in subsets.items():
        truth = [dict(pair) for pair in subset]
        found.hard[name] = (score(truth, linked), score(truth, [*linked, *proposed]))
    stock = pairs(notes.get("stock_photo_distractors", []))
    found.stock_photo_pairs = len(stock)
    found.stock_photo_linked = len(stock & pairs(linked))
    found.stock_photo_proposed = len(stock & pairs(proposed))
    found.by_photo = Counter(decision.split()[0] for decision in decisions.values() if "title_price_photo" in decision)


def _ebay_attributes(
    found: Analysis, seeded: Seeded, shops: Shops, products: list[dict[str, Any]], decisions: Mapping[Key, str]
) -> None:
    """Does each product with an eBay listing keep that listing's SKU, or its mark of a listing made on ebay.com?"""
    by_id = {seeded.ids.get("ebay", {}).get(listing.key): listing for listing in shops.ebay if not listing.variations}
    for product in products:
        ebay = (product.get("marketplace_attributes") or {}).get("ebay") or {}
        for listing in product["listings"]:
            seeded_listing = by_id.get(str(listing["external_id"])) if listing["marketplace"] == "ebay" else None
            if seeded_listing is None:
                continue
            how = _decision_kind(decisions.get(("ebay", str(listing["external_id"])), "?")).split(" ")[0]
            if seeded_listing.inventory_api:
                found.ebay_inventory_listed += 1
                if ebay.get("sku") != seeded_listing.sku:
                    found.ebay_sku_lost[how] += 1
            else:
                found.ebay_outside_listed += 1
                if ebay.get("outside_inventory_api") is not True:
                    found.ebay_outside_unmarked[how] += 1


def _proposal_groups(match: Mapping[str, Any], listings_of: Mapping[str, Mapping[str, str]]) -> list[dict[str, str]]:
    """The pairs one proposal stands for: its listing with each listing of the product it proposes."""
    product = match.get("product") or {}
    theirs = listings_of.get(str(product.get("id")), {})
    marketplace, external_id = str(match["marketplace"]), str(match["external_id"])
    return [{marketplace: external_id, m: i} for m, i in theirs.items() if m != marketplace]


def _proposed_pairs(
    pending: Iterable[Mapping[str, Any]], listings_of: Mapping[str, Mapping[str, str]]
) -> list[dict[str, str]]:
    """Every pending proposal as the pairs it would make if accepted, with the other proposals to its product."""
    groups: list[dict[str, str]] = []
    to_product: dict[str, list[Key]] = defaultdict(list)
    for match in pending:
        groups += _proposal_groups(match, listings_of)
        product = match.get("product") or {}
        to_product[str(product.get("id"))].append((str(match["marketplace"]), str(match["external_id"])))
    for proposed in to_product.values():
        for n, (m, i) in enumerate(proposed):
            groups += [{m: i, other: j} for other, j in proposed[n + 1 :] if other != m]
    return groups


def _decision_kind(decision: str) -> str:
    return " ".join(decision.split()[:2]) if decision else "?"


def _titles(seeded: Seeded, shops: Shops) -> dict[Key, str]:
    """(marketplace, id) -> 'title EUR price' of each seeded listing, for the examples."""
    found: dict[Key, str] = {}
    for marketplace, listings in (("ebay", shops.ebay), ("etsy", shops.etsy), ("vinted", shops.vinted)):
        ids = seeded.ids.get(marketplace, {})
        for listing in listings:
            if listing.key in ids:
                found[(marketplace, ids[listing.key])] = f'"{listing.title}" {listing.price}'
    return found


# ------------------------------------------------------------------------------------------------------------
# Figures and report
# ------------------------------------------------------------------------------------------------------------


def met(result: ImportsResult) -> dict[str, bool | None]:
    found, first, second = result.analysis, result.first, result.second
    return {
        "first_import_completed": None if first is None else first.status == "completed",
        "no_duplicates": None if found is None else found.duplicates == TARGETS["duplicates"],
        "no_listing_on_two_products": None
        if found is None
        else found.listings_on_two_products == TARGETS["listings_on_two_products"],
        "no_distractor_linked": None
        if found is None
        else found.distractors_linked == TARGETS["distractor_pairs_linked"],
        "no_stock_photo_look_alike_linked": None if found is None else found.stock_photo_linked == 0,
        "auto_link_precision": None
        if found is None or found.auto is None
        else found.auto.precision >= TARGETS["auto_link_precision"],
        "second_import_makes_nothing": None
        if second is None
        else second.status == "completed"
        and second.count("created") + second.count("linked") + second.count("proposed")
        == TARGETS["second_import_created_linked_proposed"],
    }


def _job_figures(one: JobRun) -> dict[str, Any]:
    return {
        "status": one.status,
        "error": one.error,
        "listings": one.listings,
        "wall_s": number(one.wall_s, 1),
        "queued_s": number(
            (one.started_at - one.created_at).total_seconds() if one.started_at and one.created_at else math.nan, 2
        ),
        "requests": one.requests,
        "requests_are": "plugin commands" if one.marketplace == "vinted" else "HTTP calls to the fake, OAuth left out",
        "requests_per_listing": number(one.per_listing(one.requests), 3),
        "requests_by_kind": dict(one.kinds.most_common()),
        "process_job_invocations": len(one.wakes),
        "process_job_invocations_per_listing": number(one.per_listing(len(one.wakes)), 3),
        "process_job_billed_ms": sum(wake.billed_ms for wake in one.wakes),
        "process_job_longest_ms": number(one.longest_ms, 0),
        "counts": {key: value for key, value in one.result.items() if isinstance(value, int)},
    }


def _run_figures(run: ImportRun) -> dict[str, Any]:
    return {
        "status": run.status,
        "wall_s": number(run.wall_s, 1),
        "counts": run.counts,
        "warnings": run.warnings[:10],
        "ebay_report_wait_s": number(run.report_wait_s, 1),
        "ebay_report_looks": run.report_looks,
        "ebay_phases_s": {name: number(seconds, 1) for name, seconds in run.ebay_phases_s.items()},
        "fake_ms_per_call": {name: number(ms, 1) for name, ms in run.fake_ms_per_call.items()},
        "jobs": {marketplace: _job_figures(one) for marketplace, one in run.jobs.items()},
    }


def _score_figures(found: Score | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "precision": number(found.precision, 4),
        "recall": number(found.recall, 4),
        "right_pairs": found.right_pairs,
        "found_pairs": found.found_pairs,
        "true_pairs": found.true_pairs,
    }


def figures(result: ImportsResult) -> dict[str, Any]:
    o, found = result.options, result.analysis
    document: dict[str, Any] = {
        "targets": TARGETS,
        "met": met(result),
        "options": {
            "size": o.size,
            "seed": o.seed,
            "concurrency": o.concurrency,
            "vinted_pacing": "on, production ranges",
            "vinted_latency_ms": VINTED_LATENCY_MS,
            "photo_matching": o.photo_matching,
        },
        "shops": result.shops,
    }
    if result.first is not None:
        document["first_import"] = _run_figures(result.first)
        document["skipped_by_reason"] = {
            f"{marketplace}:{reason}": n for (marketplace, reason), n in result.first.skipped_by_reason.most_common()
        }
    if found is not None:
        document["matches"] = {
            "products": found.products,
            "truth_groups": found.truth_groups,
            "truth_groups_on_one_product": found.groups_whole,
            "duplicates": found.duplicates,
            "duplicates_reworded_and_rephotographed": found.duplicates_untellable,
            "split_with_pending_proposal": found.split_pending,
            "listings_on_two_products": found.listings_on_two_products,
            "auto_links": _score_figures(found.auto),
            "links_and_proposals": _score_figures(found.with_proposals),
            "proposals_to_review": found.proposals,
            "proposals_right": found.proposals_right,
            "distractor_pairs": found.distractor_pairs,
            "distractor_pairs_linked": found.distractors_linked,
            "distractor_pairs_proposed": found.distractors_proposed,
            "split_listings_by_decision": dict(found.split_reasons.most_common()),
            "ebay_inventory_listings_on_products": found.ebay_inventory_listed,
            "ebay_own_sku_lost": dict(found.ebay_sku_lost),
            "ebay_outside_listings_on_products": found.ebay_outside_listed,
            "ebay_outside_not_marked": dict(found.ebay_outside_unmarked),
            "decided_by_the_photo": dict(found.by_photo),
            "hard_pairs_recall": {
                name: {
                    "auto": number(auto.recall, 4),
                    "with_proposals": number(both.recall, 4),
                    "pairs": auto.true_pairs,
                }
                for name, (auto, both) in found.hard.items()
            },
            "stock_photo_pairs": found.stock_photo_pairs,
            "stock_photo_pairs_linked": found.stock_photo_linked,
            "stock_photo_pairs_proposed": found.stock_photo_proposed,
        }
    if result.second is not None:
        document["second_import"] = _run_figures(result.second)
        document["second_import"]["products_after"] = result.products_after_second
    document["phases_s"] = {name: number(seconds, 1) for name, seconds in result.phases_s.items()}
    document["wall_s"] = number(result.wall_s, 1)
    document["devstack_warnings"] = len(result.log_records)
    return document


def _by_how(counts: Counter[str]) -> str:
    return ", ".join(f"{how} {n}" for how, n in counts.most_common()) or "none"


def _recall(found: Score) -> str:
    return f"{found.recall:.3f} ({found.right_pairs} of {found.true_pairs})"


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("OK" if ok else "MISSED")


def _pct(found: Score | None) -> str:
    if found is None:
        return "-"
    return (
        f"{found.precision:.3f} / {found.recall:.3f} ({found.right_pairs} right of {found.found_pairs} found,"
        f" {found.true_pairs} true)"
    )


def _jobs_table(run: ImportRun) -> list[str]:
    rows = []
    for marketplace in MARKETPLACES:
        one = run.jobs.get(marketplace)
        if one is None:
            continue
        rows.append(
            [
                LABELS[marketplace],
                fmt(one.listings),
                one.status,
                fmt(one.wall_s, 1),
                f"{one.requests}{' cmds' if marketplace == 'vinted' else ''}",
                fmt(one.per_listing(one.requests), 3),
                f"{len(one.wakes)} ({one.per_listing(len(one.wakes)):.2f})",
                *(fmt(one.count(name)) for name in ("created", "linked", "proposed", "skipped", "known")),
                fmt(one.count("already_imported")),
                fmt(one.count("sold")),
            ]
        )
    lines = [
        table(
            [
                "job",
                "listings",
                "status",
                "wall s",
                "calls",
                "calls/listing",
                "process_job (/listing)",
                "created",
                "linked",
                "proposed",
                "skipped",
                "known",
                "already",
                "sold",
            ],
            rows,
        )
    ]
    for marketplace in MARKETPLACES:
        one = run.jobs.get(marketplace)
        if one is None:
            continue
        kinds = ", ".join(f"{kind} {n}" for kind, n in one.kinds.most_common(8))
        lines.append(f"  {LABELS[marketplace]} {'commands' if marketplace == 'vinted' else 'calls'}: {kinds or '-'}")
        answered = run.fake_ms_per_call.get(marketplace)
        lines.append(
            f"    process_job: {len(one.wakes)} invocations, {sum(w.billed_ms for w in one.wakes) / 1000:.1f} s billed,"
            f" the longest {fmt(one.longest_ms, 0)} ms"
            + ("" if answered is None else f"; the fake answered in {answered:.1f} ms a call on average")
        )
        if one.error:
            lines.append(f"  {LABELS[marketplace]} error: {one.error}")
    if run.jobs.get("ebay") is not None:
        lines.append(
            f"  eBay's Feed report: asked -> downloaded {fmt(run.report_wait_s, 1)} s, {run.report_looks} looks"
            " (the import looks after 2 s, then every 30 s; the fake's report is ready at its third look, at the first"
            " with --import-size small)"
        )
        outside = run.jobs["ebay"].result.get("outside_inventory_api")
        if isinstance(outside, int):
            lines.append(
                f"  eBay listings the report showed as made outside the Inventory API: {outside} (Browse calls:"
                f" {sum(kind.endswith('get_item_by_legacy_id') for kind in run.jobs['ebay'].kinds.elements())})"
            )
        if run.ebay_phases_s:
            lines.append(
                "  eBay's job in phases (from the fake's calls): "
                + ", ".join(f"{name.replace('_', ' ')} {seconds:.1f} s" for name, seconds in run.ebay_phases_s.items())
            )
    return lines


def report(result: ImportsResult) -> str:
    o, checks, found = result.options, met(result), result.analysis
    shops = result.shops
    lines = [section("Imports: three shops at once, then again (fake eBay, Etsy and Vinted through the devstack)"), ""]
    if shops:
        lines.append(
            f"  shops (seed {o.seed}, {o.size}): eBay {shops['ebay']} listings ({shops['ebay_outside']} made on"
            f" ebay.com), Etsy {shops['etsy']}, Vinted {shops['vinted']}; the same item on two marketplaces"
            f" {shops['on_two']}, on three {shops['on_three']}; {shops['distractors']} look-alike items."
            f" Vinted paced like a person (production ranges), {VINTED_LATENCY_MS} ms per plugin command"
        )
    first = result.first
    if first is not None:
        lines += [
            "",
            f"  1. first import, eBay + Etsy + Vinted at once: {first.status} in {fmt(first.wall_s, 1)} s"
            f" (POST -> GET /imports/{{id}} not running, polled every {POLL_S} s); wall s = the job's created ->"
            " completed; calls = HTTP calls to the fake (OAuth left out), for Vinted the plugin commands",
            *_jobs_table(first),
        ]
        if first.warnings:
            lines.append(f"  warnings: {'; '.join(first.warnings[:5])}")
    if found is not None:
        lines += [
            "",
            f"  2-3. {found.products} products made; the truth: {found.truth_groups} items on 2+ marketplaces,"
            f" {found.distractor_pairs} look-alike pairs",
            table(
                ["figure", "now", "target", ""],
                [
                    [
                        "duplicates: items split over 2+ products, none pending",
                        fmt(found.duplicates),
                        "0",
                        _mark(checks["no_duplicates"]),
                    ],
                    [
                        "  of which a listing both reworded and re-photographed (no title nor photo to go by)",
                        fmt(found.duplicates_untellable),
                        "",
                        "",
                    ],
                    ["items split, one of their listings pending as a proposal", fmt(found.split_pending), "", ""],
                    ["items whose listings are all on one product", fmt(found.groups_whole), "", ""],
                    [
                        "listings on two products",
                        fmt(found.listings_on_two_products),
                        "0",
                        _mark(checks["no_listing_on_two_products"]),
                    ],
                    [
                        "automatic links: precision / recall (pairs)",
                        _pct(found.auto),
                        "precision >= 0.99",
                        _mark(checks["auto_link_precision"]),
                    ],
                    ["links + pending proposals: precision / recall", _pct(found.with_proposals), "", ""],
                    [
                        "proposals the user must review (proposing the right product)",
                        f"{found.proposals} ({found.proposals_right})",
                        "",
                        "",
                    ],
                    [
                        "look-alike pairs linked",
                        fmt(found.distractors_linked),
                        "0",
                        _mark(checks["no_distractor_linked"]),
                    ],
                    ["look-alike pairs proposed", fmt(found.distractors_proposed), "", ""],
                    *(
                        [f"{name}: recall, automatic / with proposals", f"{_recall(auto)} / {_recall(both)}", "", ""]
                        for name, (auto, both) in found.hard.items()
                    ),
                    [
                        "look-alikes sharing a stock photo: linked / proposed",
                        f"{found.stock_photo_linked} / {found.stock_photo_proposed} of {found.stock_photo_pairs}",
                        "0 linked",
                        _mark(checks["no_stock_photo_look_alike_linked"]),
                    ],
                    [
                        "decided by the photo (photo matching " + ("on)" if o.photo_matching else "off)"),
                        _by_how(found.by_photo),
                        "",
                        "",
                    ],
                ],
            ),
        ]
        if found.split_reasons:
            lines.append(
                "  the split items' listings, by decision: "
                + ", ".join(f"{kind} {n}" for kind, n in found.split_reasons.most_common())
            )
        lines += [f"  split: {example}" for example in found.examples]
        lost, unmarked = sum(found.ebay_sku_lost.values()), sum(found.ebay_outside_unmarked.values())
        lines.append(
            f"  eBay listings whose product lost the listing's own SKU: {lost} of {found.ebay_inventory_listed}"
            f" ({_by_how(found.ebay_sku_lost)}); made on ebay.com but not marked outside_inventory_api: {unmarked} of"
            f" {found.ebay_outside_listed} ({_by_how(found.ebay_outside_unmarked)}): crosslist would revise or end"
            " those through the Inventory API under its own SKU"
        )
        lines += [f"  wrong link: {example}" for example in found.wrong_links]
    second = result.second
    if second is not None:
        made = second.count("created") + second.count("linked") + second.count("proposed")
        lines += [
            "",
            f"  4. second import of the same shops: {second.status} in {fmt(second.wall_s, 1)} s; created"
            f" {second.count('created')}, linked {second.count('linked')}, proposed {second.count('proposed')}"
            f" (target 0: {_mark(checks['second_import_makes_nothing'])}), already imported"
            f" {second.count('already_imported')}, known {second.count('known')}, skipped {second.count('skipped')};"
            f" products {found.products if found else '-'} -> {fmt(result.products_after_second)}"
            + ("" if made == 0 else " (it made some)"),
            *_jobs_table(second),
        ]
    if first is not None:
        reasons = first.skipped_by_reason
        lines += [
            "",
            f"  5. skipped by the first import: {first.count('skipped')}"
            + (f" (the first {len(first.skipped)} listed)" if len(first.skipped) < first.count("skipped") else "")
            + ": "
            + (", ".join(f"{LABELS[m]} {reason} {n}" for (m, reason), n in sorted(reasons.items())) or "none"),
        ]
    if result.log_records:
        lines.append(f"  devstack warnings/errors: {len(result.log_records)}")
        lines += [f"    {line}" for line in result.log_records[:5]]
    lines.append(
        f"  section took {result.wall_s:.0f} s: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.phases_s.items())
    )
    return "\n".join(lines)
