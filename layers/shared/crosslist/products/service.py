"""Use cases of the product API, every one scoped to the calling user."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import (
    ACTIVE_JOB_STATUSES,
    LIVE_LISTING_STATUSES,
    ListingStatus,
    MarketplaceJob,
    MarketplaceListing,
    Product,
)
from crosslist.errors import NotFound
from crosslist.products.schemas import ProductCreate, ProductPage, ProductUpdate, ProductView
from crosslist.workflows.base import ProductSnapshot

# Far under Lambda's 6 MB response limit, even with the largest allowed product in a page and the body
# escaped once more inside the Lambda response; a page holds fewer than `limit` products rather than pass it.
MAX_PAGE_JSON_BYTES = 1024 * 1024


def find_product(session: Session, user_id: str, product_id: uuid.UUID) -> Product | None:
    return session.scalar(select(Product).where(Product.id == product_id, Product.user_id == user_id))


def listings_of(session: Session, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[MarketplaceListing]]:
    """The listings of each product (one query for a page of products)."""
    found: dict[uuid.UUID, list[MarketplaceListing]] = {product_id: [] for product_id in product_ids}
    if product_ids:
        rows = session.scalars(select(MarketplaceListing).where(MarketplaceListing.product_id.in_(product_ids)))
        for listing in rows:
            found[listing.product_id].append(listing)
    return found


def live_listings(session: Session, product_id: uuid.UUID) -> list[MarketplaceListing]:
    """The product's listings a buyer can still buy from."""
    return list(
        session.scalars(
            select(MarketplaceListing)
            .where(
                MarketplaceListing.product_id == product_id,
                MarketplaceListing.status.in_([ListingStatus(status) for status in LIVE_LISTING_STATUSES]),
            )
            .order_by(MarketplaceListing.marketplace)
        )
    )


def active_job_of(session: Session, user_id: str, product_id: uuid.UUID) -> MarketplaceJob | None:
    return session.scalar(
        select(MarketplaceJob)
        .where(
            MarketplaceJob.user_id == user_id,
            MarketplaceJob.product_id == product_id,
            MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
        )
        .limit(1)
    )


def remove_if_delisted(session: Session, user_id: str, product_id: uuid.UUID) -> bool:
    """A job of the product ended (in the caller's transaction): a product whose deletion was asked once its
    listings are delisted is deleted when none is live and no job of it is active. Returns whether it was."""
    requested = session.scalar(
        select(Product.delete_requested_at).where(Product.id == product_id, Product.user_id == user_id)
    )
    if requested is None:
        return False
    session.flush()  # the job that just ended no longer counts as active
    if active_job_of(session, user_id, product_id) is not None or live_listings(session, product_id):
        return False
    session.execute(delete(Product).where(Product.id == product_id, Product.user_id == user_id))
    return True


def snapshot(product: Product, listings: list[MarketplaceListing] | None = None) -> ProductSnapshot:
    """The product as a job sees it, with its listings (marketplace -> external id, url, status, photos)."""
    return ProductSnapshot(
        id=str(product.id),
        title=product.title,
        description=product.description,
        price=str(product.price),
        currency=product.currency,
        brand=product.brand,
        size=product.size,
        condition=product.condition,
        color=product.color,
        image_urls=list(product.image_urls),
        quantity=product.quantity,
        sku=product.sku,
        marketplace_attributes=dict(product.marketplace_attributes),
        listings={
            listing.marketplace: {
                "external_id": listing.external_id,
                "url": listing.url,
                "status": listing.status.value,
                "image_urls": listing.image_urls,
            }
            for listing in listings or []
        },
    )


class ProductService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, user_id: str, fields: ProductCreate) -> ProductView:
        values = fields.model_dump(mode="json")
        values["price"] = fields.price
        with transaction(self._sessions) as session:
            product = Product(id=uuid.uuid4(), user_id=user_id, **values)
            session.add(product)
            session.flush()
            session.refresh(product)
            return ProductView.of(product, [])

    def list(self, user_id: str, limit: int, offset: int) -> ProductPage:
        """Up to `limit` products from `offset`, newest first, as many as fit in MAX_PAGE_JSON_BYTES (at least one)."""
        with transaction(self._sessions) as session:
            total = session.scalar(select(func.count()).select_from(Product).where(Product.user_id == user_id)) or 0
            # One more than asked says whether another page follows.
            products = session.scalars(
                select(Product)
                .where(Product.user_id == user_id)
                .order_by(Product.created_at.desc(), Product.id)
                .limit(limit + 1)
                .offset(offset)
            ).all()
            items: list[ProductView] = []
            page_bytes = 0
            listings = listings_of(session, [product.id for product in products[:limit]])
            for product in products[:limit]:
                view = ProductView.of(product, listings[product.id])
                view_bytes = _json_bytes(view)
                if items and page_bytes + view_bytes > MAX_PAGE_JSON_BYTES:
                    break
                items.append(view)
                page_bytes += view_bytes
            next_offset = offset + len(items) if len(products) > len(items) else None
            return ProductPage(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)

    def get(self, user_id: str, product_id: uuid.UUID) -> ProductView:
        with transaction(self._sessions) as session:
            product = self._owned(session, user_id, product_id)
            return ProductView.of(product, listings_of(session, [product.id])[product.id])

    def update(self, user_id: str, product_id: uuid.UUID, changes: ProductUpdate) -> ProductView:
        values = changes.model_dump(mode="json", exclude_unset=True)
        if "price" in values:
            values["price"] = changes.price
        with transaction(self._sessions) as session:
            product = self._owned(session, user_id, product_id)
            for name, value in values.items():
                setattr(product, name, value)
            session.flush()
            session.refresh(product)
            return ProductView.of(product, listings_of(session, [product.id])[product.id])

    @staticmethod
    def _owned(session: Session, user_id: str, product_id: uuid.UUID) -> Product:
        return owned_product(session, user_id, product_id)


def owned_product(session: Session, user_id: str, product_id: uuid.UUID, *, lock: bool = False) -> Product:
    """The user's product; NotFound otherwise."""
    query = select(Product).where(Product.id == product_id, Product.user_id == user_id)
    product = session.scalar(query.with_for_update() if lock else query)
    if product is None:
        raise NotFound(f"product {product_id} not found")
    return product


def _json_bytes(view: ProductView) -> int:
    # As the API serializes it: compact, non-ASCII escaped (up to 12 bytes for one character).
    return len(json.dumps(view.model_dump(mode="json"), separators=(",", ":")))
