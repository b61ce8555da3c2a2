"""An import's page, recorded in the transaction that checkpoints it (crosslist.workflows.base.Records).

Every listing read is written to imported_listings (unique per user, marketplace and item) before anything is made
of it, in the same transaction: a page applied twice (a step repeated after a crash), or a second import, finds its
rows and makes nothing again. Pages of different marketplaces are applied one at a time per import (its row is
locked), so the eBay and the Etsy listing of one item, read at the same moment by two lanes, become one product.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from crosslist.db.models import LIVE_LISTING_STATUSES, Import, ImportedListing, MarketplaceListing, Product
from crosslist.imports.matching import Candidate, Listing, Matcher
from crosslist.workflows.base import ImportedItem, JsonDict, Listed, NewProduct, StepFailed

CreateProduct = Callable[[NewProduct], str]
LinkListing = Callable[[str, Listed], None]  # (product id, the listing): created or replacing the product's one


def apply_page(
    session: Session,
    user_id: str,
    marketplace: str,
    import_id: str,
    items: list[ImportedItem],
    *,
    create: CreateProduct,
    link: LinkListing,
) -> JsonDict:
    """Record the page's items; returns its counts (created, linked, proposed, skipped, known, already_imported,
    updated, sold, read_again)."""
    _lock_import(session, user_id, import_id)
    ids = [item.external_id for item in items]
    recorded = {
        row.external_id: row
        for row in session.scalars(
            select(ImportedListing).where(
                ImportedListing.user_id == user_id,
                ImportedListing.marketplace == marketplace,
                ImportedListing.external_id.in_(ids),
            )
        )
    }
    live = dict(
        session.execute(
            select(MarketplaceListing.external_id, MarketplaceListing.product_id).where(
                MarketplaceListing.user_id == user_id,
                MarketplaceListing.marketplace == marketplace,
                MarketplaceListing.external_id.in_(ids),
                MarketplaceListing.status.in_(LIVE_LISTING_STATUSES),
            )
        ).all()
    )
    matcher = Matcher(_candidates(session, user_id, marketplace))
    counts: Counter[str] = Counter()
    for item in items:
        row = recorded.get(item.external_id)
        if row is not None:
            counts[_seen_again(session, row, item, import_id, link)] += 1
            continue
        row = ImportedListing(
            id=uuid.uuid4(),
            import_id=uuid.UUID(import_id),
            last_import_id=uuid.UUID(import_id),
            user_id=user_id,
            marketplace=marketplace,
            external_id=item.external_id,
            state=item.state,
            listing=_listing_json(item),
        )
        recorded[item.external_id] = row
        if item.external_id in live:  # crosslist's own listing (published or linked before)
            row.decision, row.reason, row.product_id = "known", "already_a_listing", live[item.external_id]
        elif item.product is None:
            row.decision, row.reason = "skipped", item.skipped or "not_representable"
        else:
            _decide(session, row, item, item.product, matcher, create=create, link=link)
        session.add(row)
        counts[row.decision] += 1
        if item.state == "sold":
            counts["sold"] += 1
    session.flush()
    return dict(counts)


def _decide(
    session: Session,
    row: ImportedListing,
    item: ImportedItem,
    product: NewProduct,
    matcher: Matcher,
    *,
    create: CreateProduct,
    link: LinkListing,
) -> None:
    photos = (item.photo_hash,) if item.photo_hash else ()
    found = matcher.match(
        Listing(product.title, product.price, item.sku, product.brand, product.size, product.color, photos)
    )
    row.confidence = Decimal(str(found.confidence))
    row.reason = found.reason
    if found.decision == "propose":
        row.decision, row.candidate_product_id = "proposed", uuid.UUID(str(found.product_id))
        return
    if found.decision == "link":
        product_id = str(found.product_id)
        row.decision = "linked"
        merge_attributes(session, uuid.UUID(product_id), row.marketplace, product.marketplace_attributes)
    else:
        product_id = create(product)
        row.decision, row.reason = "created", None
    link(product_id, listed(item))
    matcher.remove(product_id)
    row.product_id = uuid.UUID(product_id)
    row.decided_at = datetime.now(UTC)


def merge_attributes(session: Session, product_id: uuid.UUID, marketplace: str, attributes: JsonDict) -> None:
    """A listing linked to a product brings what the marketplace says of it (eBay: its own SKU, whether it was made
    outside the Inventory API): later updates and deletes of the listing need it."""
    mine = attributes.get(marketplace)
    if not mine:
        return
    product = session.get(Product, product_id, with_for_update=True)
    if product is not None:
        held = dict(product.marketplace_attributes or {})
        held[marketplace] = {**(held.get(marketplace) or {}), **mine}
        product.marketplace_attributes = held


def listed(item: ImportedItem) -> Listed:
    """The listing an imported item is: its photos are the product's (a later update need not upload them)."""
    photos = list(item.product.image_urls) if item.product is not None else None
    return Listed(external_id=item.external_id, url=item.url, status=item.state, image_urls=photos)


