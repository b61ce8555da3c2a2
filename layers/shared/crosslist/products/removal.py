"""Deleting a product: never while it is live somewhere, or its later sale would map to nothing.

A product with live listings is refused (409 naming them) unless the caller asks for them to be delisted
first: a delete job per live listing is queued, the product is marked, and the job that ends last deletes
it (`products.service.remove_if_delisted`, in the lane's transaction). A listing that cannot be delisted
keeps the product, and says why in its job.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import ACTIVE_JOB_STATUSES, MarketplaceJob
from crosslist.errors import Conflict, ServiceUnavailable
from crosslist.jobs.queue import JobQueue
from crosslist.jobs.schemas import CreateJobRequest, JobView
from crosslist.jobs.service import JobService
from crosslist.marketplaces import DISPLAY_NAMES
from crosslist.products.schemas import Delisting
from crosslist.products.service import live_listings, owned_product

# Delisting before a deletion goes before publishing and syncs, after a sale's delists (priority 1).
DELIST_PRIORITY = 2


class ProductRemoval:
    def __init__(self, sessions: sessionmaker[Session], queue: JobQueue) -> None:
        self._sessions = sessions
        self._queue = queue

    def delete(self, user_id: str, product_id: uuid.UUID, *, delist: bool) -> Delisting | None:
        """Delete the product now (None), or, with `delist`, once the delete jobs queued for its live
        listings have run (Delisting). Conflict when it is live and `delist` is not asked, or a job of it
        other than its delists is in progress."""
        with transaction(self._sessions) as session:
            product = owned_product(session, user_id, product_id, lock=True)
            live = live_listings(session, product.id)
            active = self._active_jobs(session, user_id, product.id)
            # Its own delists, from an earlier DELETE ?delist=true, stand; any other job must finish first.
            delists = [job for job in active if product.delete_requested_at is not None and job.action_code == "delete"]
            others = [job for job in active if job not in delists]
            if others:
                raise Conflict(
                    "this product has a job in progress; wait for it to finish",
                    code="job_in_progress",
                    job_id=str(others[0].id),
                )
            if not live:
                session.delete(product)
                return None
            if not delist:
                where = ", ".join(DISPLAY_NAMES[listing.marketplace] for listing in live)
                raise Conflict(
                    f"this product is live on {where}: delete it with ?delist=true to delist it first (a later"
                    " sale of a listing left live would belong to no product)",
                    code="product_listed",
                    listings=[
                        {"marketplace": listing.marketplace, "external_id": listing.external_id, "url": listing.url}
                        for listing in live
                    ],
                )
            product.delete_requested_at = product.delete_requested_at or datetime.now(UTC)
            delisting = {job.marketplace for job in delists}
            for listing in live:
                if listing.marketplace in delisting:  # asked again: the jobs already queued stand
                    continue
                request = CreateJobRequest(
                    marketplace=listing.marketplace,
                    action="delete",
                    product_id=product.id,
                    priority=DELIST_PRIORITY,
                )
                delists.append(JobService.new_job(session, user_id, request))
            session.flush()
            views = [JobView.of(job) for job in delists]
        jobs = JobService(self._sessions, self._queue)
        for job in delists:
            if job.enqueued_at is None:
                with contextlib.suppress(ServiceUnavailable):  # stored: the sweeper queues it within minutes
                    jobs.enqueue(job)
        return Delisting(product_id=product_id, jobs=views)

    @staticmethod
    def _active_jobs(session: Session, user_id: str, product_id: uuid.UUID) -> list[MarketplaceJob]:
        return list(
            session.scalars(
                select(MarketplaceJob).where(
                    MarketplaceJob.user_id == user_id,
                    MarketplaceJob.product_id == product_id,
                    MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
                )
            )
        )
