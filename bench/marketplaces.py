"""eBay and Etsy through the devstack, at its fake eBay and Etsy: publishing, then the auto-delist delay.

1. Publishing: U users each connect eBay and Etsy as a seller would (GET /marketplaces/{m}/connect, then the
   browser follows the authorization URL: the fake consents at once for `account=<user>`, each user its own
   seller), choose the first of each seller setting, create P products of K photos, then publish every
   product on both marketplaces at once. Each job's duration is created_at -> completed_at of GET /jobs/{id};
   the HTTP calls made to the fakes while the jobs ran are read from the fakes' `calls` (OAuth left out),
   and the process_job invocations from a wrapper set on its pool's `invoke` (the devstack's code is
   unchanged), billed rounded up to the next ms as Lambda does.
2. Auto-delist: for one user, R times, a fresh product published on both is sold on the fake eBay; then the
   orders import is queued as the sync-rule scheduler would (POST /jobs sync_orders), and from that POST:
   the import's end, the Etsy delete job's start and end (found in GET /products/{id}/sales), and the Etsy
   listing going inactive on the fake (the PATCH that did it, as the fake recorded it). Job times are the
   API's timestamps, so polling (every 0.1-0.2 s, one request at a time) only says when to look, never what
   is measured.

The worst case a reseller sees comes from the rule, not the engine: a sale made just after an import waits
for the next one, `orders` minutes later (15 by default), plus up to one scheduler tick, plus the measured
import-to-delisted time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.loop import devstack, prestart, token
from bench.stats import fmt, number, percentile, phase, section, table
from crosslist.sync_rules.rules import DEFAULT_INTERVAL_MINUTES
from devstack import fake_ebay, fake_etsy
from devstack.accounts import connect_account
from devstack.fake_http import Call, FakeServer
from devstack.instances import Invocation
from devstack.stack import DevStack

MARKETPLACES = ("ebay", "etsy")
LABELS = {"ebay": "eBay", "etsy": "Etsy"}
# What the seeded products carry for eBay and Etsy (see README.md): enough for a publish to go through.
MARKETPLACE_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "ebay": {"category_id": "11483", "condition": "USED_GOOD"},
    "etsy": {"taxonomy_id": 429, "who_made": "someone_else", "when_made": "2010_2019"},
}
OAUTH_PATHS = {
    "ebay": frozenset({fake_ebay.TOKEN_PATH, fake_ebay.AUTHORIZE_PATH}),
    "etsy": frozenset({fake_etsy.TOKEN_PATH, fake_etsy.AUTHORIZE_PATH}),
}
ENDED = frozenset({"completed", "failed", "cancelled"})
SYNC_SCHEDULE = "SchedulerFunction.SyncSchedule"  # the template's schedule that queues due sync rules
ORDERS_RULE_MINUTES = DEFAULT_INTERVAL_MINUTES["orders"]
TARGETS: dict[str, float] = {
    "publish_p95_s": 5.0,  # per marketplace, on the devstack
    "publish_failed": 0,
    "sale_to_delisted_p50_s": 5.0,  # from the orders import's POST to the Etsy listing inactive
    "worst_case_minutes": 16.5,  # rule interval + scheduler tick + the slowest import-to-delisted
    "push_sale_to_delete_started_p50_s": 5.0,  # issue 19: a sale on eBay, its Etsy delete started, by push
}
USER_PREFIX = "bench-seller"
WARMUP_USER = f"{USER_PREFIX}-warmup"
POLL_S = 0.2  # the burst: one GET /jobs per user with jobs still running
ROUND_POLL_S = 0.1  # a delist round: one request at a time
# A round normally takes well under a second: a job still pending after this is a finding, not slowness,
# and waiting the whole --timeout for it would push the section past its two minutes.
ROUND_TIMEOUT_S = 30.0
QUIET_S = 0.5  # after the burst: no process_job invocation for this long (a late timer is still counted)
QUIET_CAP_S = 5.0
# Pools the section never calls: not started beforehand (the WebSocket side, the schedules).
NOT_USED = ("oauth_refresh", "sweeper", "scheduler", "ws_connect", "ws_message")


@dataclass(frozen=True)
class MarketplacesOptions:
    users: int = 4
    products: int = 3
    photos: int = 3
    sales: int = 5  # auto-delist rounds, a fresh product each
    push_sales: int = 20  # sales whose orders import eBay's push notification starts (no POST, no rule)
    concurrency: int = 2  # instances per function, as the devstack's default
    warmup: bool = True
    timeout_s: float = 90.0  # for the burst's jobs, and for each delist round


# ------------------------------------------------------------------------------------------------------------
# What the run observed
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wake:
    """One process_job invocation: which lane's marketplace, why it was woken, how long it ran."""

    marketplace: str
    cause: str  # created, result, timer, session…
    called: float  # perf_counter when the SQS trigger invoked it
    duration_ms: float

    @property
    def billed_ms(self) -> int:
        return math.ceil(self.duration_ms)


