"""Reconciliation, at the end of every sync (all three marketplaces), so that nothing slips through what a sale
started: a product with no stock left still live on a marketplace is delisted there, and two live items of one
product on the synced marketplace are reported.

It runs in the sync's completing transaction (holding its lane's lock), as a sale does, and locks rows in the
same order (the product's jobs, then the product). What it delists:
- a live listing (active, reserved, hidden) of a product whose quantity is 0,
- with no active job of that product there (a delete already under way, a publish: left to the sale's rules),
- on a marketplace where the product has not sold (there, the sale itself ends the listing and that
  marketplace's own sync records it) — on Vinted, where a listing is one item, where that item has not sold
  (a new item published after a sale there is delisted as any other),
- only with the user's auto-delist on (off: they delist by hand, and the sale log says so).
Its delete is queued at the sale's priority (a later sync tries again if it fails), and
written into the product's last sale's log for that marketplace (reason `reconciled`), so the log shows
when the delist started and when it was confirmed.

A duplicate (crosslist.marketplaces.duplicates) newer than the product's listing is deleted when the user's
`remove_duplicates` is on: a `delete` of the product with `params.duplicate_id`, which leaves the product's
own listing as it is; once per item (idempotency key `duplicate:{marketplace}:{item}`), never the older one.
"""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools import Logger
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crosslist.db.models import (
    ACTIVE_JOB_STATUSES,
    MarketplaceJob,
    MarketplaceListing,
    Order,
    Product,
    Sale,
    SaleAction,
)
from crosslist.errors import CrosslistError
from crosslist.jobs.reactions import AfterCommit, LaneToWake
from crosslist.jobs.schemas import CreateJobRequest
from crosslist.jobs.service import JobService
from crosslist.orders.rows import SINGLE_ITEM_MARKETPLACES, active_jobs, locked_product, record_event
from crosslist.orders.schemas import SaleActionKind
from crosslist.orders.service import auto_delist_on, remove_duplicates_on
from crosslist.workflows.base import Duplicate

logger = Logger(child=True)
JsonDict = dict[str, Any]

RECONCILE_PRIORITY = 1  # as a sale's: a sold-out product live somewhere is a double sale waiting to happen
LIVE = ("active", "hidden", "reserved")


def reconcile_catalogue(
    session: Session,
    user_id: str,
    marketplace: str,
    duplicates: list[Duplicate],
    after: AfterCommit,
) -> JsonDict:
    """Delist the sold-out products still live anywhere, report the duplicates found on `marketplace` (and
    remove the newer ones when the user asked for it)."""
    delisted = _delist_sold_out(session, user_id, after) if auto_delist_on(session, user_id) else []
    removing = remove_duplicates_on(session, user_id)
    reported = []
    for duplicate in duplicates:
        removal = None
        if removing and duplicate.duplicate_is_newer:
            removal = _queue_delete(
                session,
                user_id,
                uuid.UUID(duplicate.product_id),
                marketplace,
                # Never twice: an item once given to a delete is not given again, whatever became of it.
                idempotency_key=f"duplicate:{marketplace}:{duplicate.duplicate_id}",
                params={"duplicate_id": duplicate.duplicate_id},
                needs_sold_out=False,
            )
            if removal is not None:
                after.lanes.append(LaneToWake(user_id, marketplace, f"created:{removal.id}", (removal.id,)))
        found = {
            "product_id": duplicate.product_id,
            "external_id": duplicate.listing_id,
            "duplicate_external_id": duplicate.duplicate_id,
            "duplicate_is_newer": duplicate.duplicate_is_newer,
            "removal_job_id": str(removal.id) if removal is not None else None,
        }
        reported.append(found)
        record_event(session, after, "listing.duplicate", user_id, {**found, "marketplace": marketplace})
    result: JsonDict = {}
    if delisted:
        result["sold_out_delists"] = delisted
    if reported:
        result["duplicates"] = reported
    return result


