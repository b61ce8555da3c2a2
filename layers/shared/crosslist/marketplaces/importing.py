"""What the `import` workflows of every marketplace share: their params, a page recorded with its checkpoint,
the product fields as the products table takes them, and the job's result.

An import job belongs to an import (POST /imports), whose id it carries: each page it reads is recorded in the
transaction that saves the page's checkpoint (`Again.effects`), so the user sees products appear page by page, and a
step repeated after a crash records nothing twice (crosslist.imports.apply).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from crosslist.products.image_urls import MAX_IMAGE_URL_LENGTH
from crosslist.products.schemas import MAX_DESCRIPTION_LENGTH, MAX_TITLE_LENGTH
from crosslist.workflows.base import (
    Again,
    Completion,
    ImportedItem,
    JobContext,
    JsonDict,
    ListingState,
    NewProduct,
    PhotoHashes,
    Records,
    Reply,
    parse_params,
)

MAX_PRICE = Decimal("9999999999.99")  # products.price is numeric(12, 2)
CENT = Decimal("0.01")
MAX_PHOTOS = 20
# The widths of products.brand, size, condition, color and sku.
MAX_BRAND, MAX_SIZE, MAX_CONDITION, MAX_COLOR, MAX_SKU = 100, 50, 50, 50, 100
# A page read, kept in the checkpoint while its photos are hashed: recorded once they are.
PAGE_READ = "page_read"
_HASH = re.compile(r"[0-9a-f]{16}")


class ImportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    import_id: uuid.UUID = Field(description="The import this job reads for (POST /imports makes both)")
    migrate_ebay: StrictBool = Field(default=False, description="eBay: migrate listings made outside the Inventory API")


def import_input(params: JsonDict | None) -> JsonDict:
    parsed = parse_params(ImportParams, params, "an import job is started by POST /imports")
    return {"import_id": str(parsed.import_id), "migrate_ebay": parsed.migrate_ebay}


def recorded(context: JobContext, data: JsonDict, items: list[ImportedItem], note: str) -> Again:
    """The page's items recorded with the checkpoint `data`, once their first photos are hashed (the page waits in
    the checkpoint meanwhile: `photos_to_hash`, then `photos_hashed`); the job's counts grow by the page's."""
    if any(_first_photo(item) for item in items):
        waiting = {"items": [item_json(item) for item in items], "note": note}
        return Again({**data, PAGE_READ: waiting}, note=f"{note}; comparing photos")
    return _record(context, data, items, note)


def photos_to_hash(context: JobContext) -> PhotoHashes | None:
    """The step's action while a page read waits for its photos' hashes (an import workflow's `plan` asks first)."""
    waiting = context.accumulated.get(PAGE_READ)
    if not waiting:
        return None
    urls = (_first_photo(item_from_json(raw)) for raw in waiting["items"])
    return PhotoHashes(tuple(dict.fromkeys(url for url in urls if url)))


def photos_hashed(context: JobContext, reply: Reply) -> Again | None:
    """The page waiting for its photos, recorded with their hashes (an import workflow's `apply` asks first). A photo
    that could not be read, or a step that failed, leaves the listing without a hash: matching then goes by its
    title and price, as it would without photos, rather than stopping the import."""
    waiting = context.accumulated.get(PAGE_READ)
    if not waiting:
        return None
    hashes = (reply.result or {}).get("hashes", {}) if reply.success else {}
    items = [item_from_json(raw) for raw in waiting["items"]]
    hashed = [replace(item, photo_hash=_hash(hashes.get(_first_photo(item) or ""))) for item in items]
    data = {key: value for key, value in context.accumulated.items() if key != PAGE_READ}
    return _record(context, data, hashed, str(waiting["note"]))


def _first_photo(item: ImportedItem) -> str | None:
    return item.product.image_urls[0] if item.product is not None and item.product.image_urls else None


def _hash(value: object) -> str | None:
    return value if isinstance(value, str) and _HASH.fullmatch(value) else None


def _record(context: JobContext, data: JsonDict, items: list[ImportedItem], note: str) -> Again:
    before: dict[str, int] = dict(context.accumulated.get("counts", {}))
    import_id = str(context.input["import_id"])

    def effects(records: Records) -> JsonDict:
        page = records.import_listings(import_id, items) if items else {}
        return {"counts": {key: before.get(key, 0) + page.get(key, 0) for key in sorted({*before, *page})}}

    return Again({**data, "counts": before}, note=note, effects=effects)


def item_json(item: ImportedItem) -> JsonDict:
    """An item read, kept in a checkpoint until its page is recorded."""
    return asdict(item)


def item_from_json(data: JsonDict) -> ImportedItem:
    product = data.get("product")
    return ImportedItem(
        **{**data, "product": NewProduct(**product) if product else None, "warnings": tuple(data.get("warnings", ()))}
    )


def completed(context: JobContext, **more: object) -> Completion:
    return Completion(result={"import_id": context.input["import_id"], **context.accumulated.get("counts", {}), **more})


def amount(value: str | Decimal | None) -> str | None:
    """A price as products take it ("12.50"); None when it is not a positive amount crosslist can store."""
    try:
        price = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None
    return str(price) if CENT <= price <= MAX_PRICE else None


def clip(text: str | None, width: int) -> str | None:
    text = (text or "").strip()
    return text[:width] if text else None


def imported(
    *,
    external_id: str,
    state: ListingState,
    url: str | None,
    title: str,
    description: str | None,
    price: str | Decimal | None,
    currency: str | None,
    quantity: int,
    image_urls: list[str],
    sku: str | None = None,
    brand: str | None = None,
    size: str | None = None,
    condition: str | None = None,
    color: str | None = None,
    attributes: JsonDict | None = None,
) -> ImportedItem:
    """An item read, as a product crosslist can hold, or skipped with the reason it cannot."""
    warnings: list[str] = []
    usable = [u for u in image_urls if u.startswith(("https://", "http://")) and len(u) <= MAX_IMAGE_URL_LENGTH]
    if len(usable) < len(image_urls):
        warnings.append("photo_urls_dropped")
    image_urls = list(dict.fromkeys(usable))
    money = amount(price)
    name = " ".join(title.split())
    if money is None:
        return ImportedItem(external_id, state, url, None, skipped="no_price", sku=sku)
    if not name:
        return ImportedItem(external_id, state, url, None, skipped="no_title", sku=sku)
    if len(name) > MAX_TITLE_LENGTH:
        warnings.append("title_shortened")
    if not image_urls:
        warnings.append("no_photos")
    if len(image_urls) > MAX_PHOTOS:
        warnings.append("photos_dropped")
    product = NewProduct(
        title=name[:MAX_TITLE_LENGTH],
        description=(description or "").strip()[:MAX_DESCRIPTION_LENGTH],
        price=money,
        currency=(currency or "EUR").upper()[:3],
        brand=clip(brand, MAX_BRAND),
        size=clip(size, MAX_SIZE),
        condition=clip(condition, MAX_CONDITION),
        color=clip(color, MAX_COLOR),
        image_urls=image_urls[:MAX_PHOTOS],
        quantity=max(0, quantity),
        sku=clip(sku, MAX_SKU),
        marketplace_attributes=attributes or {},
    )
    return ImportedItem(external_id, state, url, product, sku=sku, warnings=tuple(warnings))
