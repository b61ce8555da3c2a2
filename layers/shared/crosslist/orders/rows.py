"""What auto-delist and reconciliation both do in the caller's transaction: lock a product's active jobs, then
the product (always in that order, as a completing job takes them: no deadlock), and record an event with the
change (the outbox; the engine dispatches it after the commit)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crosslist.db.models import ACTIVE_JOB_STATUSES, MarketplaceJob, Product
from crosslist.events import outbox
from crosslist.events.events import Event, EventType
from crosslist.jobs.reactions import AfterCommit

JsonDict = dict[str, Any]

# A listing there is one item: selling some of the stock elsewhere leaves it as it is, and the item sold where it
# sold is gone (a new one of the product is published there while stock is left: crosslist.orders.delist).
SINGLE_ITEM_MARKETPLACES = ("vinted",)


def locked_product(session: Session, user_id: str, product_id: uuid.UUID) -> Product | None:
    return session.scalars(
        select(Product)
        .where(Product.id == product_id, Product.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def active_jobs(
    session: Session,
    user_id: str,
    product_id: uuid.UUID,
    *,
    other_than: str | None = None,
    only: str | None = None,
) -> list[MarketplaceJob]:
    """The product's active jobs (one per marketplace at most), locked."""
    query = select(MarketplaceJob).where(
        MarketplaceJob.user_id == user_id,
        MarketplaceJob.product_id == product_id,
        MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
    )
    if other_than is not None:
        query = query.where(MarketplaceJob.marketplace != other_than)
    if only is not None:
        query = query.where(MarketplaceJob.marketplace == only)
    query = query.order_by(MarketplaceJob.marketplace).with_for_update().execution_options(populate_existing=True)
    return list(session.scalars(query))


def record_event(session: Session, after: AfterCommit, type_: EventType, user_id: str, payload: JsonDict) -> Event:
    """An event recorded with the change (the outbox), dispatched by the engine once it has committed."""
    event = Event(type=type_, user_id=user_id, payload=payload)
    outbox.record(session, event)
    after.events.append(event)
    return event
