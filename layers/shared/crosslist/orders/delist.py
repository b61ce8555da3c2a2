"""Auto-delist: a sale an orders import finds acts at once on the product's listings on the other marketplaces,
and logs what it did (the per-sale log, `GET /products/{id}/sales`).

No stock left: a `delete` job on each other marketplace where the product has a live listing, at the highest
priority, so it is next in its lane. Stock left: an `update` job pushing the new quantity (a Vinted listing
holds one item: nothing to change there). A job the product already has on that marketplace is reused (a
delete), replaced (one not started yet), or asked to stop at its next step (a started one): the sale's job
is queued when that job ends (`after_job_ended`). With the user's auto-delist off, the sale is only logged.

Where it sold, a single-item listing (Vinted) is over: it is `sold` from the sale on, and while stock is left a
`publish` job puts a new item of the product on sale there (`republish`; a `relist` would read and delete the
sold item, which Vinted no longer shows). Never two: not when the product is live there again, and a job of
the product there (a publish, a relist, an update of the sold item) is waited for first; a delete is left to
delist it.

Everything runs in the caller's transaction (the import's, holding its lane's lock): the sale, its log and
its jobs are stored with the order or not at all, and an order stored once is acted on once (a reaction run
again for it finds its sale). The lanes it queued work in are woken after the commit
(crosslist.jobs.reactions.wake_lanes); a lost wake-up is the sweeper's (jobs never marked queued).

Rows are locked in the order a completing job takes them, its jobs then the product, so a sale never deadlocks
with a job of its product ending.

The job side never imports this module: the composition root hands it AUTO_DELIST, its JobReactions (a job's
end, orders stored), which run in the job side's transaction (crosslist.jobs.ending).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger
from sqlalchemy import select
from sqlalchemy.orm import Session

from crosslist.db.models import (
    JobStatus,
    ListingStatus,
    MarketplaceJob,
    MarketplaceListing,
    Product,
    Sale,
    SaleAction,
)
from crosslist.errors import CrosslistError
from crosslist.jobs.ending import final_status, job_ended
from crosslist.jobs.reactions import AfterCommit, LaneToWake
from crosslist.jobs.schemas import CreateJobRequest
from crosslist.jobs.service import JobService
from crosslist.orders.reconcile import reconcile_catalogue
from crosslist.orders.rows import SINGLE_ITEM_MARKETPLACES, active_jobs, locked_product, record_event
from crosslist.orders.schemas import SaleActionKind
from crosslist.orders.service import auto_delist_on
from crosslist.products.service import remove_if_delisted
from crosslist.realtime.messages import listing_sold_message
from crosslist.workflows.base import Duplicate, OrderRecord

logger = Logger(child=True)
JsonDict = dict[str, Any]

SALE_PRIORITY = 1  # the highest: next in its lane (a started job still finishes first)
LIVE_LISTING_STATUSES = (ListingStatus.ACTIVE, ListingStatus.RESERVED, ListingStatus.HIDDEN)


class Outcome(enum.StrEnum):
    """What became of an action no job of its own carries (sale_actions.outcome)."""

    WAITING = "waiting"  # for the product's started job there to end
    SKIPPED = "skipped"
    FAILED = "failed"


JOB_ACTIONS = {SaleActionKind.DELETE: "delete", SaleActionKind.UPDATE_QUANTITY: "update"}
KINDS_OF_JOBS = {job_action: kind for kind, job_action in JOB_ACTIONS.items()}
# Not a kind of JOB_ACTIONS: a publish on another marketplace is waited for, it stands for no sale action there.
REPUBLISH_JOB = "publish"

# What becomes of the product's active job on the marketplace: `reuse` (it is the delete: raised to the sale's
# priority), `keep` (left as it is: it deletes the listing anyway), `cancel` (not started: superseded),
# `stop` (started: asked to stop at its next step, the action waits for it), `wait` (left to finish, the
# action waits for it).
ExistingJob = Literal["reuse", "keep", "cancel", "stop", "wait"]


@dataclass(frozen=True)
class ActiveJob:
    id: uuid.UUID
    action: str
    started: bool


@dataclass(frozen=True)
class Target:
    """One of the product's other marketplaces, as the sale finds it."""

    marketplace: str
    listed: bool  # the product has a live listing there
    job: ActiveJob | None = None  # the product's active job there


