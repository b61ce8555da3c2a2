"""eBay's MARKETPLACE_ACCOUNT_DELETION: an eBay user asked eBay to delete their data, and every app that stores
any must delete it too. eBay sends it for every eBay user who closes an account, buyers included, to every app.

For each crosslist user whose connected eBay account is that eBay user (its immutable user id, recorded at
connection: crosslist.notifications.ebay_accounts), in the notification's transaction:

- deleted: the eBay credential (its tokens), the eBay seller settings (business policies, location), the account's
  record (its eBay user id, its orders subscription), the eBay listings' rows (the items' ids and URLs: the account
  is closed, they point nowhere), and the user's eBay jobs (their input and results hold the same ids and
  settings). Jobs not started yet, or waiting between steps, are cancelled first, through the one end of a job, so
  what waited for them carries on (a sale's delete queued after an eBay job); a job running at that moment is
  asked to stop at its next step (the credential is gone: its next call fails) and keeps its row.
- anonymised, kept: the eBay orders, for the seller's accounting (the sale, price, date and eBay's order number
  stay; the buyer's name and the eBay item ids go), and the sales auto-delist logged from them.
- untouched: the products (the user's own), the user's Etsy and Vinted data, other users' data.

Whoever the eBay user was, as a buyer their name is removed from every order naming them on eBay.
Nothing identifying the eBay user is logged: counts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Result, delete, select, update

from crosslist.db.models import (
    ACTIVE_JOB_STATUSES,
    IDLE_JOB_STATUSES,
    JobStatus,
    MarketplaceAccount,
    MarketplaceJob,
    MarketplaceListing,
    OAuthCredential,
    Order,
    SellerSettings,
)
from crosslist.due_times import announce
from crosslist.jobs.ending import end_job

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crosslist.jobs.reactions import AfterCommit, JobReactions

EBAY = "ebay"
ERASED_ERROR = {
    "code": "ebay_account_deleted",
    "message": "the eBay account was deleted at the seller's request: its data is gone from crosslist",
}


@dataclass(frozen=True)
class Erased:
    users: int  # crosslist users whose eBay data was erased
    jobs_cancelled: int
    jobs_deleted: int
    listings_deleted: int
    orders_anonymised: int  # as the seller's
    orders_as_buyer: int  # orders naming the eBay user as their buyer


def ebay_users(session: Session, ebay_user_id: str) -> list[str]:
    """The crosslist users whose connected eBay account is `ebay_user_id`."""
    return list(
        session.scalars(
            select(MarketplaceAccount.user_id)
            .where(MarketplaceAccount.marketplace == EBAY, MarketplaceAccount.account_id == ebay_user_id)
            .order_by(MarketplaceAccount.user_id)
        )
    )


def erase_ebay_account(
    session: Session,
    ebay_user_id: str,
    username: str | None,
    *,
    reactions: JobReactions,
    after: AfterCommit,
) -> Erased:
    """Erase the eBay user's data, in the caller's transaction (see the module)."""
    users = ebay_users(session, ebay_user_id)
    cancelled = deleted_jobs = listings = orders = 0
    for user_id in users:
        mine = (OAuthCredential.user_id == user_id, OAuthCredential.marketplace == EBAY)
        # The credential first: a job a cancel below queues on eBay (a sale's delete waiting for an eBay job) is then
        # refused as not connected, and logged so, instead of being queued for an account that is gone.
        session.execute(delete(OAuthCredential).where(*mine))
        session.execute(
            delete(SellerSettings).where(SellerSettings.user_id == user_id, SellerSettings.marketplace == EBAY)
        )
        session.execute(
            delete(MarketplaceAccount).where(
                MarketplaceAccount.user_id == user_id, MarketplaceAccount.marketplace == EBAY
            )
        )
        jobs = list(
            session.scalars(
                select(MarketplaceJob)
                .where(MarketplaceJob.user_id == user_id, MarketplaceJob.marketplace == EBAY)
                .order_by(MarketplaceJob.created_at)
                .with_for_update()
            )
        )
        for job in jobs:
            if job.status in IDLE_JOB_STATUSES:
                end_job(session, job, JobStatus.CANCELLED, reactions=reactions, after=after, error=ERASED_ERROR)
                cancelled += 1
            elif job.status in ACTIVE_JOB_STATUSES and job.cancel_requested_at is None:
                job.cancel_requested_at = datetime.now(UTC)
        session.flush()
        ended = [job.id for job in jobs if job.status not in ACTIVE_JOB_STATUSES]
        if ended:
            deleted_jobs += _count(session.execute(delete(MarketplaceJob).where(MarketplaceJob.id.in_(ended))))
        listings += _count(
            session.execute(
                delete(MarketplaceListing).where(
                    MarketplaceListing.user_id == user_id, MarketplaceListing.marketplace == EBAY
                )
            )
        )
        orders += _count(
            session.execute(
                update(Order)
                .where(Order.user_id == user_id, Order.marketplace == EBAY)
                .values(buyer=None, item_ids=[])
                .execution_options(synchronize_session=False)
            )
        )
        announce(session, "sync_rules")  # its eBay rules now wait for a connection
    as_buyer = 0
    if username:
        as_buyer = _count(
            session.execute(
                update(Order)
                .where(Order.marketplace == EBAY, Order.buyer == username)
                .values(buyer=None)
                .execution_options(synchronize_session=False)
            )
        )
    return Erased(len(users), cancelled, deleted_jobs, listings, orders, as_buyer)


def _count(result: Result[Any]) -> int:
    """The rows a DELETE or UPDATE touched."""
    return int(cast("CursorResult[Any]", result).rowcount)
