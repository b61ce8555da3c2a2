"""Use cases of the product API, every one scoped to the calling user."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import ACTIVE_JOB_STATUSES, MarketplaceJob, MarketplaceListing, Product
from crosslist.errors import Conflict, NotFound
from crosslist.products.schemas import ProductCreate, ProductPage, ProductUpdate, ProductView
from crosslist.workflows.base import ProductSnapshot

# Far under Lambda's 6 MB response limit, even with the largest allowed product in a page and the body
# escaped once more inside the Lambda response; a page holds fewer than `limit` products rather than pass it.
MAX_PAGE_JSON_BYTES = 1024 * 1024


def find_product(session: Session, user_id: str, product_id: uuid.UUID) -> Product | None:
    return session.scalar(select(Product).where(Product.id == product_id, Product.user_id == user_id))


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
            return ProductView.of(product)

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
            for product in products[:limit]:
                view = ProductView.of(product)
                view_bytes = _json_bytes(view)
                if items and page_bytes + view_bytes > MAX_PAGE_JSON_BYTES:
                    break
                items.append(view)
                page_bytes += view_bytes
            next_offset = offset + len(items) if len(products) > len(items) else None
            return ProductPage(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)

    def get(self, user_id: str, product_id: uuid.UUID) -> ProductView:
        with transaction(self._sessions) as session:
            return ProductView.of(self._owned(session, user_id, product_id))

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
            return ProductView.of(product)

    def delete(self, user_id: str, product_id: uuid.UUID) -> None:
        with transaction(self._sessions) as session:
            product = self._owned(session, user_id, product_id)
            active_job = session.scalar(
                select(MarketplaceJob.id).where(
                    MarketplaceJob.user_id == user_id,
                    MarketplaceJob.product_id == product_id,
                    MarketplaceJob.status.in_(ACTIVE_JOB_STATUSES),
                )
            )
            if active_job is not None:
                raise Conflict(
                    "this product has a job in progress; wait for it to finish",
                    code="job_in_progress",
                    job_id=str(active_job),
                )
            session.delete(product)

    @staticmethod
    def _owned(session: Session, user_id: str, product_id: uuid.UUID) -> Product:
        product = find_product(session, user_id, product_id)
        if product is None:
            raise NotFound(f"product {product_id} not found")
        return product


def _json_bytes(view: ProductView) -> int:
    # As the API serializes it: compact, non-ASCII escaped (up to 12 bytes for one character).
    return len(json.dumps(view.model_dump(mode="json"), separators=(",", ":")))