@dataclass(frozen=True)
class Decision:
    action: SaleActionKind
    reason: str | None = None
    queue: bool = False  # queue the action's job now
    existing: ExistingJob | None = None


def decide(target: Target, *, auto_delist: bool, stock_left: bool) -> Decision | None:
    """What a sale does on one other marketplace of its product; None: nothing there to act on or log."""
    job = target.job
    if not auto_delist:
        return Decision(SaleActionKind.NONE, "auto_delist_off") if target.listed else None
    if stock_left and target.marketplace in SINGLE_ITEM_MARKETPLACES:
        return Decision(SaleActionKind.NONE, "single_item_listing") if target.listed else None
    if stock_left:
        if job is None:
            return Decision(SaleActionKind.UPDATE_QUANTITY, queue=True) if target.listed else None
        if job.action == "delete":
            return Decision(SaleActionKind.NONE, "listing_being_deleted", existing="keep")
        if job.action == "update" and not job.started and target.listed:  # its snapshot has the old quantity
            return Decision(SaleActionKind.UPDATE_QUANTITY, queue=True, existing="cancel")
        # A publish or a started update: its listing gets the new quantity once it is done.
        return Decision(SaleActionKind.UPDATE_QUANTITY, "waiting_for_job", existing="wait")
    if job is None:
        return Decision(SaleActionKind.DELETE, queue=True) if target.listed else None
    if job.action == "delete":
        return Decision(SaleActionKind.DELETE, existing="reuse")
    if not job.started:  # e.g. a publish that has not begun: the product is gone, so is its reason to run
        if target.listed:
            return Decision(SaleActionKind.DELETE, queue=True, existing="cancel")
        return Decision(SaleActionKind.NONE, "pending_job_cancelled", existing="cancel")
    return Decision(SaleActionKind.DELETE, "waiting_for_job", existing="stop")


def decide_republish(*, listed: bool, job: ActiveJob | None, auto_delist: bool, stock_left: bool) -> Decision | None:
    """What a sale of a single-item listing does where it sold (the item is gone): a new item of the product
    while stock is left. `listed`: the product is live there again (another item); `job`: its active job there.
    None: sold out, nothing to log."""
    if not stock_left:
        return None
    if not auto_delist:  # the quantity is the user's to keep: crosslist does not know what is left
        return Decision(SaleActionKind.NONE, "auto_delist_off")
    if listed:
        return Decision(SaleActionKind.NONE, "already_listed")
    if job is None:
        return Decision(SaleActionKind.REPUBLISH, queue=True)
    if job.action == "delete":  # the user is taking the product off there
        return Decision(SaleActionKind.NONE, "listing_being_deleted", existing="keep")
    # A publish or relist may list it again (a relist of the sold item fails), an update of the sold item fails:
    # decided again once it has ended.
    return Decision(SaleActionKind.REPUBLISH, "waiting_for_job", existing="wait")


class AutoDelist:
    """Auto-delist's reactions to the job side (crosslist.jobs.reactions.JobReactions), handed to it by the
    composition root: the job side never imports this package."""

    def job_ended(self, session: Session, job: MarketplaceJob, after: AfterCommit) -> None:
        after_job_ended(session, job, after)  # a sale may wait for this job to end before deleting its listing
        if job.action_code == "delete" and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            _delist_not_done(session, job, after)
        if job.product_id is not None:  # a product to delete once delisted goes with its last delist
            remove_if_delisted(session, job.user_id, job.product_id)

    def orders_added(
        self,
        session: Session,
        user_id: str,
        marketplace: str,
        orders: list[tuple[uuid.UUID, OrderRecord]],
        after: AfterCommit,
    ) -> None:
        record_sales(session, user_id, marketplace, orders, after)

    def synced(
        self, session: Session, user_id: str, marketplace: str, duplicates: list[Duplicate], after: AfterCommit
    ) -> JsonDict:
        return reconcile_catalogue(session, user_id, marketplace, duplicates, after)


AUTO_DELIST = AutoDelist()


def record_sales(
    session: Session,
    user_id: str,
    sold_on: str,
    orders: list[tuple[uuid.UUID, OrderRecord]],
    after: AfterCommit,
) -> None:
    """Record a sale for each order just stored (id, order) whose product crosslist knows, and act on the
    product's other listings."""
    known = [(order_id, order) for order_id, order in orders if order.product_id is not None]
    if not known:
        return
    auto_delist = auto_delist_on(session, user_id)
    for order_id, order in known:
        _record_sale(session, user_id, sold_on, order_id, order, auto_delist=auto_delist, after=after)