class ProcessJobWakes:
    """Wraps the process_job pool's `invoke` (an instance attribute: the devstack's code is unchanged)."""

    def __init__(self, stack: DevStack) -> None:
        self.wakes: list[Wake] = []
        self.active = 0
        self.last_returned = time.perf_counter()
        self._lock = threading.Lock()
        pool = next(pool for pool in stack.pools.values() if pool.spec.name == "process_job")
        invoke: Callable[[dict[str, Any]], Invocation] = pool.invoke

        def observed(event: dict[str, Any]) -> Invocation:
            called = time.perf_counter()
            with self._lock:
                self.active += 1
            try:
                invocation = invoke(event)
            finally:
                with self._lock:
                    self.active -= 1
                    self.last_returned = time.perf_counter()
            marketplace, cause = _lane_of(event)
            with self._lock:
                self.wakes.append(Wake(marketplace, cause, called, invocation.duration_ms))
            return invocation

        setattr(pool, "invoke", observed)  # noqa: B010

    def between(self, start: float, end: float) -> list[Wake]:
        with self._lock:
            return [wake for wake in self.wakes if start <= wake.called <= end]

    def quiet_for(self, seconds: float) -> bool:
        with self._lock:
            return self.active == 0 and time.perf_counter() - self.last_returned >= seconds


def _lane_of(event: dict[str, Any]) -> tuple[str, str]:
    """(marketplace, cause kind) of a process_job event: one record (BatchSize 1), a lane wake-up or a timer."""
    with contextlib.suppress(ValueError, TypeError, KeyError, IndexError, AttributeError):
        body = json.loads(event["Records"][0]["body"])
        cause = "timer" if "due_ms" in body and not body.get("cause") else str(body.get("cause") or "session")
        return str(body.get("marketplace") or ""), cause.split(":", 1)[0]
    return "", "?"


@dataclass
class PublishJob:
    id: str
    user: str
    marketplace: str
    product_id: str
    status: str = "?"
    created_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.created_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.created_at).total_seconds()


@dataclass
class MarketplacePublish:
    """One marketplace's side of the burst."""

    marketplace: str
    jobs: list[PublishJob] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)  # to the fake while the burst ran, OAuth left out
    oauth_calls: int = 0
    wakes: list[Wake] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(job.status == status for job in self.jobs)

    @property
    def unfinished(self) -> int:
        return sum(job.status not in ENDED for job in self.jobs)

    @property
    def durations_s(self) -> list[float]:
        return [job.duration_s for job in self.jobs if job.status == "completed" and job.duration_s is not None]

    def per_publish(self, value: float) -> float:
        return value / len(self.jobs) if self.jobs else math.nan

    @property
    def call_kinds(self) -> Counter[str]:
        return Counter(_call_kind(call) for call in self.calls)

    @property
    def billed_ms(self) -> int:
        return sum(wake.billed_ms for wake in self.wakes)


@dataclass
class DelistRound:
    """One sale on eBay and what followed; times in seconds from the orders import's POST."""

    product_id: str
    ebay_listing_id: str = ""
    etsy_listing_id: str = ""
    import_status: str = "?"
    import_created_s: float | None = None
    import_started_s: float | None = None
    import_completed_s: float | None = None
    delete_status: str = "?"
    delete_started_s: float | None = None
    delete_completed_s: float | None = None
    inactive_s: float | None = None  # the Etsy listing inactive on the fake (its PATCH answered)
    etsy_state: str = "?"  # the Etsy listing's state on the fake at the end
    detection_delay_s: float | None = None  # GET /products/{id}/sales
    delisted_after_sale_s: float | None = None
    wakes: list[Wake] = field(default_factory=list)
    note: str = ""
    via: str = "poll"  # poll: times from the import's POST; push: times from the sale on the fake

    @property
    def delisted_s(self) -> float | None:
        """When the listing was gone for crosslist as for Etsy: the later of the PATCH and the job's end."""
        seen = [s for s in (self.inactive_s, self.delete_completed_s) if s is not None]
        return max(seen) if len(seen) == 2 else None


@dataclass
class MarketplacesResult:
    options: MarketplacesOptions
    publish: dict[str, MarketplacePublish] = field(default_factory=dict)
    publish_wall_s: float = 0.0
    rounds: list[DelistRound] = field(default_factory=list)
    push_rounds: list[DelistRound] = field(default_factory=list)
    scheduler_tick_s: float = 60.0
    phases_s: dict[str, float] = field(default_factory=dict)
    log_records: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def delist_values(self, name: str, *, push: bool = False) -> list[float]:
        values = (getattr(one, name) for one in (self.push_rounds if push else self.rounds))
        return [value for value in values if isinstance(value, float)]

    def polling_s(self, name: str, quantile: float) -> float:
        """The polling path's figure for `name` at `quantile`, from the sale: a sale lands uniformly within the
        orders rule's interval, its import is queued at the next scheduler tick after it is due, then the
        POST -> `name` measured. Modelled from the rule (nobody waits 15 minutes in a bench), never measured."""
        measured = percentile(self.delist_values(name), quantile)
        return quantile * (ORDERS_RULE_MINUTES * 60 + self.scheduler_tick_s) + measured

    @property
    def worst_case_minutes(self) -> float:
        """A sale just after an import: the next import is due one rule interval later, queued at the next
        scheduler tick, then the slowest import-to-delisted measured."""
        slowest = max(self.delist_values("delisted_s"), default=math.nan)
        return ORDERS_RULE_MINUTES + self.scheduler_tick_s / 60 + slowest / 60


