"""Use cases of the job API: create a job (idempotently) and read it back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crosslist import cursors
from crosslist.db.engine import transaction, violated_constraint
from crosslist.db.models import (
    ACTIVE_JOB_STATUSES,
    ACTIVE_PRODUCT_JOB_INDEX,
    IDLE_JOB_STATUSES,
    LIVE_LISTING_STATUSES,
    JobStatus,
    ListingStatus,
    MarketplaceActionType,
    MarketplaceBatch,
    MarketplaceJob,
    MarketplaceListing,
    Product,
)
from crosslist.due_times import announce
from crosslist.errors import Conflict, CrosslistError, InvalidRequest, NotFound, ServiceUnavailable
from crosslist.jobs.ending import end_job
from crosslist.jobs.queue import JobQueue
from crosslist.jobs.queued import QUEUED, lane_holders, queued_behind
from crosslist.jobs.reactions import AfterCommit, JobReactions, NoReactions, wake_lanes
from crosslist.jobs.schemas import (
    BatchCreated,
    BatchView,
    CreateBatchRequest,
    CreateJobRequest,
    JobPage,
    JobView,
    RefusedProduct,
    UnlinkedItem,
    UnlinkedItems,
)
from crosslist.marketplaces import DISPLAY_NAMES, EXTENSION_MARKETPLACES, PRODUCT_USE, Marketplace
from crosslist.marketplaces.seller import check_currency, seller_for_job
from crosslist.products.service import snapshot
from crosslist.workflows.base import Workflow
from crosslist.workflows.registry import WORKFLOWS, find_workflow

if TYPE_CHECKING:
    from crosslist.events.dispatch import Dispatcher

logger = Logger(child=True)
DEFAULT_PAGE_SIZE = 50
SCHEDULED_PRIORITY = 8  # a periodic sync gives way to what the user asked for


_last_created: datetime | None = None


def _job_clock() -> datetime:
    """Now, strictly after the last job this instance created: jobs created in one go keep their order."""
    global _last_created  # noqa: PLW0603 - one clock per Lambda instance
    now = datetime.now(UTC)
    if _last_created is not None and now <= _last_created:
        now = _last_created + timedelta(microseconds=1)
    _last_created = now
    return now


@dataclass(frozen=True)
class ScheduledJob:
    job_id: uuid.UUID
    queued: bool  # False: one of the same action was still active (job_id is that one), none was queued


class JobService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        queue: JobQueue,
        *,
        reactions: JobReactions | None = None,
        events: Dispatcher | None = None,
    ) -> None:
        """`reactions`: what reacts to a job's end (auto-delist's, handed in by the composition root); `events`:
        delivers the events a cancel recorded (None: the sweeper does)."""
        self._reactions = reactions or NoReactions()
        self._events = events
        self._sessions = sessions
        self._queue = queue

    def create(self, user_id: str, request: CreateJobRequest) -> tuple[JobView, bool]:
        """Store a pending job and queue it. Returns (job, created); a repeated idempotency key returns
        the job it created the first time."""
        try:
            with transaction(self._sessions) as session:
                job = self._find_by_idempotency_key(session, user_id, request)
                created = job is None
                if job is None:
                    job = self.new_job(session, user_id, request)
        except IntegrityError as conflict:
            # A concurrent request stored its job first. Same idempotency key: return that job. Another
            # job of the same product: the database refused this one (see ACTIVE_PRODUCT_JOB_INDEX).
            with transaction(self._sessions) as session:
                job = self._find_by_idempotency_key(session, user_id, request)
                if job is None and violated_constraint(conflict) == ACTIVE_PRODUCT_JOB_INDEX:
                    self._refuse_duplicate(session, user_id, request)
            if job is None:
                raise
            created = False
        if job.enqueued_at is None:  # first time, or a replay of a request whose queueing failed
            self.enqueue(job)
        return JobView.of(job), created

    def schedule(self, user_id: str, marketplace: Marketplace, action: str, *, idempotency_key: str) -> ScheduledJob:
        """A scheduled job (a sync rule's): the one this key already created (a retried schedule), else none
        while one of the same action is still active for the user (that one is returned), else a new one."""
        with transaction(self._sessions) as session:
            existing = session.scalar(
                select(MarketplaceJob.id).where(
                    MarketplaceJob.user_id == user_id, MarketplaceJob.idempotency_key == idempotency_key
                )
            )
            active = session.scalar(
                select(MarketplaceJob.id)
                .where(
                    MarketplaceJob.user_id == user_id,
                    MarketplaceJob.marketplace == marketplace,
                    MarketplaceJob.action_code == action,
                    MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
                )
                .limit(1)
            )
        if existing is not None:
            return ScheduledJob(existing, queued=True)
        if active is not None:
            return ScheduledJob(active, queued=False)
        request = CreateJobRequest(
            marketplace=marketplace, action=action, priority=SCHEDULED_PRIORITY, idempotency_key=idempotency_key
        )
        try:
            job, _ = self.create(user_id, request)
        except ServiceUnavailable as unqueued:  # stored, not queued: the sweeper queues it within minutes
            return ScheduledJob(uuid.UUID(str(unqueued.details["job_id"])), queued=True)
        return ScheduledJob(job.id, queued=True)

    def get(self, user_id: str, job_id: uuid.UUID) -> JobView:
        with transaction(self._sessions) as session:
            job = session.scalar(
                select(MarketplaceJob).where(MarketplaceJob.id == job_id, MarketplaceJob.user_id == user_id)
            )
            if job is None:
                raise NotFound(f"job {job_id} not found")
            return _view(job, lane_holders(session, user_id))

    def create_batch(self, user_id: str, request: CreateBatchRequest) -> BatchCreated:
        """One job per product. A product that cannot get a job (not found, not publishable, already in
        progress…) is reported with its reason; the others are queued. 422 when none can."""
        refused: list[RefusedProduct] = []
        jobs: list[MarketplaceJob] = []
        with transaction(self._sessions) as session:
            self._action(session, request.marketplace, request.action)  # the whole batch is refused if invalid
            batch = MarketplaceBatch(
                id=uuid.uuid4(), user_id=user_id, marketplace=request.marketplace, action_code=request.action
            )
            session.add(batch)
            session.flush()
            # Sorted: two batches sharing products lock them in the same order, never in a deadlock.
            for product_id in sorted(request.product_ids):
                single = CreateJobRequest(
                    marketplace=request.marketplace,
                    action=request.action,
                    product_id=product_id,
                    priority=request.priority,
                )
                try:
                    with session.begin_nested():  # a refused product undoes only its own writes
                        job = self.new_job(session, user_id, single, batch_id=batch.id)
                        session.flush()
                except CrosslistError as refusal:
                    refused.append(RefusedProduct(product_id=product_id, code=refusal.code, message=refusal.message))
                except IntegrityError as conflict:
                    if violated_constraint(conflict) != ACTIVE_PRODUCT_JOB_INDEX:
                        raise
                    message = f"a job for this product on {DISPLAY_NAMES[request.marketplace]} is already in progress"
                    refused.append(RefusedProduct(product_id=product_id, code="job_in_progress", message=message))
                else:
                    jobs.append(job)
            if not jobs:
                raise InvalidRequest(
                    "no product of the batch can get a job",
                    code="batch_refused",
                    refused=[r.model_dump(mode="json") for r in refused],
                )
            batch.total_jobs = len(jobs)
        self._enqueue_batch(jobs)
        view = self.batch(user_id, batch.id)
        return BatchCreated(**view.model_dump(), refused=refused)

    def batch(self, user_id: str, batch_id: uuid.UUID) -> BatchView:
        with transaction(self._sessions) as session:
            batch = session.scalar(
                select(MarketplaceBatch).where(MarketplaceBatch.id == batch_id, MarketplaceBatch.user_id == user_id)
            )
            if batch is None:
                raise NotFound(f"batch {batch_id} not found")
            jobs = list(
                session.scalars(
                    select(MarketplaceJob)
                    .where(MarketplaceJob.batch_id == batch_id, MarketplaceJob.user_id == user_id)
                    .order_by(MarketplaceJob.created_at, MarketplaceJob.id)
                )
            )
            counts = dict.fromkeys((status.value for status in JobStatus), 0)
            for job in jobs:
                counts[job.status.value] += 1
            holders = lane_holders(session, user_id)
            return BatchView(
                id=batch.id,
                marketplace=batch.marketplace,
                action=batch.action_code,
                total_jobs=batch.total_jobs,
                counts=counts,
                jobs=[_view(job, holders) for job in jobs],
                created_at=batch.created_at,
            )

    def _enqueue_batch(self, jobs: list[MarketplaceJob]) -> None:
        """The jobs of a batch share one lane: one wake-up starts them, in priority order. If it cannot be
        sent, the jobs stay unqueued and the sweeper wakes their lane within a minute or two."""
        first = jobs[0]
        try:
            self._queue.wake(first.user_id, first.marketplace, cause=f"batch:{first.batch_id}")
        except Exception:
            logger.exception("batch queued later by the sweeper", extra={"batch_id": str(first.batch_id)})
            return
        with transaction(self._sessions) as session:
            session.execute(
                update(MarketplaceJob)
                .where(MarketplaceJob.id.in_([job.id for job in jobs]))
                .values(enqueued_at=func.now())
            )

    def _mark_queued(self, job_ids: list[uuid.UUID]) -> None:
        if job_ids:
            with transaction(self._sessions) as session:
                session.execute(
                    update(MarketplaceJob).where(MarketplaceJob.id.in_(job_ids)).values(enqueued_at=func.now())
                )

    def list(
        self,
        user_id: str,
        *,
        status: JobStatus | None = None,
        marketplace: str | None = None,
        action: str | None = None,
        product_id: uuid.UUID | None = None,
        batch_id: uuid.UUID | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> JobPage:
        """The user's jobs, newest first, `limit` at a time; `cursor` continues where a page ended. Each filter
        given narrows the list."""
        query = select(MarketplaceJob).where(MarketplaceJob.user_id == user_id)
        if status is not None:
            query = query.where(MarketplaceJob.status == status)
        if marketplace is not None:
            query = query.where(MarketplaceJob.marketplace == marketplace)
        if action is not None:
            query = query.where(MarketplaceJob.action_code == action)
        if product_id is not None:
            query = query.where(MarketplaceJob.product_id == product_id)
        if batch_id is not None:
            query = query.where(MarketplaceJob.batch_id == batch_id)
        with transaction(self._sessions) as session:
            page, next_cursor = cursors.newest_first_page(
                session, query, at=MarketplaceJob.created_at, row_id=MarketplaceJob.id, cursor=cursor, limit=limit
            )
            holders = lane_holders(session, user_id)
        return JobPage(items=[_view(job, holders) for job in page], next_cursor=next_cursor)

    def unlinked(self, user_id: str, marketplace: str) -> UnlinkedItems:
        """The marketplace's listings no product knows, as the user's latest completed sync found them."""
        with transaction(self._sessions) as session:
            job = session.scalar(
                select(MarketplaceJob)
                .where(
                    MarketplaceJob.user_id == user_id,
                    MarketplaceJob.marketplace == marketplace,
                    MarketplaceJob.action_code == "sync",
                    MarketplaceJob.status == JobStatus.COMPLETED,
                )
                .order_by(MarketplaceJob.completed_at.desc())
                .limit(1)
            )
            # Items linked since that sync (link_product) are known now.
            linked = set(
                session.scalars(
                    select(MarketplaceListing.external_id).where(
                        MarketplaceListing.user_id == user_id,
                        MarketplaceListing.marketplace == marketplace,
                        MarketplaceListing.status.in_([ListingStatus(status) for status in LIVE_LISTING_STATUSES]),
                    )
                )
            )
        result = (job.result or {}) if job is not None else {}
        found = [UnlinkedItem.model_validate(item) for item in result.get("unlinked", [])]
        items = [item for item in found if item.item_id not in linked]
        return UnlinkedItems(
            marketplace=marketplace,
            synced_at=job.completed_at if job is not None else None,
            sync_job_id=job.id if job is not None else None,
            items=items,
            total=int(result.get("unlinked_total", len(found))) - (len(found) - len(items)),
        )

    def cancel(self, user_id: str, job_id: uuid.UUID) -> JobView:
        """Cancel a job: at once if no marketplace call of it is in flight, else at its next step boundary."""
        woken: tuple[str, str] | None = None
        after = AfterCommit()
        with transaction(self._sessions) as session:
            job = session.scalar(
                select(MarketplaceJob)
                .where(MarketplaceJob.id == job_id, MarketplaceJob.user_id == user_id)
                .with_for_update()
            )
            if job is None:
                raise NotFound(f"job {job_id} not found")
            if job.status in IDLE_JOB_STATUSES:  # no marketplace call in flight: at once
                woken = (job.user_id, job.marketplace)
                # A sale that waited for it queues its delete now; the response tells the caller of it.
                end_job(session, job, JobStatus.CANCELLED, reactions=self._reactions, after=after, tell=False)
            elif job.status == JobStatus.RUNNING:
                job.cancel_requested_at = job.cancel_requested_at or datetime.now(UTC)
            else:
                raise Conflict(f"the job has already ended ({job.status.value})", code="job_ended", status=job.status)
            session.flush()
            session.refresh(job)
            view = JobView.of(job)
        if woken is not None:  # the lane moves on to its next job (the job may have held it in a backoff)
            try:
                self._queue.wake(*woken, cause=f"cancel:{job_id}")
            except Exception:
                logger.exception("lane not woken after a cancel: the sweeper will")
        wake_lanes(after.lanes, self._queue, self._mark_queued)
        if self._events is not None:
            self._events.dispatch(after.events)
        return view

    def _find_by_idempotency_key(
        self, session: Session, user_id: str, request: CreateJobRequest
    ) -> MarketplaceJob | None:
        if request.idempotency_key is None:
            return None
        job = session.scalar(
            select(MarketplaceJob).where(
                MarketplaceJob.user_id == user_id, MarketplaceJob.idempotency_key == request.idempotency_key
            )
        )
        if job is not None and (job.marketplace, job.action_code, job.product_id) != (
            request.marketplace,
            request.action,
            request.product_id,
        ):
            raise Conflict(
                "this idempotency_key was already used for a different job",
                code="idempotency_key_reused",
                job_id=str(job.id),
            )
        return job

    @staticmethod
    def _action(session: Session, marketplace: str, action: str) -> tuple[MarketplaceActionType, Workflow]:
        """The action's settings and the workflow that runs it; InvalidRequest if there is none."""
        action_type = session.scalar(
            select(MarketplaceActionType).where(
                MarketplaceActionType.marketplace == marketplace, MarketplaceActionType.code == action
            )
        )
        if action_type is None:
            valid = sorted(
                session.scalars(
                    select(MarketplaceActionType.code).where(MarketplaceActionType.marketplace == marketplace)
                )
            )
            raise InvalidRequest(
                f"unknown action {action!r} for {marketplace}; valid actions: {', '.join(valid)}",
                code="unknown_action",
                valid_actions=valid,
            )
        workflow = find_workflow(marketplace, action)
        if workflow is None:
            available = sorted(WORKFLOWS)
            raise InvalidRequest(
                f"{action} on {marketplace} is not available yet; available: {', '.join(available)}",
                code="action_not_available",
                available_actions=available,
            )
        return action_type, workflow

    @staticmethod
    def new_job(
        session: Session, user_id: str, request: CreateJobRequest, batch_id: uuid.UUID | None = None
    ) -> MarketplaceJob:
        """A pending job, added to the caller's open transaction (not queued: the caller wakes its lane once
        that commits). Raises the CrosslistError saying why the job cannot exist; the product stays locked
        until the transaction ends."""
        action_type, workflow = JobService._action(session, request.marketplace, request.action)
        product = None
        product_use = PRODUCT_USE[request.action]
        if product_use == "required" and request.product_id is None:
            raise InvalidRequest(f"{request.action} on {DISPLAY_NAMES[request.marketplace]} needs a product_id")
        if product_use == "none" and request.product_id is not None:
            raise InvalidRequest(
                f"{request.action} acts on the whole {DISPLAY_NAMES[request.marketplace]} account: it takes no"
                " product_id"
            )
        if request.product_id is not None:
            # Locked until this job is stored: a job of this product completing meanwhile (and writing its
            # listing) waits for us, or we see its listing.
            product = session.scalar(
                select(Product).where(Product.id == request.product_id, Product.user_id == user_id).with_for_update()
            )
            if product is None:
                raise NotFound(f"product {request.product_id} not found")
            if product.delete_requested_at is not None and request.action != "delete":
                raise Conflict(
                    "this product is being deleted once its listings are delisted: it takes no other job",
                    code="product_being_deleted",
                )
            JobService._refuse_duplicate(session, user_id, request)

        listings = (
            list(session.scalars(select(MarketplaceListing).where(MarketplaceListing.product_id == product.id)))
            if product is not None
            else []
        )
        # eBay and Etsy jobs carry the seller's settings (policies, shop…), checked before the product.
        seller = (
            seller_for_job(session, user_id, request.marketplace, request.action)
            if request.marketplace not in EXTENSION_MARKETPLACES
            else None
        )
        job_input = workflow.prepare(snapshot(product, listings) if product is not None else None, request.params or {})
        if seller is not None:
            if "price" in job_input:  # the job lists a price: in the currency the seller sells in there
                check_currency(request.marketplace, seller, str(job_input["currency"]))
            job_input["seller"] = seller
        job = MarketplaceJob(
            id=uuid.uuid4(),
            user_id=user_id,
            marketplace=request.marketplace,
            action_code=request.action,
            product_id=request.product_id,
            priority=request.priority or action_type.default_priority,
            max_attempts=action_type.max_attempts,
            step_timeout_ms=action_type.timeout_ms,
            total_steps=len(workflow.steps(job_input)),
            input=job_input,
            accumulated_data={},
            idempotency_key=request.idempotency_key,
            batch_id=batch_id,
            # Each job its own moment, not the transaction's: a batch's jobs keep their order in the lane. Its
            # last change is its creation (the table's default would be the transaction's start, earlier).
            created_at=(created := _job_clock()),
            updated_at=created,
        )
        session.add(job)
        # Not queued yet: if its wake-up is never sent, the sweeper must find it (announced before the commit).
        announce(session, "lanes")
        return job

    @staticmethod
    def _refuse_duplicate(session: Session, user_id: str, request: CreateJobRequest) -> None:
        """A double click must not publish the same product twice: one active job per product and marketplace."""
        running = session.execute(
            select(MarketplaceJob.id, MarketplaceJob.action_code).where(
                MarketplaceJob.user_id == user_id,
                MarketplaceJob.product_id == request.product_id,
                MarketplaceJob.marketplace == request.marketplace,
                MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
            )
        ).first()
        if running is not None:
            raise Conflict(
                f"a {running.action_code} job for this product on {DISPLAY_NAMES[request.marketplace]} is already in"
                " progress; wait for it to finish",
                code="job_in_progress",
                job_id=str(running.id),
                action=running.action_code,
            )
        if request.action == "publish":
            listing = session.scalar(
                select(MarketplaceListing).where(
                    MarketplaceListing.user_id == user_id,
                    MarketplaceListing.product_id == request.product_id,
                    MarketplaceListing.marketplace == request.marketplace,
                    MarketplaceListing.status == ListingStatus.ACTIVE,
                )
            )
            if listing is not None:
                raise Conflict(
                    f"this product is already listed on {DISPLAY_NAMES[request.marketplace]}",
                    code="already_listed",
                    external_id=listing.external_id,
                    url=listing.url,
                )

    def enqueue(self, job: MarketplaceJob) -> None:
        """Wake the stored job's lane and record it queued; ServiceUnavailable when the queue refuses (the
        sweeper queues it later)."""
        try:
            # The job id deduplicates: a replayed request within SQS's window cannot wake the lane twice.
            self._queue.wake(job.user_id, job.marketplace, cause=f"created:{job.id}")
        except Exception as exc:
            raise ServiceUnavailable(
                "the job is stored but could not be queued; retry the same request with its idempotency_key",
                job_id=str(job.id),
            ) from exc
        enqueued_at = datetime.now(UTC)
        with transaction(self._sessions) as session:
            session.execute(update(MarketplaceJob).where(MarketplaceJob.id == job.id).values(enqueued_at=enqueued_at))
        job.enqueued_at = enqueued_at


def _view(job: MarketplaceJob, holders: dict[str, uuid.UUID]) -> JobView:
    """The job as the API shows it, saying which job it is queued behind if it waits for its lane."""
    view = JobView.of(job)
    ahead = queued_behind(job, holders.get(job.marketplace), datetime.now(UTC))
    if ahead is None:
        return view
    # Until the job ahead ends: a time its own earlier wait left would mislead.
    return view.model_copy(update={"wait_reason": QUEUED, "wait_until": None, "waiting_for_job_id": ahead})