def after_job_ended(session: Session, job: MarketplaceJob, after: AfterCommit) -> None:
    """A job of a product ended, in the caller's transaction (which holds it locked): the sale actions that
    waited for it queue their job now, from the product as it is now."""
    if job.product_id is None:
        return
    waiting = list(
        session.scalars(
            select(SaleAction).where(
                SaleAction.user_id == job.user_id,
                SaleAction.waiting_for_job_id == job.id,
                SaleAction.outcome == Outcome.WAITING,
            )
        )
    )
    if not waiting:
        return
    session.flush()  # the ended job no longer counts as the product's active job
    product = locked_product(session, job.user_id, job.product_id)
    if product is None:
        return
    waiting = _republish_after(session, job, product, waiting, after)
    if not waiting:
        return
    marketplace = job.marketplace
    current = next(iter(active_jobs(session, job.user_id, product.id, only=marketplace)), None)
    if current is not None:  # e.g. the sale's own job, queued as this one was superseded
        _follow(session, current, waiting, after)
        return
    listed = marketplace in _listed_on(session, job.user_id, product.id)
    decision = decide(Target(marketplace, listed), auto_delist=True, stock_left=product.quantity > 0)
    if decision is None:
        _resolve(waiting, None, reason="not_listed", outcome=Outcome.SKIPPED)
        return
    if not decision.queue:
        _resolve(waiting, decision.action, reason=decision.reason, outcome=Outcome.SKIPPED)
        return
    sale = session.get(Sale, waiting[0].sale_id)
    try:
        queued = _queue_job(session, job.user_id, product.id, marketplace, decision.action, sale_id=waiting[0].sale_id)
    except CrosslistError as refused:
        _resolve(waiting, decision.action, reason=refused.code, outcome=Outcome.FAILED)
        if decision.action is SaleActionKind.DELETE and sale is not None:
            _delist_failed(session, after, sale, marketplace, code=refused.code, message=refused.message)
        return
    _resolve(waiting, decision.action, job_id=queued.id)
    after.lanes.append(LaneToWake(job.user_id, marketplace, f"created:{queued.id}", (queued.id,)))
    if decision.action is SaleActionKind.DELETE and sale is not None:
        _delist_started(session, after, sale, marketplace, queued.id)


# ---------------------------------------------------------------------- in the transaction
def _record_sale(
    session: Session,
    user_id: str,
    sold_on: str,
    order_id: uuid.UUID,
    order: OrderRecord,
    *,
    auto_delist: bool,
    after: AfterCommit,
) -> None:
    product_id = uuid.UUID(str(order.product_id))
    active_jobs(session, user_id, product_id)  # locked before the product (module doc)
    product = locked_product(session, user_id, product_id)
    if product is None:
        return
    if session.scalar(select(Sale.id).where(Sale.order_id == order_id)) is not None:
        return  # acted on already (a reaction run again for the same order): one sale, one set of jobs
    # Read again under the product's lock: a job created meanwhile is seen, none can be created now.
    jobs = {job.marketplace: job for job in active_jobs(session, user_id, product_id)}
    own_job = jobs.pop(sold_on, None)  # where it sold: what a single-item listing's new item waits for
    sale = Sale(
        id=uuid.uuid4(),
        user_id=user_id,
        product_id=product_id,
        order_id=order_id,
        marketplace=sold_on,
        external_order_id=order.external_order_id,
        quantity=order.quantity,
        sold_at=datetime.fromisoformat(order.sold_at),
        detected_at=datetime.now(UTC),
    )
    session.add(sale)
    sold_message = listing_sold_message(
        sold_on,
        str(product_id),
        external_id=order.item_ids[0] if order.item_ids else None,
        order_id=order.external_order_id,
        price=order.price,
        currency=order.currency,
    )
    record_event(
        session,
        after,
        "listing.sold",
        user_id,
        {
            "sale_id": str(sale.id),
            "product_id": str(product_id),
            "marketplace": sold_on,
            "external_order_id": order.external_order_id,
            "quantity": order.quantity,
            "price": order.price,
            "currency": order.currency,
            "sold_at": sale.sold_at.isoformat(),
            "detected_at": sale.detected_at.isoformat(),
            "message": sold_message,
        },
    )
    after.messages.append(sold_message)  # told by the engine, in order with the turn's other messages
    if auto_delist:
        product.quantity = max(product.quantity - max(order.quantity, 0), 0)
    listed = _listed_on(session, user_id, product_id) - {sold_on}
    for marketplace in sorted(listed | jobs.keys()):
        job = jobs.get(marketplace)
        active = ActiveJob(job.id, job.action_code, _started(job)) if job is not None else None
        target = Target(marketplace, marketplace in listed, active)
        decision = decide(target, auto_delist=auto_delist, stock_left=product.quantity > 0)
        if decision is not None:
            _act(session, sale, marketplace, decision, job=job, after=after)
    if sold_on in SINGLE_ITEM_MARKETPLACES:
        _single_item_sold(session, sale, order, product.quantity, own_job, auto_delist=auto_delist, after=after)
    session.flush()


