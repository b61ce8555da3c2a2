"""The imports API: start an import of the user's shops, follow it, and settle the matches it was unsure of.

An import is an `import` job per marketplace (crosslist.marketplaces.*.imports) under an `imports` row; the jobs
record what they read page by page (crosslist.imports.apply). A proposed match is settled here, outside the lanes:
accepting links the listing to the product, rejecting makes a new product of it; either once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import (
    ACTIVE_JOB_STATUSES,
    LIVE_LISTING_STATUSES,
    Import,
    ImportedListing,
    JobStatus,
    ListingStatus,
    MarketplaceJob,
    MarketplaceListing,
    Product,
)
from crosslist.errors import Conflict, NotFound
from crosslist.imports.apply import merge_attributes, new_product, product_row
from crosslist.imports.schemas import (
    MAX_SKIPPED_SHOWN,
    ImportCounts,
    ImportJob,
    ImportPage,
    ImportRequest,
    ImportStatus,
    ImportView,
    MatchDecision,
    MatchPage,
    MatchProduct,
    MatchStatus,
    MatchView,
    SkippedListing,
)
from crosslist.jobs.schemas import CreateJobRequest, JobError
from crosslist.jobs.service import JobService
from crosslist.marketplaces import DISPLAY_NAMES
from crosslist.workflows.registry import find_workflow

logger = Logger(child=True)
MAX_IMPORTS_LISTED = 20
MAX_MATCHES_SHOWN = 1000


class ImportService:
    def __init__(self, sessions: sessionmaker[Session], jobs: JobService) -> None:
        self._sessions = sessions
        self._jobs = jobs

    def create(self, user_id: str, request: ImportRequest) -> ImportView:
        """The import and its jobs, stored together and queued; 409 `import_in_progress` while an import of one of
        these marketplaces runs; 422 an account not connected or settings missing (nothing is stored then)."""
        with transaction(self._sessions) as session:
            running = session.execute(
                select(MarketplaceJob.marketplace, MarketplaceJob.accumulated_data, MarketplaceJob.input).where(
                    MarketplaceJob.user_id == user_id,
                    MarketplaceJob.action_code == "import",
                    MarketplaceJob.marketplace.in_(request.marketplaces),
                    MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
                )
            ).first()
            if running is not None:
                raise Conflict(
                    f"an import of your {DISPLAY_NAMES[running.marketplace]} shop is running: wait for it to end",
                    code="import_in_progress",
                    import_id=str(running.input.get("import_id")),
                )
            started = Import(id=uuid.uuid4(), user_id=user_id, migrate_ebay=request.migrate_ebay, jobs={})
            session.add(started)
            session.flush()
            jobs = []
            for marketplace in request.marketplaces:
                params: dict[str, Any] = {"import_id": str(started.id)}
                if marketplace == "ebay":
                    params["migrate_ebay"] = request.migrate_ebay
                job = JobService.new_job(
                    session, user_id, CreateJobRequest(marketplace=marketplace, action="import", params=params)
                )
                jobs.append(job)
            session.flush()
            started.jobs = {job.marketplace: str(job.id) for job in jobs}
        for job in jobs:
            try:
                self._jobs.enqueue(job)
            except Exception:  # stored: the sweeper queues it within minutes
                logger.warning("an import job could not be queued", extra={"job_id": str(job.id)})
        return self.get(user_id, started.id)

    def get(self, user_id: str, import_id: uuid.UUID) -> ImportView:
        with transaction(self._sessions) as session:
            found = session.scalar(select(Import).where(Import.id == import_id, Import.user_id == user_id))
            if found is None:
                raise NotFound(f"import {import_id} not found")
            return _view(session, found)

    def list(self, user_id: str) -> ImportPage:
        with transaction(self._sessions) as session:
            found = session.scalars(
                select(Import)
                .where(Import.user_id == user_id)
                .order_by(Import.created_at.desc())
                .limit(MAX_IMPORTS_LISTED)
            )
            return ImportPage(items=[_view(session, one) for one in found])

    def matches(self, user_id: str, import_id: uuid.UUID) -> MatchPage:
        with transaction(self._sessions) as session:
            if session.scalar(select(Import.id).where(Import.id == import_id, Import.user_id == user_id)) is None:
                raise NotFound(f"import {import_id} not found")
            rows = session.scalars(
                select(ImportedListing)
                .where(
                    ImportedListing.import_id == import_id,
                    ImportedListing.user_id == user_id,
                    or_(ImportedListing.decision == "proposed", ImportedListing.reason.in_(("accepted", "rejected"))),
                )
                .order_by(ImportedListing.confidence.desc(), ImportedListing.external_id)
                .limit(MAX_MATCHES_SHOWN)
            ).all()
            wanted = [row.candidate_product_id for row in rows if row.candidate_product_id is not None]
            candidates = {
                product.id: product for product in session.scalars(select(Product).where(Product.id.in_(wanted)))
            }
            return MatchPage(
                items=[
                    _match(row, candidates.get(row.candidate_product_id) if row.candidate_product_id else None)
                    for row in rows
                ]
            )

    def decide(self, user_id: str, import_id: uuid.UUID, match_id: uuid.UUID, decision: MatchDecision) -> MatchView:
        """Accept (link the listing to the product) or reject (a new product made of it); once. 409 `match_decided`
        when already settled, `product_listed_there` when the product got a listing there meanwhile."""
        try:
            with transaction(self._sessions) as session:
                row = session.scalar(
                    select(ImportedListing)
                    .where(
                        ImportedListing.id == match_id,
                        ImportedListing.import_id == import_id,
                        ImportedListing.user_id == user_id,
                    )
                    .with_for_update()
                )
                if row is None or not _is_match(row):
                    raise NotFound(f"match {match_id} not found in import {import_id}")
                if row.decision != "proposed":
                    raise Conflict("this match is already settled", code="match_decided", status=_status(row))
                if decision.accept:
                    _accept(session, row)
                else:
                    _reject(session, row)
                row.decided_at = datetime.now(UTC)
                session.flush()
                candidate = session.get(Product, row.candidate_product_id) if row.candidate_product_id else None
                return _match(row, candidate)
        except IntegrityError:
            raise Conflict("this listing is already another product's listing", code="listing_taken") from None


# ---------------------------------------------------------------------- settling a match
def _accept(session: Session, row: ImportedListing) -> None:
    product = session.scalar(
        select(Product).where(Product.id == row.candidate_product_id, Product.user_id == row.user_id).with_for_update()
    )
    if product is None:
        raise Conflict("the proposed product was deleted: reject the match to import the listing", code="product_gone")
    _refuse_busy(session, row, product.id)
    _link(session, row, product.id)
    merge_attributes(session, product.id, row.marketplace, new_product(row.listing).marketplace_attributes)
    row.decision, row.reason, row.product_id = "linked", "accepted", product.id


def _reject(session: Session, row: ImportedListing) -> None:
    product = product_row(row.user_id, new_product(row.listing))
    session.add(product)
    session.flush()
    _link(session, row, product.id)
    row.decision, row.reason, row.product_id = "created", "rejected", product.id


def _refuse_busy(session: Session, row: ImportedListing, product_id: uuid.UUID) -> None:
    """A product with a live listing on the marketplace, or a job there, cannot take this one."""
    live = session.scalar(
        select(MarketplaceListing.external_id).where(
            MarketplaceListing.product_id == product_id,
            MarketplaceListing.marketplace == row.marketplace,
            MarketplaceListing.status.in_(LIVE_LISTING_STATUSES),
        )
    )
    job = session.scalar(
        select(MarketplaceJob.id).where(
            MarketplaceJob.product_id == product_id,
            MarketplaceJob.marketplace == row.marketplace,
            MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
        )
    )
    if live is not None or job is not None:
        raise Conflict(
            f"this product has a {DISPLAY_NAMES[row.marketplace]} listing (or a job there) now: reject the match to"
            " import the listing as a product of its own",
            code="product_listed_there",
        )


def _link(session: Session, row: ImportedListing, product_id: uuid.UUID) -> None:
    product = row.listing.get("product") or {}
    statement = insert(MarketplaceListing).values(
        id=uuid.uuid4(),
        user_id=row.user_id,
        product_id=product_id,
        marketplace=row.marketplace,
        external_id=row.external_id,
        url=row.listing.get("url"),
        status=ListingStatus(row.state),
        image_urls=list(product.get("image_urls") or []),
        last_synced_at=func.now(),
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "product_id", "marketplace"],
            set_={
                "external_id": statement.excluded.external_id,
                "url": statement.excluded.url,
                "status": statement.excluded.status,
                "image_urls": statement.excluded.image_urls,
                "last_synced_at": func.now(),
            },
        )
    )


# ---------------------------------------------------------------------- views
def _is_match(row: ImportedListing) -> bool:
    return row.decision == "proposed" or row.reason in ("accepted", "rejected")


def _status(row: ImportedListing) -> MatchStatus:
    if row.decision == "proposed":
        return "proposed"
    return "accepted" if row.reason == "accepted" else "rejected"


def _match(row: ImportedListing, candidate: Product | None) -> MatchView:
    product = row.listing.get("product") or {}
    photos = product.get("image_urls") or []
    return MatchView(
        id=row.id,
        marketplace=row.marketplace,
        external_id=row.external_id,
        url=row.listing.get("url"),
        title=str(product.get("title") or ""),
        price=Decimal(product["price"]) if product.get("price") else None,
        image_url=photos[0] if photos else None,
        confidence=float(row.confidence or 0),
        reason=row.reason or "title_price",
        product=MatchProduct(
            id=candidate.id,
            title=candidate.title,
            price=candidate.price,
            currency=candidate.currency,
            image_url=candidate.image_urls[0] if candidate.image_urls else None,
        )
        if candidate is not None
        else None,
        status=_status(row),
        product_id=row.product_id if row.decision != "proposed" else None,
    )


def _view(session: Session, found: Import) -> ImportView:
    job_ids = [uuid.UUID(job_id) for job_id in found.jobs.values()]
    jobs = {job.id: job for job in session.scalars(select(MarketplaceJob).where(MarketplaceJob.id.in_(job_ids)))}
    counts: dict[str, int] = {}
    warnings: list[str] = []
    views = []
    for marketplace, job_id in found.jobs.items():
        job = jobs.get(uuid.UUID(job_id))
        if job is None:
            continue
        data = job.result if job.result is not None else job.accumulated_data
        for key, value in (data.get("counts") or data).items():
            if key in ImportCounts.model_fields and isinstance(value, int):
                counts[key] = counts.get(key, 0) + value
        warnings.extend(f"{DISPLAY_NAMES[marketplace]}: {w}" for w in (job.result or {}).get("warnings", []))
        views.append(
            ImportJob(
                marketplace=marketplace,
                job_id=job.id,
                status=job.status,
                description=_doing(job),
                error=JobError.model_validate(job.error) if job.error else None,
            )
        )
    skipped = session.scalars(
        select(ImportedListing)
        .where(ImportedListing.import_id == found.id, ImportedListing.decision == "skipped")
        .order_by(ImportedListing.marketplace, ImportedListing.external_id)
        .limit(MAX_SKIPPED_SHOWN)
    ).all()
    return ImportView(
        id=found.id,
        status=_import_status([job.status for job in jobs.values()]),
        migrate_ebay=found.migrate_ebay,
        jobs=views,
        counts=ImportCounts(**counts),
        skipped=[
            SkippedListing(
                marketplace=row.marketplace,
                external_id=row.external_id,
                url=row.listing.get("url"),
                reason=row.reason or "not_representable",
            )
            for row in skipped
        ],
        warnings=warnings,
        created_at=found.created_at,
    )


def _doing(job: MarketplaceJob) -> str | None:
    workflow = find_workflow(job.marketplace, job.action_code)
    if workflow is None or job.status not in ACTIVE_JOB_STATUSES:
        return None
    steps = workflow.steps(job.input)
    return steps[min(job.current_step, len(steps) - 1)].description


def _import_status(statuses: list[JobStatus]) -> ImportStatus:
    if any(status in ACTIVE_JOB_STATUSES for status in statuses):
        return "running"
    if any(status is JobStatus.FAILED for status in statuses):
        return "failed"
    if statuses and all(status is JobStatus.CANCELLED for status in statuses):
        return "cancelled"
    return "completed"