_ID_SEGMENT = re.compile(r"^(?!v\d+$).*\d")  # a segment with a digit (an id, a SKU), not an API version
_API_PREFIXES = ("/sell/inventory/v1/", "/sell/account/v1/", "/sell/fulfillment/v1/", "/v3/application/")


def _call_kind(call: Call) -> str:
    """`PUT inventory_item/{id}`: the method and the path, ids replaced, the API's prefix dropped."""
    path = "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in call.path.split("/"))
    for prefix in _API_PREFIXES:
        path = path.removeprefix(prefix)
    return f"{call.method} {path}"


# ------------------------------------------------------------------------------------------------------------
# Running it
# ------------------------------------------------------------------------------------------------------------


class Seller:
    """What the web app does over HTTP for one user, and their browser on the marketplace's consent page."""

    def __init__(self, stack: DevStack, http: httpx.AsyncClient, user: str) -> None:
        self.user = user
        self._stack = stack
        self._http = http
        self._headers = {"Authorization": f"Bearer {token(stack, user)}"}

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        reply = await self._http.request(method, self._stack.http_url + path, json=body, headers=self._headers)
        if reply.status_code != expect:
            raise RuntimeError(f"{self.user}: {method} {path} answered {reply.status_code}: {reply.text[:300]}")
        return reply.json()

    async def connect(self, marketplace: str) -> None:
        """Connect the account, then choose the first of each seller setting (policies, location, profile)."""
        # The browser at the fake's consent page, then the web app completing it (`account` makes this user a
        # seller of their own there).
        token = self._headers["Authorization"].removeprefix("Bearer ")
        await asyncio.to_thread(connect_account, self._stack.http_url, token, marketplace, account=self.user)
        choices = (await self.call("GET", f"/marketplaces/{marketplace}/settings"))["choices"]
        chosen = {name: options[0]["id"] for name, options in choices.items() if options}
        await self.call("PUT", f"/marketplaces/{marketplace}/settings", chosen)

    async def create_product(self, number: int, photos: int) -> str:
        images = [f"{self._stack.http_url}/__devstack/images/{n}.png" for n in range(1, photos + 1)]
        body = {
            "title": f"Levi's 501 jeans #{number}",
            "price": "27.90",
            "currency": "GBP",  # what the fake eBay's UK site and the fake Etsy shop sell in
            "image_urls": images,
            "marketplace_attributes": MARKETPLACE_ATTRIBUTES,
        }
        return str((await self.call("POST", "/products", body, expect=201))["id"])

    async def create_job(self, marketplace: str, action: str, product_id: str | None = None) -> str:
        body = {"marketplace": marketplace, "action": action}
        if product_id is not None:
            body["product_id"] = product_id
        return str((await self.call("POST", "/jobs", body, expect=202))["id"])

    async def job(self, job_id: str) -> dict[str, Any]:
        return dict(await self.call("GET", f"/jobs/{job_id}"))

    async def recent_statuses(self) -> dict[str, str]:
        """The status of the user's 100 newest jobs: one request whatever their number."""
        page = await self.call("GET", "/jobs?limit=100")
        return {str(job["id"]): str(job["status"]) for job in page["items"]}


def run(options: MarketplacesOptions) -> MarketplacesResult:
    """Start a devstack on a throwaway cluster (schedules off: the orders import is queued by hand), publish,
    time the auto-delist, stop and remove everything."""
    result = MarketplacesResult(options)
    started = time.perf_counter()
    with devstack(options.concurrency) as running:
        result.phases_s["devstack start"] = running.start_s
        stack = running.stack
        schedule = stack.schedules[SYNC_SCHEDULE]
        now = datetime.now(UTC)
        tick = schedule.next_fire(now)
        if tick is not None:  # a rate: one period after now
            result.scheduler_tick_s = (tick - now).total_seconds()
        wakes = ProcessJobWakes(stack)
        asyncio.run(_drive(stack, wakes, options, result))
    result.log_records = list(running.logs.lines)
    result.wall_s = time.perf_counter() - started
    return result


async def _drive(
    stack: DevStack, wakes: ProcessJobWakes, options: MarketplacesOptions, result: MarketplacesResult
) -> None:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        users = [f"{USER_PREFIX}-{n:02d}" for n in range(1, options.users + 1)]
        sellers = {user: Seller(stack, http, user) for user in users}
        if options.warmup:
            with phase(result.phases_s, "instances started, warm-up publish"):
                await asyncio.get_running_loop().run_in_executor(None, prestart, stack, options.concurrency, NOT_USED)
                await _warm_up(Seller(stack, http, WARMUP_USER), options.timeout_s)
        with phase(result.phases_s, "connect and choose settings"):
            await asyncio.gather(*(seller.connect(m) for seller in sellers.values() for m in MARKETPLACES))
        with phase(result.phases_s, "publish burst"):
            await _publish_burst(stack, wakes, sellers, options, result)
        with phase(result.phases_s, "auto-delist"):
            stack.ebay.disable_subscriptions(users[0])  # the polling path: only the import's POST finds the sale
            result.rounds = await _delist_rounds(stack, wakes, sellers[users[0]], options.sales, options)
        with phase(result.phases_s, "auto-delist by push"):
            result.push_rounds = await _delist_rounds(
                stack, wakes, sellers[users[-1]], options.push_sales, options, push=True
            )