def _single_item_sold(
    session: Session,
    sale: Sale,
    order: OrderRecord,
    quantity: int,
    job: MarketplaceJob | None,
    *,
    auto_delist: bool,
    after: AfterCommit,
) -> None:
    """A sale where a listing is one item (Vinted): the product's listing that sold is sold now, and a new item
    of the product goes on sale there while stock is left (`quantity`: the product's, after the sale when
    auto-delist counted it)."""
    _listing_sold(session, sale, order.item_ids, after)
    left = quantity if auto_delist else quantity - max(sale.quantity, 0)
    listed = sale.marketplace in _listed_on(session, sale.user_id, sale.product_id)
    active = ActiveJob(job.id, job.action_code, _started(job)) if job is not None else None
    decision = decide_republish(listed=listed, job=active, auto_delist=auto_delist, stock_left=left > 0)
    if decision is not None:
        _act(session, sale, sale.marketplace, decision, job=job, after=after)


def _listing_sold(session: Session, sale: Sale, item_ids: list[str], after: AfterCommit) -> None:
    """The product's listing that sold is `sold` from the sale on, so a new item may be published there in this
    transaction (the import records the same change right after: then unchanged). `listing.drift`, as the
    import's change says it."""
    listing = session.scalars(
        select(MarketplaceListing)
        .where(
            MarketplaceListing.user_id == sale.user_id,
            MarketplaceListing.product_id == sale.product_id,
            MarketplaceListing.marketplace == sale.marketplace,
            MarketplaceListing.external_id.in_(item_ids),
            MarketplaceListing.status.in_(LIVE_LISTING_STATUSES),
        )
        .with_for_update()
    ).first()
    if listing is None:
        return
    previous = ListingStatus(listing.status)
    listing.status = ListingStatus.SOLD
    listing.last_synced_at = datetime.now(UTC)
    payload = {
        "product_id": str(sale.product_id),
        "marketplace": sale.marketplace,
        "external_id": listing.external_id,
        "previous_status": previous.value,
        "status": ListingStatus.SOLD.value,
    }
    record_event(session, after, "listing.drift", sale.user_id, payload)