def _seen_again(session: Session, row: ImportedListing, item: ImportedItem, import_id: str, link: LinkListing) -> str:
    """An item already recorded: by an earlier import (`already_imported`), or by this one (`read_again`: pages that
    overlap, a page read again after a crash). Read in another state (it sold meanwhile), its listing takes the new
    state (`updated`), and so does the quantity of the product this import made of it."""
    first_read_here = str(row.last_import_id or row.import_id) != import_id
    row.last_import_id = uuid.UUID(import_id)
    if row.state == item.state:
        return "already_imported" if first_read_here else "read_again"
    row.state = item.state
    row.listing = _listing_json(item)
    if row.product_id is not None:
        link(str(row.product_id), listed(item))
        if row.decision == "created" and str(row.import_id) == import_id and item.product is not None:
            session.execute(update(Product).where(Product.id == row.product_id).values(quantity=item.product.quantity))
    return "updated"


def _lock_import(session: Session, user_id: str, import_id: str) -> None:
    try:
        key = uuid.UUID(import_id)
    except ValueError:
        key = None
    found = (
        session.scalar(select(Import.id).where(Import.id == key, Import.user_id == user_id).with_for_update())
        if key is not None
        else None
    )
    if found is None:
        raise StepFailed(
            "import_not_found", f"import {import_id} does not exist (start one with POST /imports)", retryable=False
        )


def _candidates(session: Session, user_id: str, marketplace: str) -> list[Candidate]:
    """The seller's products that have no live listing on the marketplace: one of them may be the item read. Each is
    a candidate as it is, and as each listing imported into it shows it (its title and first photo there): the Vinted
    listing of jeans whose product was made from a reworded Etsy title still finds the eBay title linked to it."""
    listing = aliased(MarketplaceListing)
    listed_there = exists().where(
        listing.product_id == Product.id,
        listing.marketplace == marketplace,
        listing.status.in_(LIVE_LISTING_STATUSES),
    )
    rows = session.execute(
        select(Product.id, Product.title, Product.price, Product.sku, Product.brand, Product.size, Product.color).where(
            Product.user_id == user_id, Product.delete_requested_at.is_(None), ~listed_there
        )
    ).all()
    products = {
        row.id: Candidate(row.title, str(row.price), row.sku, row.brand, row.size, row.color, product_id=str(row.id))
        for row in rows
    }
    # Only the fields matching looks at: a page is matched against every listing imported so far, and the listings'
    # descriptions (up to 100 000 characters each) would be read again with every page.
    read = ImportedListing.listing
    product_title = read["product", "title"].as_string()
    imported = session.execute(
        select(
            ImportedListing.product_id,
            product_title,
            read["product", "price"].as_string(),
            read["product", "brand"].as_string(),
            read["product", "size"].as_string(),
            read["product", "color"].as_string(),
            read["photo_hash"].as_string(),
        ).where(
            ImportedListing.user_id == user_id, ImportedListing.product_id.in_(products), product_title.is_not(None)
        )
    )
    # As a listing imported into it shows it; its SKU stays the product's (one product, one SKU).
    shown_there = [
        Candidate(title, price, None, brand, size, color, (photo,) if photo else (), product_id=str(product_id))
        for product_id, title, price, brand, size, color, photo in imported
    ]
    return [*products.values(), *shown_there]


def _listing_json(item: ImportedItem) -> JsonDict:
    return {
        "url": item.url,
        "sku": item.sku,
        "photo_hash": item.photo_hash,
        "product": asdict(item.product) if item.product is not None else None,
        "warnings": list(item.warnings),
    }


def product_row(user_id: str, fields: NewProduct) -> Product:
    """A new product of the user's, as a job or an import makes it from a listing."""
    return Product(
        id=uuid.uuid4(),
        user_id=user_id,
        title=fields.title,
        description=fields.description,
        price=Decimal(fields.price),
        currency=fields.currency,
        brand=fields.brand,
        size=fields.size,
        condition=fields.condition,
        color=fields.color,
        image_urls=list(fields.image_urls),
        quantity=fields.quantity,
        sku=fields.sku,
        marketplace_attributes=dict(fields.marketplace_attributes),
    )


def new_product(listing: JsonDict) -> NewProduct:
    """The product a recorded listing makes (a proposal the user rejected)."""
    return NewProduct(**listing["product"])
