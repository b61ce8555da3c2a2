"""An in-memory LaneStore (crosslist.jobs.lanes) for the engine's unit tests.

Like PostgreSQL, a `locked()` block works on its own copy of the lanes and jobs and writes it back only
when the block ends without an error: an exception rolls everything it changed back. A Job handed out
is a copy too, so only what the engine `save`s is kept.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from crosslist.db.models import IDLE_JOB_STATUSES, JobStatus
from crosslist.jobs.lanes import Job, Lane, LaneTransaction
from crosslist.jobs.reactions import AfterCommit
from crosslist.workflows.base import (
    Completion,
    Duplicate,
    ImportedItem,
    JsonDict,
    Listed,
    ListingChange,
    ListingRef,
    NewProduct,
    OrderRecord,
)

LaneKey = tuple[str, str]  # (user_id, marketplace)
ListingKey = tuple[str, uuid.UUID, str]  # (user_id, product_id, marketplace), unique like the table's index
CREATED = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class _State:
    lanes: dict[LaneKey, Lane] = field(default_factory=dict)
    jobs: dict[uuid.UUID, Job] = field(default_factory=dict)
    listings: dict[ListingKey, Listed] = field(default_factory=dict)
    completed: list[uuid.UUID] = field(default_factory=list)  # every tx.complete, in order
    orders: dict[str, OrderRecord] = field(default_factory=dict)  # by external order id
    products: dict[uuid.UUID, tuple[str, NewProduct]] = field(default_factory=dict)  # created by jobs: (user, fields)


class InMemoryLaneStore:
    def __init__(self) -> None:
        self._state = _State()
        self.queued: set[uuid.UUID] = set()  # jobs marked queued (mark_queued)
        self._created = itertools.count(1)

    # ------------------------------------------------------------------ LaneStore
    @contextmanager
    def locked(self, user_id: str, marketplace: str) -> Iterator[LaneTransaction]:
        working = copy.deepcopy(self._state)
        lane = working.lanes.setdefault((user_id, marketplace), Lane(user_id, marketplace))
        yield _Transaction(working, lane)
        self._state = working

    def overdue_lanes(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        due = sorted((lane.wake_at, key) for key, lane in self._state.lanes.items() if lane.wake_at is not None)
        return [key for wake_at, key in due if wake_at < before][:limit]

    def unqueued_lanes(self, created_before: datetime, limit: int) -> list[tuple[str, str, uuid.UUID]]:
        jobs = sorted(self._state.jobs.values(), key=lambda job: job.created_at)
        return [
            (job.user_id, job.marketplace, job.id)
            for job in jobs
            if job.status is JobStatus.PENDING and job.id not in self.queued and job.created_at < created_before
        ][:limit]

    def mark_queued(self, job_ids: list[uuid.UUID]) -> None:
        self.queued.update(job_ids)

    # ------------------------------------------------------------------ for tests
    def add_job(
        self,
        user_id: str = "alice",
        marketplace: str = "vinted",
        action_code: str = "publish",
        *,
        input: dict[str, Any] | None = None,
        product_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
        priority: int = 5,
        max_attempts: int = 3,
        step_timeout_ms: int = 60_000,
        **changes: Any,
    ) -> Job:
        """Store a new pending job (each one created a second after the previous) and return it."""
        job = Job(
            id=uuid.uuid4(),
            user_id=user_id,
            marketplace=marketplace,
            action_code=action_code,
            product_id=product_id,
            batch_id=batch_id,
            input=input or {},
            max_attempts=max_attempts,
            step_timeout_ms=step_timeout_ms,
            priority=priority,
            cancel_requested=False,
            created_at=CREATED + timedelta(seconds=next(self._created)),
            status=JobStatus.PENDING,
            accumulated_data={},
            current_step=0,
            attempts=0,
        )
        for name, value in changes.items():
            setattr(job, name, value)
        self._state.jobs[job.id] = job
        return copy.deepcopy(job)

    def job(self, job_id: uuid.UUID) -> Job:
        """The job as stored (changing it changes the store, as a concurrent request would)."""
        return self._state.jobs[job_id]

    def jobs(self) -> list[Job]:
        return sorted(self._state.jobs.values(), key=lambda job: job.created_at)

    def lane(self, user_id: str = "alice", marketplace: str = "vinted") -> Lane:
        """The lane as stored (a fresh one if it was never locked)."""
        return self._state.lanes.setdefault((user_id, marketplace), Lane(user_id, marketplace))

    @property
    def listings(self) -> dict[ListingKey, Listed]:
        return self._state.listings

    @property
    def completed(self) -> list[uuid.UUID]:
        return self._state.completed

    @property
    def products(self) -> dict[uuid.UUID, tuple[str, NewProduct]]:
        """The products jobs created (create_product): id -> (user, fields)."""
        return self._state.products


class _Transaction:
    def __init__(self, state: _State, lane: Lane) -> None:
        self._state = state
        self.lane = lane

    def job(self, job_id: uuid.UUID) -> Job | None:
        job = self._state.jobs.get(job_id)
        if job is None or (job.user_id, job.marketplace) != (self.lane.user_id, self.lane.marketplace):
            return None
        return copy.deepcopy(job)

    def next_job(self, *, outranking: int | None = None) -> Job | None:
        queued = [job for job in self.queued_jobs() if outranking is None or job.priority < outranking]
        return queued[0] if queued else None

    def save(self, job: Job) -> None:
        self._state.jobs[job.id] = copy.deepcopy(job)

    def has_held_jobs(self) -> bool:
        return False  # one transaction at a time: nothing is ever held by another

    def queued_jobs(self) -> list[Job]:
        jobs = [job for job in self._lane_jobs() if job.status in IDLE_JOB_STATUSES]
        return [copy.deepcopy(job) for job in sorted(jobs, key=lambda j: (j.priority, j.created_at, j.id))]

    def batch_queue(self, batch_id: uuid.UUID, limit: int) -> list[Job]:
        return [job for job in self.queued_jobs() if job.batch_id == batch_id][:limit]

    def unpark(self) -> int:
        parked = [job for job in self._lane_jobs() if job.status is JobStatus.WAITING_FOR_PLUGIN]
        for job in parked:
            job.status = JobStatus.PENDING
            job.wait_reason = job.wait_until = job.waiting_since = None
        return len(parked)

    @contextmanager
    def all_or_nothing(self) -> Iterator[None]:
        kept = copy.deepcopy(self._state)
        try:
            yield
        except BaseException:
            self._state.__dict__.update(kept.__dict__)
            raise

    def complete(self, job: Job, completion: Completion) -> None:
        if completion.listing is not None and job.product_id is not None:
            self._state.listings[(job.user_id, job.product_id, job.marketplace)] = completion.listing
        self._state.completed.append(job.id)
        self.save(job)

    def listings(self) -> list[ListingRef]:
        refs: list[ListingRef] = []
        for (user_id, product_id, marketplace), listed in self._state.listings.items():
            if (user_id, marketplace) != (self.lane.user_id, self.lane.marketplace):
                continue
            created = self._state.products.get(product_id)  # products not created by a job are not known here
            title, price = (created[1].title, created[1].price) if created is not None else ("", "")
            refs.append(ListingRef(str(product_id), listed.external_id, listed.url, listed.status, title, price))
        return refs

    def create_product(self, fields: NewProduct) -> str:
        product_id = uuid.uuid4()
        self._state.products[product_id] = (self.lane.user_id, fields)
        return str(product_id)

    def link(self, product_id: str, external_id: str, url: str | None, image_urls: list[str] | None) -> None:
        key = (self.lane.user_id, uuid.UUID(product_id), self.lane.marketplace)
        created = self._state.products.get(key[1])
        if created is not None and created[0] != self.lane.user_id:
            raise LookupError(f"product {product_id} is not one of {self.lane.user_id}'s")
        before = self._state.listings.get(key)
        if image_urls is None and before is not None:
            image_urls = before.image_urls
        if url is None and before is not None and before.external_id == external_id:
            url = before.url
        self._state.listings[key] = Listed(external_id, url, "active", image_urls)

    def add_orders(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        added = [order for order in orders if order.external_order_id not in self._state.orders]
        self._state.orders.update({order.external_order_id: order for order in added})
        return added

    def update_listings(self, changes: list[ListingChange]) -> None:
        key = (self.lane.user_id, self.lane.marketplace)
        for change in changes:
            listing_key = (key[0], uuid.UUID(change.product_id), key[1])
            if listing_key in self._state.listings:
                self._state.listings[listing_key] = replace(self._state.listings[listing_key], status=change.status)

    def after_commit(self) -> AfterCommit:
        return AfterCommit()  # no sales here: auto-delist is tested against PostgreSQL

    def reconcile_catalogue(self, duplicates: list[Duplicate]) -> JsonDict:
        return {}  # reconciliation is tested against PostgreSQL (tests/integration/test_reconciliation.py)

    def import_listings(self, import_id: str, items: list[ImportedItem]) -> JsonDict:
        raise NotImplementedError("imports are tested against PostgreSQL (tests/integration/test_imports.py)")

    def annotate_listings(self, attributes: dict[str, JsonDict]) -> None:
        raise NotImplementedError("imports are tested against PostgreSQL (tests/integration/test_imports.py)")

    def batch_counts(self, batch_id: uuid.UUID) -> dict[str, int]:
        counts = dict.fromkeys((status.value for status in JobStatus), 0)
        for job in self._state.jobs.values():
            if job.batch_id == batch_id and job.user_id == self.lane.user_id:
                counts[job.status.value] += 1
        return counts

    def _lane_jobs(self) -> list[Job]:
        return [
            job
            for job in self._state.jobs.values()
            if (job.user_id, job.marketplace) == (self.lane.user_id, self.lane.marketplace)
        ]