def _delist_sold_out(session: Session, user_id: str, after: AfterCommit) -> list[JsonDict]:
    listing = MarketplaceListing
    active_job = exists().where(
        MarketplaceJob.user_id == listing.user_id,
        MarketplaceJob.product_id == listing.product_id,
        MarketplaceJob.marketplace == listing.marketplace,
        MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
    )
    sold_there = exists().where(
        and_(
            Sale.user_id == listing.user_id,
            Sale.product_id == listing.product_id,
            Sale.marketplace == listing.marketplace,
            Order.id == Sale.order_id,
            # A single-item listing: this item sold (not one sold before it, which a new item replaced).
            or_(
                listing.marketplace.not_in(SINGLE_ITEM_MARKETPLACES),
                Order.item_ids.op("@>")(func.jsonb_build_array(listing.external_id)),
            ),
        )
    )
    candidates = session.execute(
        select(listing.id, listing.product_id, listing.marketplace)
        .join(Product, Product.id == listing.product_id)
        .where(
            listing.user_id == user_id,
            listing.status.in_(LIVE),
            Product.quantity <= 0,
            ~active_job,
            ~sold_there,
        )
        .order_by(listing.product_id, listing.marketplace)
    ).all()
    delisted = []
    for listing_id, product_id, marketplace in candidates:
        job = _queue_delete(
            session,
            user_id,
            product_id,
            marketplace,
            idempotency_key=f"reconcile:{listing_id}:{uuid.uuid4().hex}",  # each sync may try again
        )
        if job is None:
            continue
        after.lanes.append(LaneToWake(user_id, marketplace, f"created:{job.id}", (job.id,)))
        sale = _log_in_last_sale(session, user_id, product_id, marketplace, job.id)
        payload: JsonDict = {
            "sale_id": str(sale.id) if sale is not None else None,
            "product_id": str(product_id),
            "sold_on": sale.marketplace if sale is not None else None,
            "marketplace": marketplace,
            "job_id": str(job.id),
            "reason": "reconciled",
        }
        record_event(session, after, "delist.started", user_id, payload)
        delisted.append({"product_id": str(product_id), "marketplace": marketplace, "job_id": str(job.id)})
    return delisted


def _queue_delete(
    session: Session,
    user_id: str,
    product_id: uuid.UUID,
    marketplace: str,
    *,
    idempotency_key: str,
    params: JsonDict | None = None,
    needs_sold_out: bool = True,
) -> MarketplaceJob | None:
    """A delete, as POST /jobs builds one, once the product's jobs there and the product are locked (and, with
    `needs_sold_out`, it is still sold out); None when that no longer holds or the job cannot be made (an
    active job of the product there, the key used already)."""
    active_jobs(session, user_id, product_id)  # locked before the product (crosslist.orders.rows)
    product = locked_product(session, user_id, product_id)
    if product is None or (needs_sold_out and product.quantity > 0):
        return None
    request = CreateJobRequest.model_validate(
        {
            "marketplace": marketplace,
            "action": "delete",
            "product_id": product_id,
            "priority": RECONCILE_PRIORITY,
            "idempotency_key": idempotency_key,
            "params": params,
        }
    )
    try:
        with session.begin_nested():  # refused by an index (an active job there, the key): nothing is written
            job = JobService.new_job(session, user_id, request)
            session.flush()
    except (CrosslistError, IntegrityError) as refused:
        logger.info(
            "reconciliation queued no delete",
            extra={"marketplace": marketplace, "reason": getattr(refused, "code", "conflict")},
        )
        return None
    return job


def _log_in_last_sale(
    session: Session, user_id: str, product_id: uuid.UUID, marketplace: str, job_id: uuid.UUID
) -> Sale | None:
    """The product's last sale's log says the delist there is this job's (reason `reconciled`)."""
    sale = session.scalars(
        select(Sale)
        .where(Sale.user_id == user_id, Sale.product_id == product_id)
        .order_by(Sale.sold_at.desc(), Sale.id.desc())
        .limit(1)
    ).first()
    if sale is None:
        return None
    action = session.scalars(
        select(SaleAction).where(SaleAction.sale_id == sale.id, SaleAction.marketplace == marketplace)
    ).first()
    if action is None:
        action = SaleAction(id=uuid.uuid4(), sale_id=sale.id, user_id=user_id, marketplace=marketplace)
        session.add(action)
    action.action = SaleActionKind.DELETE
    action.job_id = job_id
    action.reason = "reconciled"
    action.outcome = None
    action.waiting_for_job_id = None
    session.flush()
    return sale