async def _warm_up(seller: Seller, timeout_s: float) -> None:
    """One publish on each marketplace first: the first invocation of an instance builds its clients."""
    await asyncio.gather(*(seller.connect(m) for m in MARKETPLACES))
    product_id = await seller.create_product(0, 1)
    job_ids = [await seller.create_job(m, "publish", product_id) for m in MARKETPLACES]
    for job_id in job_ids:
        job = await _wait_job(seller, job_id, time.monotonic() + timeout_s, POLL_S)
        if job.get("status") != "completed":
            raise RuntimeError(f"the warm-up publish {job_id} ended {job.get('status')}: {job.get('error')}")


async def _publish_burst(
    stack: DevStack,
    wakes: ProcessJobWakes,
    sellers: dict[str, Seller],
    options: MarketplacesOptions,
    result: MarketplacesResult,
) -> None:
    fakes: dict[str, FakeServer] = {"ebay": stack.ebay, "etsy": stack.etsy}

    async def create_products(seller: Seller) -> list[str]:
        return [await seller.create_product(n, options.photos) for n in range(1, options.products + 1)]

    products = dict(zip(sellers, await asyncio.gather(*(create_products(s) for s in sellers.values())), strict=True))
    first_call = {m: len(fake.calls) for m, fake in fakes.items()}

    # Everyone publishes everything, on both, at once.
    async def publish(seller: Seller, marketplace: str, product_id: str) -> PublishJob:
        job_id = await seller.create_job(marketplace, "publish", product_id)
        return PublishJob(job_id, seller.user, marketplace, product_id)

    started = time.perf_counter()
    jobs = await asyncio.gather(
        *(publish(sellers[user], m, product) for user, ids in products.items() for product in ids for m in MARKETPLACES)
    )
    await _wait_all(sellers, jobs, options.timeout_s)
    result.publish_wall_s = time.perf_counter() - started
    deadline = time.perf_counter() + QUIET_CAP_S
    while not wakes.quiet_for(QUIET_S) and time.perf_counter() < deadline:  # a last timer or wake-up
        await asyncio.sleep(0.1)
    ended = time.perf_counter()

    for job in jobs:
        _fill(job, await sellers[job.user].job(job.id))
    burst_wakes = wakes.between(started, ended)
    for marketplace, fake in fakes.items():
        calls = list(fake.calls[first_call[marketplace] :])
        oauth = [call for call in calls if call.path in OAUTH_PATHS[marketplace]]
        result.publish[marketplace] = MarketplacePublish(
            marketplace,
            [job for job in jobs if job.marketplace == marketplace],
            [call for call in calls if call.path not in OAUTH_PATHS[marketplace]],
            len(oauth),
            [wake for wake in burst_wakes if wake.marketplace == marketplace],
        )


async def _wait_all(sellers: dict[str, Seller], jobs: Iterable[PublishJob], timeout_s: float) -> None:
    """Until every job has ended (or the timeout): one GET /jobs per user still waiting, every POLL_S."""
    waiting: dict[str, set[str]] = {}
    for job in jobs:
        waiting.setdefault(job.user, set()).add(job.id)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        pages = await asyncio.gather(*(sellers[user].recent_statuses() for user in waiting))
        for user, statuses in zip(list(waiting), pages, strict=True):
            # A job older than the 100 newest is not in the page: asked for on its own.
            for job_id in [job_id for job_id in waiting[user] if job_id not in statuses]:
                statuses[job_id] = str((await sellers[user].job(job_id)).get("status"))
            waiting[user] = {job_id for job_id in waiting[user] if statuses[job_id] not in ENDED}
            if not waiting[user]:
                del waiting[user]


async def _wait_job(seller: Seller, job_id: str, deadline: float, every_s: float) -> dict[str, Any]:
    job = await seller.job(job_id)
    while job.get("status") not in ENDED and time.monotonic() < deadline:
        await asyncio.sleep(every_s)
        job = await seller.job(job_id)
    return job


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _fill(job: PublishJob, view: dict[str, Any]) -> None:
    job.status = str(view.get("status"))
    job.created_at = _when(view.get("created_at"))
    job.completed_at = _when(view.get("completed_at"))
    error = view.get("error")
    job.error = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else None
    job.result = dict(view.get("result") or {})