def _act(
    session: Session,
    sale: Sale,
    marketplace: str,
    decision: Decision,
    *,
    job: MarketplaceJob | None,
    after: AfterCommit,
) -> None:
    """Carry out one decision of a sale, and log it."""
    action = SaleAction(
        id=uuid.uuid4(),
        sale_id=sale.id,
        user_id=sale.user_id,
        marketplace=marketplace,
        action=decision.action,
        reason=decision.reason,
    )
    session.add(action)
    session.flush()  # before any savepoint: a refused job must not undo the log
    if job is not None and decision.existing in ("reuse", "keep"):
        action.job_id = job.id
        if decision.existing == "reuse":
            job.priority = min(job.priority, SALE_PRIORITY)
            after.lanes.append(LaneToWake(sale.user_id, marketplace, f"sale:{sale.id}"))
            _delist_started(session, after, sale, marketplace, job.id)
        return
    if job is not None and decision.existing in ("stop", "wait"):
        action.waiting_for_job_id = job.id
        action.outcome = Outcome.WAITING
        if decision.existing == "stop":
            job.cancel_requested_at = job.cancel_requested_at or datetime.now(UTC)
            # A started job waiting (a backoff, a pause) is cancelled by its lane's next turn: wake it now.
            after.lanes.append(LaneToWake(sale.user_id, marketplace, f"sale:{sale.id}"))
        return
    superseded = job if decision.existing == "cancel" else None
    if superseded is None and not decision.queue:  # auto-delist off, a single-item listing: logged only
        action.outcome = Outcome.SKIPPED
        return
    queued: MarketplaceJob | None = None
    try:
        with session.begin_nested():  # a refused job leaves the one it would have superseded as it was
            if superseded is not None:
                _supersede(superseded, sale)
                session.flush()  # it no longer counts as the product's active job there
            if decision.queue:
                queued = _queue_job(
                    session, sale.user_id, sale.product_id, marketplace, decision.action, sale_id=sale.id
                )
    except CrosslistError as refused:
        action.reason = refused.code  # e.g. action_not_available: no workflow runs it there yet
        action.outcome = Outcome.FAILED
        _delist_event(session, after, sale, action, refused=refused)
        return
    if queued is not None:
        action.job_id = queued.id
        after.lanes.append(LaneToWake(sale.user_id, marketplace, f"created:{queued.id}", (queued.id,)))
        _delist_event(session, after, sale, action)
    if superseded is not None:
        action.job_id = action.job_id or superseded.id  # nothing to delete: the log shows what was cancelled
        # Its end recorded (the user told), and an earlier sale that waited for it goes on.
        event = job_ended(session, superseded, reactions=AUTO_DELIST, after=after)
        if event.message is not None:
            after.messages.append(event.message)


def _queue_job(
    session: Session,
    user_id: str,
    product_id: uuid.UUID,
    marketplace: str,
    kind: SaleActionKind,
    *,
    sale_id: uuid.UUID,
) -> MarketplaceJob:
    """The action's job, built as POST /jobs builds one (its workflow prepares it from the product as it is
    now: an update carries the new quantity); CrosslistError when it cannot exist."""
    request = CreateJobRequest.model_validate(
        {
            "marketplace": marketplace,
            "action": REPUBLISH_JOB if kind is SaleActionKind.REPUBLISH else JOB_ACTIONS[kind],
            "product_id": product_id,
            "priority": SALE_PRIORITY,
            "idempotency_key": f"sale:{sale_id}:{marketplace}",
        }
    )
    job = JobService.new_job(session, user_id, request)
    session.flush()
    return job


def _republish_after(
    session: Session, job: MarketplaceJob, product: Product, waiting: list[SaleAction], after: AfterCommit
) -> list[SaleAction]:
    """The republishes that waited for `job` (ended, its product locked) are decided again, from the product and
    its listing as they are now; returns the other waiting actions."""
    republish = [action for action in waiting if action.action == SaleActionKind.REPUBLISH]
    if not republish:
        return waiting
    marketplace = job.marketplace
    current = next(iter(active_jobs(session, job.user_id, product.id, only=marketplace)), None)
    active = ActiveJob(current.id, current.action_code, _started(current)) if current is not None else None
    listed = marketplace in _listed_on(session, job.user_id, product.id)
    decision = decide_republish(listed=listed, job=active, auto_delist=True, stock_left=product.quantity > 0)
    if decision is None:
        _resolve(republish, None, reason="sold_out", outcome=Outcome.SKIPPED)
    elif decision.existing == "wait" and current is not None:  # another job of it there: waited for in turn
        for action in republish:
            action.waiting_for_job_id = current.id
    elif decision.existing == "keep" and current is not None:
        _resolve(republish, decision.action, job_id=current.id, reason=decision.reason)
    elif not decision.queue:
        _resolve(republish, decision.action, reason=decision.reason, outcome=Outcome.SKIPPED)
    else:
        sale_id = republish[0].sale_id
        try:
            queued = _queue_job(session, job.user_id, product.id, marketplace, decision.action, sale_id=sale_id)
        except CrosslistError as refused:
            _resolve(republish, decision.action, reason=refused.code, outcome=Outcome.FAILED)
        else:
            _resolve(republish, decision.action, job_id=queued.id)
            after.lanes.append(LaneToWake(job.user_id, marketplace, f"created:{queued.id}", (queued.id,)))
    return [action for action in waiting if action.action != SaleActionKind.REPUBLISH]


def _supersede(job: MarketplaceJob, sale: Sale) -> None:
    error = {
        "code": "superseded_by_sale",
        "message": f"superseded by the sale of this product on {sale.marketplace} (order {sale.external_order_id})",
    }
    final_status(job, JobStatus.CANCELLED, error=error)  # ended (job_ended) once the savepoint holds


