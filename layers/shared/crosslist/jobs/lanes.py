"""Where the engine keeps its lanes and their jobs: a small interface, PostgreSQL behind it.

The engine (crosslist.jobs.engine) only ever works inside `LaneStore.locked(user, marketplace)`: one
transaction holding the lane's row lock, in which it reads and changes the lane and the lane's jobs.
A fake of this interface (tests/support/lanes.py) lets the engine's paths run in unit tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import (
    ACTIVE_JOB_STATUSES,
    IDLE_JOB_STATUSES,
    LIVE_LISTING_STATUSES,
    JobLane,
    JobStatus,
    ListingStatus,
    MarketplaceJob,
    MarketplaceListing,
    Order,
    Product,
)
from crosslist.due_times import announce
from crosslist.events import outbox
from crosslist.events.events import Event
from crosslist.imports.apply import apply_page, product_row
from crosslist.jobs.ending import job_ended
from crosslist.jobs.reactions import AfterCommit, JobReactions, NoReactions
from crosslist.marketplaces import DISPLAY_NAMES
from crosslist.workflows.base import (
    Completion,
    Duplicate,
    ImportedItem,
    Listed,
    ListingChange,
    ListingRef,
    NewProduct,
    OrderRecord,
    StepFailed,
)

JsonDict = dict[str, Any]
_LIVE = [ListingStatus(status) for status in LIVE_LISTING_STATUSES]


@dataclass
class Lane:
    user_id: str
    marketplace: str
    active_job_id: uuid.UUID | None = None
    in_flight: JsonDict | None = None
    pacing: JsonDict = field(default_factory=dict)
    paused_until: datetime | None = None
    pause_reason: str | None = None
    throttles: JsonDict = field(default_factory=dict)
    wake_at: datetime | None = None
    timers: list[int] = field(default_factory=list)  # due times of its timers in flight (epoch ms)


@dataclass
class Job:
    """A job as the engine sees it; the fields after `created_at` are the ones it changes."""

    id: uuid.UUID
    user_id: str
    marketplace: str
    action_code: str
    product_id: uuid.UUID | None
    batch_id: uuid.UUID | None
    input: JsonDict
    max_attempts: int
    step_timeout_ms: int
    priority: int
    cancel_requested: bool
    created_at: datetime
    status: JobStatus
    accumulated_data: JsonDict
    current_step: int
    attempts: int
    error: JsonDict | None = None
    result: JsonDict | None = None
    next_attempt_at: datetime | None = None
    wait_reason: str | None = None
    wait_until: datetime | None = None
    waiting_since: datetime | None = None
    unconfirmed_step: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status not in ACTIVE_JOB_STATUSES

    @property
    def batch_ref(self) -> str | None:
        return str(self.batch_id) if self.batch_id is not None else None


_LANE_FIELDS = tuple(f.name for f in fields(Lane))[2:]  # all but the key
_CHANGED = tuple(f.name for f in fields(Job))[tuple(f.name for f in fields(Job)).index("status") :]


class LaneTransaction(Protocol):
    lane: Lane

    def job(self, job_id: uuid.UUID) -> Job | None:
        """One of the lane's jobs, locked (a cancel request waits for this transaction)."""

    def next_job(self, *, outranking: int | None = None) -> Job | None:
        """The job that runs next among those not running: highest priority (1), then oldest. `outranking`: only
        of a priority strictly higher (a lower number) than that."""

    def save(self, job: Job) -> None: ...

    def queued_jobs(self) -> list[Job]:
        """Every job of the lane not running, in the order they run: to park them together."""

    def batch_queue(self, batch_id: uuid.UUID, limit: int) -> list[Job]:
        """The first `limit` jobs of the batch queued in the lane, in the order they run, locked like next_job's:
        those a bulk call may carry with the batch's job holding the lane (crosslist.jobs.bulk)."""

    def has_held_jobs(self) -> bool:
        """Whether the lane has queued jobs another transaction holds right now (next_job skips those: an
        HTTP cancel, the UPDATE marking a just-queued job): the lane must look again shortly."""

    def unpark(self) -> int:
        """The extension is back: the lane's jobs waiting for it are pending again; returns how many."""

    def complete(self, job: Job, completion: Completion) -> None:
        """Store the job as completed and, in the same transaction, the listing it created or changed."""

    def listings(self) -> list[ListingRef]:
        """The lane's user's listings on the lane's marketplace, with their products' title and price."""

    def update_listings(self, changes: list[ListingChange]) -> None:
        """Set the state of listings (a sync's findings), marking them synced."""

    def add_orders(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        """Store the orders not stored yet (one per external order id); returns those it stored."""

    def create_product(self, fields: NewProduct) -> str:
        """Store a new product of the lane's user; returns its id."""

    def link(self, product_id: str, external_id: str, url: str | None, image_urls: list[str] | None) -> None:
        """Upsert the product's listing on the lane's marketplace: `external_id`, active, showing `image_urls`
        (None: as recorded). The product must be the lane's user's."""

    def import_listings(self, import_id: str, items: list[ImportedItem]) -> JsonDict:
        """An import's page (crosslist.workflows.base.Records.import_listings)."""

    def annotate_listings(self, attributes: dict[str, JsonDict]) -> None:
        """crosslist.workflows.base.Records.annotate_listings."""

    def reconcile_catalogue(self, duplicates: list[Duplicate]) -> JsonDict:
        """A sync's reconciliation beyond its lane (crosslist.workflows.base.Records.reconcile_catalogue)."""

    def batch_counts(self, batch_id: uuid.UUID) -> dict[str, int]: ...

    def all_or_nothing(self) -> AbstractContextManager[None]:
        """What is written inside is kept whole, or undone whole when it raises (a savepoint)."""

    def after_commit(self) -> AfterCommit:
        """What this transaction did beyond its lane (a sale's delete jobs, a cancel requested: auto-delist; the
        events it recorded), for the engine to carry out once it has committed: lanes to wake, messages for the
        user, events to dispatch."""


class LaneStore(Protocol):
    def locked(self, user_id: str, marketplace: str) -> AbstractContextManager[LaneTransaction]:
        """A transaction holding the lane's lock; the lane's changes are written when it ends without error."""

    def overdue_lanes(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """Lanes whose wake-up is overdue (their timer or message was lost): (user_id, marketplace)."""

    def unqueued_lanes(self, created_before: datetime, limit: int) -> list[tuple[str, str, uuid.UUID]]:
        """Pending jobs whose wake-up never reached the queue: (user_id, marketplace, job_id)."""

    def mark_queued(self, job_ids: list[uuid.UUID]) -> None: ...


@dataclass(frozen=True)
class Earliest:
    """What the sweeper will next find, at the earliest: the soonest `wake_at` of any lane, the creation of the
    oldest pending job never marked queued, and of the oldest event never dispatched (None: there is none)."""

    wake_at: datetime | None
    unqueued_created_at: datetime | None
    undispatched_created_at: datetime | None = None


class SweptLanes(Protocol):
    """What the sweeper reads and writes (crosslist.jobs.sweeper)."""

    def overdue_lanes(self, before: datetime, limit: int) -> list[tuple[str, str]]: ...

    def unqueued_lanes(self, created_before: datetime, limit: int) -> list[tuple[str, str, uuid.UUID]]: ...

    def mark_queued(self, job_ids: list[uuid.UUID]) -> None: ...

    def earliest(self) -> Earliest:
        """What the next sweep can find at the earliest, as it stands now."""


class PostgresLaneStore:
    def __init__(self, sessions: sessionmaker[Session], reactions: JobReactions | None = None) -> None:
        """`reactions`: what reacts, in a turn's transaction, to a job's end and to orders stored (auto-delist's,
        handed in by the composition root); None: nothing does."""
        self._sessions = sessions
        self._reactions = reactions or NoReactions()

    @contextmanager
    def locked(self, user_id: str, marketplace: str) -> Iterator[LaneTransaction]:
        with transaction(self._sessions) as session:
            session.execute(insert(JobLane).values(user_id=user_id, marketplace=marketplace).on_conflict_do_nothing())
            row = session.scalars(
                select(JobLane).where(JobLane.user_id == user_id, JobLane.marketplace == marketplace).with_for_update()
            ).one()
            lane = Lane(
                user_id=user_id,
                marketplace=marketplace,
                active_job_id=row.active_job_id,
                in_flight=row.in_flight,
                pacing=dict(row.pacing or {}),
                paused_until=row.paused_until,
                pause_reason=row.pause_reason,
                throttles=dict(row.throttles or {}),
                wake_at=row.wake_at,
                timers=list(row.timers or []),
            )
            yield _PostgresLaneTransaction(session, lane, self._reactions)
            if _sooner(lane.wake_at, row.wake_at):  # the sweeper must look again (a later one it already covers)
                announce(session, "lanes")
            for name in _LANE_FIELDS:
                setattr(row, name, getattr(lane, name))
            row.updated_at = func.now()

    def overdue_lanes(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(JobLane.user_id, JobLane.marketplace)
                .where(JobLane.wake_at < before)
                .order_by(JobLane.wake_at)
                .limit(limit)
            ).all()
        return [(user, marketplace) for user, marketplace in rows]

    def earliest(self) -> Earliest:
        soonest_wake = select(func.min(JobLane.wake_at)).scalar_subquery()
        oldest_unqueued = (
            select(func.min(MarketplaceJob.created_at))
            .where(MarketplaceJob.status == JobStatus.PENDING, MarketplaceJob.enqueued_at.is_(None))
            .scalar_subquery()
        )
        with transaction(self._sessions) as session:
            wake_at, unqueued = session.execute(select(soonest_wake, oldest_unqueued)).one()
            undispatched = outbox.oldest_undispatched(session)
        return Earliest(wake_at=wake_at, unqueued_created_at=unqueued, undispatched_created_at=undispatched)

    def unqueued_lanes(self, created_before: datetime, limit: int) -> list[tuple[str, str, uuid.UUID]]:
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(MarketplaceJob.user_id, MarketplaceJob.marketplace, MarketplaceJob.id)
                .where(
                    MarketplaceJob.status == JobStatus.PENDING,
                    MarketplaceJob.enqueued_at.is_(None),
                    MarketplaceJob.created_at < created_before,
                )
                .order_by(MarketplaceJob.created_at)
                .limit(limit)
            ).all()
        return [(user, marketplace, job_id) for user, marketplace, job_id in rows]

    def resume_after_reauth(self, user_id: str, marketplace: str) -> bool:
        """The user connected the account again: the lane's reauth pause ends (the lane must then be woken; if
        that wake-up is lost, the sweeper wakes it, since it is due now). Returns whether it was paused for that."""
        with transaction(self._sessions) as session:
            resumed = session.execute(
                update(JobLane)
                .where(
                    JobLane.user_id == user_id,
                    JobLane.marketplace == marketplace,
                    JobLane.pause_reason == "reauth_required",
                )
                # The reason stays: the lane's next turn sees it and queues the jobs that waited again.
                .values(paused_until=None, wake_at=func.least(func.coalesce(JobLane.wake_at, func.now()), func.now()))
                .returning(JobLane.user_id)
            ).first()
            if resumed is not None:
                announce(session, "lanes")
        return resumed is not None

    def mark_queued(self, job_ids: list[uuid.UUID]) -> None:
        if job_ids:
            with transaction(self._sessions) as session:
                session.execute(
                    update(MarketplaceJob).where(MarketplaceJob.id.in_(job_ids)).values(enqueued_at=func.now())
                )


class _PostgresLaneTransaction:
    def __init__(self, session: Session, lane: Lane, reactions: JobReactions) -> None:
        self._session = session
        self.lane = lane
        self._reactions = reactions
        self._rows: dict[uuid.UUID, MarketplaceJob] = {}
        self._after_commit = AfterCommit()

    def job(self, job_id: uuid.UUID) -> Job | None:
        row = self._session.scalars(
            select(MarketplaceJob)
            .where(
                MarketplaceJob.id == job_id,
                MarketplaceJob.user_id == self.lane.user_id,
                MarketplaceJob.marketplace == self.lane.marketplace,
            )
            .with_for_update()
        ).one_or_none()
        return None if row is None else self._job(row)

    def next_job(self, *, outranking: int | None = None) -> Job | None:
        queued = self._queued()
        if outranking is not None:
            queued = queued.where(MarketplaceJob.priority < outranking)
        row = self._session.scalars(
            queued.order_by(MarketplaceJob.priority, MarketplaceJob.created_at, MarketplaceJob.id).limit(1)
        ).one_or_none()
        return None if row is None else self._job(row)

    def queued_jobs(self) -> list[Job]:
        rows = self._session.scalars(self._queued().order_by(MarketplaceJob.priority, MarketplaceJob.created_at))
        return [self._job(row) for row in rows]

    def batch_queue(self, batch_id: uuid.UUID, limit: int) -> list[Job]:
        rows = self._session.scalars(
            self._queued()
            .where(MarketplaceJob.batch_id == batch_id)
            .order_by(MarketplaceJob.priority, MarketplaceJob.created_at, MarketplaceJob.id)
            .limit(limit)
        )
        return [self._job(row) for row in rows]

    def has_held_jobs(self) -> bool:
        # Not locking: it sees the rows the locking read skipped.
        held = self._session.scalar(
            select(MarketplaceJob.id)
            .where(
                MarketplaceJob.user_id == self.lane.user_id,
                MarketplaceJob.marketplace == self.lane.marketplace,
                MarketplaceJob.status.in_(IDLE_JOB_STATUSES),
            )
            .limit(1)
        )
        return held is not None

    def unpark(self) -> int:
        unparked = self._session.execute(
            update(MarketplaceJob)
            .where(
                MarketplaceJob.user_id == self.lane.user_id,
                MarketplaceJob.marketplace == self.lane.marketplace,
                MarketplaceJob.status == JobStatus.WAITING_FOR_PLUGIN,
            )
            .values(
                status=JobStatus.PENDING, wait_reason=None, wait_until=None, waiting_since=None, updated_at=func.now()
            )
            .execution_options(synchronize_session=False)
        )
        return int(unparked.rowcount)  # type: ignore[attr-defined]  # a CursorResult for an UPDATE

    def _queued(self) -> Any:
        return (
            select(MarketplaceJob)
            .where(
                MarketplaceJob.user_id == self.lane.user_id,
                MarketplaceJob.marketplace == self.lane.marketplace,
                MarketplaceJob.status.in_(IDLE_JOB_STATUSES),
            )
            .with_for_update(skip_locked=True)  # a job an HTTP cancel holds is not the lane's next one now
        )

    def save(self, job: Job) -> None:
        row = self._rows[job.id]
        ending = row.status in ACTIVE_JOB_STATUSES and job.ended
        for name in _CHANGED:
            setattr(row, name, getattr(job, name))
        row.updated_at = func.now()
        if ending:  # its event recorded; what waited for it (a sale's delete, a product's removal) goes on
            job_ended(self._session, row, reactions=self._reactions, after=self._after_commit)

    def after_commit(self) -> AfterCommit:
        return self._after_commit

    @contextmanager
    def all_or_nothing(self) -> Iterator[None]:
        with self._session.begin_nested():
            yield

    def complete(self, job: Job, completion: Completion) -> None:
        if completion.listing is not None and job.product_id is not None:
            # Taken as job creation takes it: a publish created meanwhile either sees this listing or is
            # refused by the one-active-job index, never both missed.
            self._session.execute(select(Product.id).where(Product.id == job.product_id).with_for_update())
            self._upsert_listing(job.user_id, job.product_id, job.marketplace, completion.listing)
        self.save(job)

    def create_product(self, fields: NewProduct) -> str:
        product = product_row(self.lane.user_id, fields)
        self._session.add(product)
        self._session.flush()
        return str(product.id)

    def import_listings(self, import_id: str, items: list[ImportedItem]) -> JsonDict:
        user_id, marketplace = self.lane.user_id, self.lane.marketplace
        return apply_page(
            self._session,
            user_id,
            marketplace,
            import_id,
            items,
            create=self.create_product,
            link=lambda product_id, listed: self._upsert_listing(user_id, uuid.UUID(product_id), marketplace, listed),
        )

    def annotate_listings(self, attributes: dict[str, JsonDict]) -> None:
        marketplace = self.lane.marketplace
        for external_id, more in attributes.items():
            product = self._session.scalar(
                select(Product)
                .join(MarketplaceListing, MarketplaceListing.product_id == Product.id)
                .where(
                    MarketplaceListing.user_id == self.lane.user_id,
                    MarketplaceListing.marketplace == marketplace,
                    MarketplaceListing.external_id == external_id,
                    MarketplaceListing.status.in_(_LIVE),
                )
                .with_for_update(of=Product)
            )
            if product is not None:
                mine = dict(product.marketplace_attributes or {})
                mine[marketplace] = {**(mine.get(marketplace) or {}), **more}
                product.marketplace_attributes = mine

    def link(self, product_id: str, external_id: str, url: str | None, image_urls: list[str] | None) -> None:
        owned = self._session.scalar(
            select(Product.id)
            .where(Product.id == uuid.UUID(product_id), Product.user_id == self.lane.user_id)
            .with_for_update()
        )
        if owned is None:
            raise LookupError(f"product {product_id} is not one of {self.lane.user_id}'s")
        listed = Listed(external_id=external_id, url=url, status="active", image_urls=image_urls)
        self._upsert_listing(self.lane.user_id, owned, self.lane.marketplace, listed)

    def _upsert_listing(self, user_id: str, product_id: uuid.UUID, marketplace: str, listing: Listed) -> None:
        """The product's one listing on `marketplace` (created, or replacing what it had); its photos stay as
        recorded when `listing.image_urls` is None, and so does its URL when `listing.url` is (for the same item).
        StepFailed (`listing_taken`) when the item is live on another product: one item, one product."""
        if listing.status in LIVE_LISTING_STATUSES:
            # Under the lane's lock every listing write of this marketplace is serialised: a look is enough
            # (the partial unique index stands behind it).
            holder = self._session.scalar(
                select(MarketplaceListing.product_id).where(
                    MarketplaceListing.user_id == user_id,
                    MarketplaceListing.marketplace == marketplace,
                    MarketplaceListing.external_id == listing.external_id,
                    MarketplaceListing.product_id != product_id,
                    MarketplaceListing.status.in_(_LIVE),
                )
            )
            if holder is not None:
                raise StepFailed(
                    "listing_taken",
                    f"{DISPLAY_NAMES.get(marketplace, marketplace)} item {listing.external_id} is already the listing"
                    f" of product {holder}: one item is listed for one product",
                    retryable=False,
                    detail={"external_id": listing.external_id, "product_id": str(holder)},
                )
        upsert = insert(MarketplaceListing).values(
            id=uuid.uuid4(),
            user_id=user_id,
            product_id=product_id,
            marketplace=marketplace,
            external_id=listing.external_id,
            url=listing.url,
            status=ListingStatus(listing.status),
            image_urls=listing.image_urls,
            last_synced_at=func.now(),
        )
        changed: dict[str, Any] = {
            "external_id": upsert.excluded.external_id,
            # A listing of another item (a product published or linked again) never keeps the old one's URL.
            "url": case(
                (
                    upsert.excluded.external_id == MarketplaceListing.external_id,
                    func.coalesce(upsert.excluded.url, MarketplaceListing.url),
                ),
                else_=upsert.excluded.url,
            ),
            "status": upsert.excluded.status,
            "last_synced_at": func.now(),
            "updated_at": func.now(),
        }
        if listing.image_urls is not None:
            changed["image_urls"] = upsert.excluded.image_urls
        self._session.execute(
            upsert.on_conflict_do_update(index_elements=["user_id", "product_id", "marketplace"], set_=changed)
        )

    def listings(self) -> list[ListingRef]:
        rows = self._session.execute(
            select(MarketplaceListing, Product.title, Product.price, Product.marketplace_attributes)
            .join(Product, Product.id == MarketplaceListing.product_id)
            .where(
                MarketplaceListing.user_id == self.lane.user_id,
                MarketplaceListing.marketplace == self.lane.marketplace,
            )
            .order_by(MarketplaceListing.created_at)
        ).all()
        return [
            ListingRef(
                product_id=str(listing.product_id),
                external_id=listing.external_id,
                url=listing.url,
                status=listing.status.value,
                title=title,
                price=str(price),
                attributes=dict((attributes or {}).get(self.lane.marketplace) or {}),
            )
            for listing, title, price, attributes in rows
        ]

    def add_orders(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        added: list[tuple[uuid.UUID, OrderRecord]] = []
        for order in orders:
            stored = self._session.execute(
                insert(Order)
                .values(
                    id=uuid.uuid4(),
                    user_id=self.lane.user_id,
                    marketplace=self.lane.marketplace,
                    external_order_id=order.external_order_id,
                    product_id=uuid.UUID(order.product_id) if order.product_id else None,
                    item_ids=order.item_ids,
                    title=order.title[:500],
                    price=Decimal(order.price),
                    currency=order.currency[:3],
                    buyer=order.buyer,
                    status=order.status,
                    sold_at=datetime.fromisoformat(order.sold_at),
                )
                .on_conflict_do_nothing(constraint="uq_orders_external")
                .returning(Order.id)
            ).first()
            if stored is not None:
                added.append((stored.id, order))
        # In this same transaction: a sale is acted on with its order, once (auto-delist).
        self._reactions.orders_added(self._session, self.lane.user_id, self.lane.marketplace, added, self._after_commit)
        return [order for _, order in added]

    def update_listings(self, changes: list[ListingChange]) -> None:
        other = aliased(MarketplaceListing)
        for change in changes:
            changed = (
                update(MarketplaceListing)
                .where(
                    MarketplaceListing.user_id == self.lane.user_id,
                    MarketplaceListing.marketplace == self.lane.marketplace,
                    MarketplaceListing.product_id == uuid.UUID(change.product_id),
                    MarketplaceListing.status != ListingStatus(change.status),
                )
                .values(status=ListingStatus(change.status), last_synced_at=func.now())
                .returning(MarketplaceListing.external_id)
            )
            if change.status in LIVE_LISTING_STATUSES:  # never live on two products: the other keeps it
                changed = changed.where(
                    ~exists().where(
                        other.user_id == MarketplaceListing.user_id,
                        other.marketplace == MarketplaceListing.marketplace,
                        other.external_id == MarketplaceListing.external_id,
                        other.id != MarketplaceListing.id,
                        other.status.in_(_LIVE),
                    )
                )
            previous = self._session.scalar(
                select(MarketplaceListing.status).where(
                    MarketplaceListing.user_id == self.lane.user_id,
                    MarketplaceListing.marketplace == self.lane.marketplace,
                    MarketplaceListing.product_id == uuid.UUID(change.product_id),
                )
            )
            external_id = self._session.scalar(changed)
            if external_id is not None and previous is not None:
                self._drifted(change, external_id, previous.value)

    def _drifted(self, change: ListingChange, external_id: str, previous: str) -> None:
        """The marketplace shows the listing in another state than crosslist had recorded (sold, ended or
        deleted there, hidden by the marketplace…): `listing.drift`, with the change."""
        event = Event(
            type="listing.drift",
            user_id=self.lane.user_id,
            payload={
                "product_id": change.product_id,
                "marketplace": self.lane.marketplace,
                "external_id": external_id,
                "previous_status": previous,
                "status": change.status,
            },
        )
        outbox.record(self._session, event)
        self._after_commit.events.append(event)

    def reconcile_catalogue(self, duplicates: list[Duplicate]) -> JsonDict:
        self._session.flush()
        return self._reactions.synced(
            self._session, self.lane.user_id, self.lane.marketplace, duplicates, self._after_commit
        )

    def batch_counts(self, batch_id: uuid.UUID) -> dict[str, int]:
        self._session.flush()
        rows = self._session.execute(
            select(MarketplaceJob.status, func.count())
            .where(MarketplaceJob.batch_id == batch_id, MarketplaceJob.user_id == self.lane.user_id)
            .group_by(MarketplaceJob.status)
        ).all()
        counts = dict.fromkeys((status.value for status in JobStatus), 0)
        counts.update({status.value: total for status, total in rows})
        return counts

    def _job(self, row: MarketplaceJob) -> Job:
        self._rows[row.id] = row
        return Job(
            id=row.id,
            user_id=row.user_id,
            marketplace=row.marketplace,
            action_code=row.action_code,
            product_id=row.product_id,
            batch_id=row.batch_id,
            input=row.input,
            max_attempts=row.max_attempts,
            step_timeout_ms=row.step_timeout_ms,
            priority=row.priority,
            cancel_requested=row.cancel_requested_at is not None,
            created_at=row.created_at,
            **{name: getattr(row, name) for name in _CHANGED},
        )


def _sooner(new: datetime | None, old: datetime | None) -> bool:
    """Whether a lane's new `wake_at` asks for it sooner than the old one did."""
    return new is not None and (old is None or new < old)