async def _delist_rounds(
    stack: DevStack,
    wakes: ProcessJobWakes,
    seller: Seller,
    sales: int,
    options: MarketplacesOptions,
    *,
    push: bool = False,
) -> list[DelistRound]:
    """Fresh products published on both (not timed), then one sale at a time, each timed from its import's POST
    or, with `push`, from the sale (eBay's notification queues the import)."""
    first = 300 if push else 100
    product_ids = [await seller.create_product(first + n, 1) for n in range(1, sales + 1)]
    jobs = [
        PublishJob(await seller.create_job(m, "publish", product_id), seller.user, m, product_id)
        for product_id in product_ids
        for m in MARKETPLACES
    ]
    await _wait_all({seller.user: seller}, jobs, options.timeout_s)
    rounds = []
    for product_id in product_ids:
        delist = DelistRound(product_id, via="push" if push else "poll")
        for job in (job for job in jobs if job.product_id == product_id):
            _fill(job, await seller.job(job.id))
            if job.status != "completed":
                delist.note = f"{job.marketplace} publish ended {job.status}: {job.error}"
            elif job.marketplace == "ebay":
                delist.ebay_listing_id = str(job.result.get("listing_id", ""))
            else:
                delist.etsy_listing_id = str(job.result.get("listing_id", ""))
        if not delist.note:
            await _sell_and_measure(stack, wakes, seller, delist, min(options.timeout_s, ROUND_TIMEOUT_S))
        rounds.append(delist)
    return rounds


async def _sell_and_measure(
    stack: DevStack, wakes: ProcessJobWakes, seller: Seller, delist: DelistRound, timeout_s: float
) -> None:
    first_etsy_call = len(stack.etsy.calls)
    if delist.via == "push":  # from the sale: eBay's ORDER_CONFIRMATION queues the import, nothing else does
        posted_at, posted_mono, posted_perf = datetime.now(UTC), time.monotonic(), time.perf_counter()
        stack.ebay.sell(delist.ebay_listing_id, account=seller.user)
    else:
        stack.ebay.sell(delist.ebay_listing_id, account=seller.user)
        posted_at, posted_mono, posted_perf = datetime.now(UTC), time.monotonic(), time.perf_counter()
    deadline = posted_mono + timeout_s

    def since_post(value: Any) -> float | None:
        moment = _when(value)
        return (moment - posted_at).total_seconds() if moment is not None else None

    if delist.via == "push":
        found = await _pushed_import(seller, posted_at, deadline)
        if found is None:
            delist.note = f"no orders import was queued by eBay's notification within {timeout_s:.0f} s"
            return
        import_id = found
    else:  # what the scheduler queues when the eBay orders rule is due
        import_id = await seller.create_job("ebay", "sync_orders")
    imported = await _wait_job(seller, import_id, deadline, ROUND_POLL_S)
    delist.import_status = str(imported.get("status"))
    delist.import_created_s = since_post(imported.get("created_at"))
    delist.import_started_s = since_post(imported.get("started_at"))
    delist.import_completed_s = since_post(imported.get("completed_at"))
    if delist.import_status != "completed":
        delist.note = _unended("the orders import", import_id, imported, timeout_s)
        return

    action = await _etsy_action(seller, delist.product_id, deadline)
    if action is None or not action.get("job_id"):
        delist.note = f"no Etsy delete job after the sale: {action}"
        return
    delete_id = str(action["job_id"])
    deleted = await _wait_job(seller, delete_id, deadline, ROUND_POLL_S)
    delist.delete_status = str(deleted.get("status"))
    delist.delete_started_s = since_post(deleted.get("started_at"))
    delist.delete_completed_s = since_post(deleted.get("completed_at"))
    delist.wakes = wakes.between(posted_perf, time.perf_counter())

    # The fake recorded when the PATCH that made the listing inactive was answered.
    patch = next(
        (
            call
            for call in stack.etsy.calls[first_etsy_call:]
            if call.method == "PATCH"
            and call.path.endswith(f"/listings/{delist.etsy_listing_id}")
            and call.status < 300
            and isinstance(call.body, dict)
            and call.body.get("state") == "inactive"
        ),
        None,
    )
    delist.inactive_s = patch.finished_at - posted_mono if patch is not None else None
    listing = next(
        (one for one in stack.etsy.listings(seller.user) if str(one["listing_id"]) == delist.etsy_listing_id), None
    )
    delist.etsy_state = str(listing["state"]) if listing is not None else "gone"

    sale = await _etsy_sale(seller, delist.product_id)  # once the delete ended: delisted_after_sale_seconds is set
    if sale is not None:
        sale_view, action = sale
        delist.detection_delay_s = _seconds(sale_view.get("detection_delay_seconds"))
        delist.delisted_after_sale_s = _seconds(action.get("delisted_after_sale_seconds"))
    if delist.delete_status != "completed" or delist.etsy_state != "inactive":
        delist.note = (
            f"{_unended('the Etsy delete', delete_id, deleted, timeout_s)}; the listing is {delist.etsy_state}"
        )


async def _pushed_import(seller: Seller, sold_at: datetime, deadline: float) -> str | None:
    """The eBay orders import queued after the sale (by the push notification), once it exists."""
    while time.monotonic() < deadline:
        page = await seller.call("GET", "/jobs?marketplace=ebay&action=sync_orders&limit=5")
        for job in page["items"]:
            created = _when(job.get("created_at"))
            if created is not None and created >= sold_at:
                return str(job["id"])
        await asyncio.sleep(ROUND_POLL_S)
    return None