def _follow(session: Session, current: MarketplaceJob, waiting: list[SaleAction], after: AfterCommit) -> None:
    """The product has an active job there again: a delete or update stands for the waiting actions, any
    other job is waited for in turn."""
    kind = KINDS_OF_JOBS.get(current.action_code)
    if kind is None:
        for action in waiting:
            action.waiting_for_job_id = current.id
        return
    if kind is SaleActionKind.DELETE and current.priority > SALE_PRIORITY:
        current.priority = SALE_PRIORITY
        after.lanes.append(LaneToWake(current.user_id, current.marketplace, f"sale:{waiting[0].sale_id}"))
    _resolve(waiting, kind, job_id=current.id)
    sale = session.get(Sale, waiting[0].sale_id)
    if kind is SaleActionKind.DELETE and sale is not None:
        _delist_started(session, after, sale, current.marketplace, current.id)


def _resolve(
    actions: list[SaleAction],
    kind: SaleActionKind | None,
    *,
    job_id: uuid.UUID | None = None,
    reason: str | None = None,
    outcome: Outcome | None = None,
) -> None:
    """The waiting actions are settled: done by `job_id` as `kind` (None: as each asked), or not, saying why."""
    for action in actions:
        action.action = kind or action.action
        action.job_id = job_id
        action.reason = reason
        action.outcome = outcome


# ---------------------------------------------------------------------- events
def _delist_started(session: Session, after: AfterCommit, sale: Sale, marketplace: str, job_id: uuid.UUID) -> None:
    """A delete job now stands for the sale there (queued, or an existing delete raised to the sale's priority)."""
    record_event(
        session, after, "delist.started", sale.user_id, {**_sale_fields(sale, marketplace), "job_id": str(job_id)}
    )


def _delist_event(
    session: Session, after: AfterCommit, sale: Sale, action: SaleAction, *, refused: CrosslistError | None = None
) -> None:
    """A sale's delete: its job queued (`delist.started`), or refused before any job (`delist.failed`)."""
    if action.action != SaleActionKind.DELETE:
        return
    if refused is not None:
        _delist_failed(session, after, sale, action.marketplace, code=refused.code, message=refused.message)
    elif action.job_id is not None:
        _delist_started(session, after, sale, action.marketplace, action.job_id)


def _delist_failed(
    session: Session,
    after: AfterCommit,
    sale: Sale,
    marketplace: str,
    *,
    code: str,
    message: str,
    job_id: uuid.UUID | None = None,
) -> None:
    """The sale's listing there is still live: no delete job could be made, or it ended without deleting."""
    fields = {**_sale_fields(sale, marketplace), "job_id": str(job_id) if job_id else None}
    record_event(session, after, "delist.failed", sale.user_id, {**fields, "error": {"code": code, "message": message}})


def _sale_fields(sale: Sale, marketplace: str) -> JsonDict:
    return {
        "sale_id": str(sale.id),
        "product_id": str(sale.product_id),
        "sold_on": sale.marketplace,
        "marketplace": marketplace,
    }


def _delist_not_done(session: Session, job: MarketplaceJob, after: AfterCommit) -> None:
    """A delete job a sale relied on ended failed or cancelled: its listing may still be live."""
    action = session.scalars(
        select(SaleAction).where(
            SaleAction.user_id == job.user_id,
            SaleAction.job_id == job.id,
            SaleAction.action == SaleActionKind.DELETE,
        )
    ).first()
    sale = session.get(Sale, action.sale_id) if action is not None else None
    if sale is None:
        return
    error = job.error or {}
    code = str(error.get("code") or job.status.value)
    message = str(error.get("message") or f"the delete job was {job.status.value}")
    _delist_failed(session, after, sale, job.marketplace, code=code, message=message, job_id=job.id)


def _listed_on(session: Session, user_id: str, product_id: uuid.UUID) -> set[str]:
    """The marketplaces where the product has a live listing."""
    return set(
        session.scalars(
            select(MarketplaceListing.marketplace).where(
                MarketplaceListing.user_id == user_id,
                MarketplaceListing.product_id == product_id,
                MarketplaceListing.status.in_(LIVE_LISTING_STATUSES),
            )
        )
    )


def _started(job: MarketplaceJob) -> bool:
    return job.started_at is not None or job.status is JobStatus.RUNNING