def _unended(what: str, job_id: str, job: dict[str, Any], timeout_s: float) -> str:
    status = job.get("status")
    if status not in ENDED:
        return f"{what} job {job_id} was still {status} {timeout_s:.0f} s after the import's POST"
    return f"{what} job {job_id} ended {status}: {job.get('error')}"


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


async def _etsy_sale(seller: Seller, product_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The product's newest sale and its Etsy action, from GET /products/{id}/sales."""
    for sale in (await seller.call("GET", f"/products/{product_id}/sales"))["items"]:
        for action in sale.get("actions", []):
            if action.get("marketplace") == "etsy":
                return dict(sale), dict(action)
    return None


async def _etsy_action(seller: Seller, product_id: str, deadline: float) -> dict[str, Any] | None:
    """The sale's Etsy action once it has a job (stored with the import's order: there at once, normally)."""
    while True:
        found = await _etsy_sale(seller, product_id)
        if (found is not None and found[1].get("job_id")) or time.monotonic() >= deadline:
            return found[1] if found is not None else None
        await asyncio.sleep(ROUND_POLL_S)


# ------------------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------------------


def _spread(values: list[float], digits: int = 2) -> dict[str, float | None]:
    return {
        "p50": number(percentile(values, 0.5), digits),
        "p95": number(percentile(values, 0.95), digits),
        "max": number(max(values) if values else None, digits),
        "n": len(values),
    }


def _within(value: float, target: float) -> bool | None:
    return None if math.isnan(value) else value <= target


def met(result: MarketplacesResult) -> dict[str, bool | None]:
    checks: dict[str, bool | None] = {}
    for marketplace, published in result.publish.items():
        checks[f"{marketplace}_publish_p95"] = _within(
            percentile(published.durations_s, 0.95), TARGETS["publish_p95_s"]
        )
        checks[f"{marketplace}_publish_none_failed"] = (
            published.count("failed") + published.count("cancelled") + published.unfinished == 0
        )
    checks["sale_to_delisted_p50"] = _within(
        percentile(result.delist_values("delisted_s"), 0.5), TARGETS["sale_to_delisted_p50_s"]
    )
    checks["all_rounds_delisted"] = bool(result.rounds) and all(one.delisted_s is not None for one in result.rounds)
    checks["worst_case_bound"] = _within(result.worst_case_minutes, TARGETS["worst_case_minutes"])
    if result.push_rounds:
        checks["push_sale_to_delete_started_p50"] = _within(
            percentile(result.delist_values("delete_started_s", push=True), 0.5),
            TARGETS["push_sale_to_delete_started_p50_s"],
        )
        checks["all_push_rounds_delisted"] = all(one.delisted_s is not None for one in result.push_rounds)
    return checks


PUSH_FIGURES = {  # DelistRound attribute -> what it is, in a push round (times from the sale on the fake)
    "import_created_s": "sale -> orders import queued (eBay's notification received)",
    "import_completed_s": "sale -> import completed (sale recorded)",
    "delete_started_s": "sale -> Etsy delete job started",
    "delete_completed_s": "sale -> Etsy delete job completed",
    "delisted_s": "sale -> delisted (job completed and listing inactive)",
}


def _tails(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": number(percentile(values, 0.5), 2),
        "p99": number(percentile(values, 0.99), 2),
        "max": number(max(values) if values else None, 2),
        "n": len(values),
    }


def push_figures(result: MarketplacesResult) -> dict[str, Any]:
    """Push next to polling: each from the sale."""
    return {
        "rounds": len(result.push_rounds),
        "delisted": sum(one.delisted_s is not None for one in result.push_rounds),
        **{name: _tails(result.delist_values(name, push=True)) for name in PUSH_FIGURES},
        "polling_modelled": {
            name: {
                "p50": number(result.polling_s(name, 0.5), 1),
                "p99": number(result.polling_s(name, 0.99), 1),
            }
            for name in ("delete_started_s", "delete_completed_s")
        },
        "polling_model": f"a sale lands uniformly in the {ORDERS_RULE_MINUTES} min orders rule, its import waits"
        f" for the next scheduler tick ({result.scheduler_tick_s:g} s), then POST -> figure as measured above",
        "notes": [one.note for one in result.push_rounds if one.note],
    }


DELIST_FIGURES = {  # DelistRound attribute -> what it is
    "import_created_s": "POST -> import job created",
    "import_started_s": "POST -> import started",
    "import_completed_s": "POST -> import completed (sale found)",
    "delete_started_s": "POST -> Etsy delete job started",
    "inactive_s": "POST -> Etsy listing inactive on the fake",
    "delete_completed_s": "POST -> Etsy delete job completed",
    "delisted_s": "POST -> delisted (the later of the two above)",
    "detection_delay_s": "detection_delay_seconds (sale -> found)",
    "delisted_after_sale_s": "delisted_after_sale_seconds (sale -> delete job completed)",
}


def figures(result: MarketplacesResult) -> dict[str, Any]:
    o = result.options
    publish = {
        marketplace: {
            "jobs": len(published.jobs),
            "completed": published.count("completed"),
            "failed": published.count("failed"),
            "cancelled": published.count("cancelled"),
            "unfinished": published.unfinished,
            "errors": sorted({job.error for job in published.jobs if job.error})[:3],
            "duration_s": _spread(published.durations_s),
            "fake_calls_per_publish": number(published.per_publish(len(published.calls)), 2),
            "fake_calls_per_publish_by_kind": {
                kind: number(published.per_publish(count), 2) for kind, count in sorted(published.call_kinds.items())
            },
            "fake_oauth_calls": published.oauth_calls,
            "process_job_invocations_per_publish": number(published.per_publish(len(published.wakes)), 2),
            "process_job_billed_ms_per_publish": number(published.per_publish(published.billed_ms), 1),
            "process_job_wake_causes": dict(Counter(wake.cause for wake in published.wakes).most_common()),
        }
        for marketplace, published in result.publish.items()
    }
    round_wakes = [wake for one in result.rounds for wake in one.wakes]
    sales = max(1, sum(one.delisted_s is not None for one in result.rounds))
    return {
        "targets": TARGETS,
        "met": met(result),
        "options": {
            "users": o.users,
            "products": o.products,
            "photos": o.photos,
            "sales": o.sales,
            "concurrency": o.concurrency,
            "warmup": o.warmup,
        },
        "publish": {**publish, "wall_s": number(result.publish_wall_s, 2)},
        "auto_delist": {
            "rounds": len(result.rounds),
            "delisted": sum(one.delisted_s is not None for one in result.rounds),
            **{name: _spread(result.delist_values(name)) for name in DELIST_FIGURES},
            "delisted_s_each": [number(one.delisted_s, 3) for one in result.rounds],
            "process_job_per_sale": {
                marketplace: {
                    "invocations": number(sum(w.marketplace == marketplace for w in round_wakes) / sales, 1),
                    "billed_ms": number(sum(w.billed_ms for w in round_wakes if w.marketplace == marketplace) / sales),
                    "wake_causes": dict(Counter(w.cause for w in round_wakes if w.marketplace == marketplace)),
                }
                for marketplace in MARKETPLACES
            },
            "orders_rule_minutes": ORDERS_RULE_MINUTES,
            "scheduler_tick_s": number(result.scheduler_tick_s, 0),
            "worst_case_minutes": number(result.worst_case_minutes, 2),
            "worst_case": f"{ORDERS_RULE_MINUTES} min orders rule + {result.scheduler_tick_s / 60:g} min scheduler"
            " tick + the slowest POST -> delisted measured",
            "notes": [one.note for one in result.rounds if one.note],
        },
        "auto_delist_push": push_figures(result),
        "phases_s": {name: number(seconds, 1) for name, seconds in result.phases_s.items()},
        "wall_s": number(result.wall_s, 1),
        "devstack_warnings": len(result.log_records),
    }


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("OK" if ok else "MISSED")


def report(result: MarketplacesResult) -> str:
    o = result.options
    checks = met(result)
    lines = [section("eBay and Etsy: publishing, auto-delist delay (fake eBay and Etsy)"), ""]
    lines.append(
        f"  1. {o.users} users x {o.products} products of {o.photos} photos, published on eBay and Etsy at once "
        f"({sum(len(p.jobs) for p in result.publish.values())} jobs, all ended in {result.publish_wall_s:.1f} s; "
        f"{o.concurrency} instance(s) per function)"
    )
    rows: list[list[str]] = []
    for marketplace, published in result.publish.items():
        label = LABELS[marketplace]
        durations = published.durations_s
        p95 = percentile(durations, 0.95)
        bad = published.count("failed") + published.count("cancelled") + published.unfinished
        rows += [
            [
                f"{label}: completed / failed / unfinished",
                f"{published.count('completed')} / {published.count('failed') + published.count('cancelled')}"
                f" / {published.unfinished}",
                "0 failed",
                _mark(bad == 0),
            ],
            [
                f"{label}: job created -> completed p50 / p95 / max (s)",
                f"{fmt(percentile(durations, 0.5), 2)} / {fmt(p95, 2)} / {fmt(max(durations, default=math.nan), 2)}",
                f"p95 <= {TARGETS['publish_p95_s']:.0f}",
                _mark(checks[f"{marketplace}_publish_p95"]),
            ],
            [
                f"{label}: HTTP calls to the fake per publish (OAuth: {published.oauth_calls} in all)",
                fmt(published.per_publish(len(published.calls)), 1),
                "",
                "",
            ],
            [
                f"{label}: process_job invocations / billed ms per publish",
                f"{fmt(published.per_publish(len(published.wakes)), 1)} / "
                f"{fmt(published.per_publish(published.billed_ms), 0)}",
                "",
                "",
            ],
        ]
    lines.append(table(["figure", "now", "target", ""], rows))
    for marketplace, published in result.publish.items():
        kinds = ", ".join(
            f"{kind} {published.per_publish(count):.1f}" for kind, count in published.call_kinds.most_common()
        )
        causes = ", ".join(f"{cause} {count}" for cause, count in Counter(w.cause for w in published.wakes).items())
        lines.append(f"  {LABELS[marketplace]} calls per publish: {kinds}")
        lines.append(f"  {LABELS[marketplace]} process_job wake-ups by cause: {causes or '-'}")
        errors = sorted({job.error for job in published.jobs if job.error})
        if errors:
            lines.append(f"  {LABELS[marketplace]} errors: {'; '.join(errors[:3])}")

    delisted = result.delist_values("delisted_s")
    lines += [
        "",
        f"  2. auto-delist, {len(result.rounds)} sales one after another (a fresh product each, published on both):"
        " sold on the fake eBay, then the eBay orders import queued as the scheduler would (POST /jobs"
        " sync_orders); seconds from that POST",
    ]
    delist_rows = []
    for name, label in DELIST_FIGURES.items():
        values = result.delist_values(name)
        delist_rows.append(
            [label, fmt(percentile(values, 0.5), 2), fmt(max(values, default=math.nan), 2), fmt(len(values))]
        )
    lines.append(table(["figure (s)", "p50", "max", "n"], delist_rows))
    round_wakes = [wake for one in result.rounds for wake in one.wakes]
    if delisted:
        per_sale = ", ".join(
            f"{LABELS[m]} lane {sum(w.marketplace == m for w in round_wakes) / len(delisted):.1f} invocations /"
            f" {sum(w.billed_ms for w in round_wakes if w.marketplace == m) / len(delisted):.0f} billed ms"
            for m in MARKETPLACES
        )
        causes = ", ".join(
            f"{m}:{cause} {n}" for (m, cause), n in Counter((w.marketplace, w.cause) for w in round_wakes).items()
        )
        lines.append(f"  process_job per sale (the import, then the delete): {per_sale}; wake-ups by cause: {causes}")
    for one in result.rounds:
        if one.note:
            lines.append(f"  round of product {one.product_id}: {one.note}")
    slowest = max(delisted, default=math.nan)
    worst = result.worst_case_minutes
    lines.append(
        table(
            ["target", "now", "target", ""],
            [
                [
                    "sale -> delisted, from the import's POST, p50 (s)",
                    fmt(percentile(delisted, 0.5), 2),
                    f"<= {TARGETS['sale_to_delisted_p50_s']:.0f}",
                    _mark(checks["sale_to_delisted_p50"]),
                ],
                [
                    "worst case, default rules (min)",
                    fmt(worst, 2),
                    f"<= {TARGETS['worst_case_minutes']}",
                    _mark(checks["worst_case_bound"]),
                ],
            ],
        )
    )
    lines.append(
        f"  worst case = {ORDERS_RULE_MINUTES} min (the default orders rule: a sale just after an import waits for"
        f" the next) + {result.scheduler_tick_s / 60:g} min (the scheduler's tick, {SYNC_SCHEDULE})"
        f" + {fmt(slowest, 1)} s (the slowest POST -> delisted here) = {fmt(worst, 2)} min"
    )
    lines += ["", *_push_report(result, checks)]
    if result.log_records:
        lines.append(f"  devstack warnings/errors: {len(result.log_records)}")
        lines += [f"    {line}" for line in result.log_records[:5]]
    lines.append(
        f"  section took {result.wall_s:.0f} s: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.phases_s.items())
    )
    return "\n".join(lines)


def _push_report(result: MarketplacesResult, checks: dict[str, bool | None]) -> list[str]:
    lines = [
        f"  3. auto-delist by push, {len(result.push_rounds)} sales one after another: sold on the fake eBay, which"
        " sends its signed ORDER_CONFIRMATION to the devstack; nothing else queues the import; seconds from the sale",
    ]
    rows = []
    for name, label in PUSH_FIGURES.items():
        values = result.delist_values(name, push=True)
        rows.append(
            [
                label,
                fmt(percentile(values, 0.5), 2),
                fmt(percentile(values, 0.99), 2),
                fmt(max(values, default=math.nan), 2),
                fmt(len(values)),
            ]
        )
    for name, label in (("delete_started_s", "Etsy delete started"), ("delete_completed_s", "Etsy delete completed")):
        rows.append(
            [
                f"polling instead (modelled): sale -> {label}",
                fmt(result.polling_s(name, 0.5), 1),
                fmt(result.polling_s(name, 0.99), 1),
                "",
                "",
            ]
        )
    lines.append(table(["figure (s)", "p50", "p99", "max", "n"], rows))
    started = percentile(result.delist_values("delete_started_s", push=True), 0.5)
    lines.append(
        f"  target: sale -> Etsy delete started by push, p50 {fmt(started, 2)} s <="
        f" {TARGETS['push_sale_to_delete_started_p50_s']:.0f} s: {_mark(checks.get('push_sale_to_delete_started_p50'))}"
    )
    lines += [f"  push round of product {one.product_id}: {one.note}" for one in result.push_rounds if one.note]
    return lines
