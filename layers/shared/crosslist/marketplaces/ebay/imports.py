"""Import an eBay shop: the Inventory API's items with their offers, then the listings made outside it.

1. `import_inventory`: a page of inventory items (100), then each one's offer (getOffers has no bulk form: a call
   per SKU), and the page is recorded once its offers are read. Members of an inventory item group (variations)
   are skipped with `variations_not_supported`.
2. Listings made on ebay.com or in Seller Hub are invisible to the Inventory API. The Sell Feed API's
   LMS_ACTIVE_INVENTORY_REPORT lists every active listing: the import asks for one (`request_report`), waits for
   it without a Lambda waiting (`await_report`: a timer between polls), reads the zip (`read_report`), and imports
   each listing the Inventory API did not show through the Browse API (`import_outside`, a call per listing). Those
   are marked `outside_inventory_api`: crosslist cannot revise or end them until they are migrated.
3. `migrate` (only with `migrate_ebay: true`): bulkMigrateListing, 5 listings a call, moves them into the
   Inventory API, for good (eBay's migration is one-way). A listing without an SKU cannot be migrated (eBay's rule).
"""

from __future__ import annotations

import base64
import io
import time
import zipfile
from dataclasses import replace
from urllib.parse import quote
from xml.etree import ElementTree

from pydantic import Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.ebay.common import (
    INVENTORY,
    EbayModel,
    errors_of,
    failure,
    find_offer,
    found_offer,
    listing_state,
    listing_url,
    parse,
)
from crosslist.marketplaces.importing import (
    completed,
    import_input,
    imported,
    item_from_json,
    item_json,
    photos_hashed,
    photos_to_hash,
    recorded,
)
from crosslist.marketplaces.rest import ApiWorkflow
from crosslist.workflows.base import (
    Again,
    Completion,
    Done,
    HttpCall,
    ImportedItem,
    JobContext,
    JsonDict,
    ProductSnapshot,
    Records,
    Reply,
    Step,
    StepAction,
    StepFailed,
    Wait,
)

PAGE_SIZE = 100  # inventory items per page (eBay's maximum is 200)
FEED = "/sell/feed/v1"
REPORT = "LMS_ACTIVE_INVENTORY_REPORT"
POLL_SECONDS = 30.0  # between two looks at a report being made (eBay makes them in minutes)
FIRST_POLL_SECONDS = 2.0
MIGRATE_BATCH = 5  # bulkMigrateListing's maximum
OUTSIDE_PAGE = 25  # listings made on ebay.com are read one by one and recorded together
MAX_REPORT_XML = 200 * 1024 * 1024
VARIATIONS = "variations_not_supported"

STEPS = (
    Step("import_inventory", "Importing your eBay inventory", kind="import_inventory"),
    Step("request_report", "Asking eBay for the list of all your active listings", kind="request_report"),
    Step("await_report", "Waiting for eBay's list of your active listings", kind="await_report"),
    Step("read_report", "Reading eBay's list of your active listings", kind="read_report"),
    Step("import_outside", "Importing the listings made on ebay.com", kind="import_outside"),
    Step("migrate", "Migrating the listings made on ebay.com to the Inventory API", kind="migrate"),
)


class _Product(EbayModel):
    title: str = Field(default="", max_length=1000)
    description: str = Field(default="", max_length=500_000)
    image_urls: list[str] = Field(default_factory=list)
    aspects: dict[str, list[str]] = Field(default_factory=dict)


class _Quantity(EbayModel):
    quantity: int = 0


class _Availability(EbayModel):
    ship_to_location_availability: _Quantity | None = None


class _Item(EbayModel):
    sku: str = Field(max_length=100)
    condition: str | None = None
    product: _Product = Field(default_factory=_Product)
    availability: _Availability | None = None
    group_ids: list[str] = Field(default_factory=list)


class _Items(EbayModel):
    inventory_items: list[_Item] = Field(default_factory=list, max_length=200)
    total: int = 0


class _Task(EbayModel):
    task_id: str | None = None
    status: str = ""


class _Money(EbayModel):
    value: str
    currency: str


class _Image(EbayModel):
    image_url: str = Field(default="", max_length=1000)


class _Availabilities(EbayModel):
    estimated_available_quantity: int | None = None


class _BrowseItem(EbayModel):
    legacy_item_id: str | None = None
    title: str = Field(default="", max_length=1000)
    short_description: str | None = Field(default=None, max_length=10_000)
    description: str | None = Field(default=None, max_length=500_000)
    price: _Money | None = None
    image: _Image | None = None
    additional_images: list[_Image] = Field(default_factory=list)
    category_id: str | None = None
    brand: str | None = None
    color: str | None = None
    size: str | None = None
    condition: str | None = None
    item_web_url: str | None = Field(default=None, max_length=500)
    estimated_availabilities: list[_Availabilities] = Field(default_factory=list)


class _Migrated(EbayModel):
    sku: str | None = None
    offer_id: str | None = None


class _Migration(EbayModel):
    status_code: int = 0
    listing_id: str | None = None
    inventory_items: list[_Migrated] = Field(default_factory=list)


class _Migrations(EbayModel):
    responses: list[_Migration] = Field(default_factory=list)


class EbayImport(ApiWorkflow):
    marketplace: Marketplace = "ebay"
    action = "import"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return import_input(params)

    def steps(self, job_input: JsonDict) -> list[Step]:
        return list(STEPS)

    def plan(self, step: Step, context: JobContext) -> StepAction:
        if (hashing := photos_to_hash(context)) is not None:  # a page read waits for its photos
            return hashing
        return self._plan(step, context)

    def _plan(self, step: Step, context: JobContext) -> StepAction:
        data = context.accumulated
        if step.kind == "import_inventory":
            if data.get("inventory_done"):
                return Done(data)
            pending = _pending_offers(data)
            if pending:
                return find_offer(_for_sku(context, pending[0]))
            offset = int(data.get("offset", 0))
            path = f"{INVENTORY}/inventory_item?limit={PAGE_SIZE}&offset={offset}"
            return HttpCall("GET", path, "read", repeatable=True)
        if step.kind == "request_report":
            body = {"feedType": REPORT, "schemaVersion": "1.0"}
            # Repeatable: a second task for a lost reply costs one of the day's ~25, and makes nothing twice.
            return HttpCall("POST", f"{FEED}/inventory_task", "read", json=body, repeatable=True)
        if step.kind == "await_report":
            if data.get("report_failed"):
                return Done(data)
            wait = float(data.get("poll_at", 0)) - time.time()
            if wait > 0:
                return Wait(wait, reason="ebay_report")
            return HttpCall("GET", f"{FEED}/inventory_task/{quote(data['task_id'], safe='')}", "read", repeatable=True)
        if step.kind == "read_report":
            if data.get("report_failed") or data.get("report_read"):
                return Done({"outside": [], **data})
            path = f"{FEED}/task/{quote(data['task_id'], safe='')}/download_result_file"
            return HttpCall("GET", path, "read", repeatable=True, binary=True)
        if step.kind == "import_outside":
            index = int(data.get("outside_index", 0))
            outside = data.get("outside", [])
            if index >= len(outside):
                return Done(data)
            path = f"/buy/browse/v1/item/get_item_by_legacy_id?legacy_item_id={quote(outside[index]['item_id'])}"
            site = context.input.get("seller", {}).get("marketplace_id", "EBAY_GB")
            return HttpCall("GET", path, "read", headers={"X-EBAY-C-MARKETPLACE-ID": site}, repeatable=True)
        batch = _to_migrate(context)
        if not context.input.get("migrate_ebay") or not batch:
            return Done(data)
        migration: JsonDict = {"requests": [{"listingId": item_id} for item_id in batch]}
        # A migration repeated is refused for listings already migrated (they are read as such): never doubled.
        return HttpCall("POST", f"{INVENTORY}/bulk_migrate_listing", "write", json=migration, repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        if (hashed := photos_hashed(context, reply)) is not None:
            return hashed
        if step.kind == "import_inventory":
            return self._inventory(context, reply)
        data = dict(context.accumulated)
        if step.kind == "request_report":
            return _report_requested(data, reply)
        if step.kind == "await_report":
            if not reply.success:
                raise failure(reply, "looking at the report of your active listings")
            task = parse(_Task, reply, "looking at the report of your active listings")
            if task.status in ("COMPLETED", "COMPLETED_WITH_ERROR"):
                return data
            if task.status in ("FAILED", "PARTIALLY_PROCESSED"):
                return {**data, "report_failed": f"eBay could not make the report ({task.status})"}
            return Again({**data, "poll_at": time.time() + POLL_SECONDS}, note=f"eBay's report is {task.status}")
        if step.kind == "read_report":
            if not reply.success:
                raise failure(reply, "downloading the report of your active listings")
            listings = _report(reply)
            known, in_groups = set(data.get("listing_ids", [])), set(data.get("group_skus", []))
            unseen = [listing for listing in listings if listing["item_id"] not in known]
            # A listing with variations is reported, not read: an Inventory API group already was (group:{key}).
            variations = [
                ImportedItem(listing["item_id"], "active", None, None, skipped=VARIATIONS, sku=listing["sku"])
                for listing in unseen
                if listing["variation_skus"] and not set(listing["variation_skus"]) & in_groups
            ]
            outside = [listing for listing in unseen if not listing["variation_skus"]]
            data |= {"outside": outside, "active_in_report": len(listings), "report_read": True}
            return recorded(context, data, variations, f"{len(outside)} listings made on ebay.com to read")
        if step.kind == "import_outside":
            index = int(data.get("outside_index", 0))
            entry = data["outside"][index]
            read = [*data.get("outside_read", []), item_json(_outside_item(context, entry, reply))]
            data["outside_index"] = index + 1
            note = f"{index + 1} of {len(data['outside'])} read"
            if len(read) < OUTSIDE_PAGE and index + 1 < len(data["outside"]):
                return Again({**data, "outside_read": read}, note=note)  # recorded by pages, not one by one
            return recorded(context, {**data, "outside_read": []}, [item_from_json(r) for r in read], note)
        return _migrated(context, data, reply)

    def complete(self, context: JobContext) -> Completion:
        data = context.accumulated
        more: JsonDict = {"outside_inventory_api": len(data.get("outside", []))}
        if data.get("report_failed"):
            more["warnings"] = [f"the listings made on ebay.com were not read: {data['report_failed']}"]
        if context.input.get("migrate_ebay"):
            more["migrated"] = len(data.get("migrated", []))
            more["not_migrated"] = data.get("not_migrated", [])
        return completed(context, **more)

    # ------------------------------------------------------------------ the Inventory API
    def _inventory(self, context: JobContext, reply: Reply) -> JsonDict | Again:
        data = dict(context.accumulated)
        pending = _pending_offers(data)
        if pending:  # the reply is an offer's
            sku = pending[0]
            found = found_offer(_for_sku(context, sku), reply)
            data["offers"] = {
                **data.get("offers", {}),
                sku: {
                    "state": listing_state(found),
                    "listing_id": found.listing.listing_id if found is not None and found.listing else None,
                    "price": _price_of(reply, found.offer_id) if found is not None else None,
                    "quantity": found.available_quantity if found is not None else None,
                    "category_id": found.category_id if found is not None else None,
                },
            }
            if len(pending) > 1:
                return Again(data, note=f"{len(data['offers'])} of {len(data['page'])} offers of the page read")
            return self._page_done(context, data)
        if not reply.success:
            raise failure(reply, "reading the inventory")
        page = parse(_Items, reply, "reading the inventory")
        offset = int(data.get("offset", 0))
        data |= {
            "offset": offset + PAGE_SIZE,
            "total": page.total,
            "page": [item.model_dump(by_alias=True, exclude_none=True) for item in page.inventory_items],
            "offers": {},
        }
        data["last_page"] = not page.inventory_items or offset + PAGE_SIZE >= page.total
        if _pending_offers(data):
            return Again(data, note=f"{min(offset + PAGE_SIZE, page.total)} of {page.total} inventory items read")
        return self._page_done(context, data)

    def _page_done(self, context: JobContext, data: JsonDict) -> Again:
        """The page's items and offers all read: recorded, and the next page (or the next step) follows."""
        items = [_inventory_item(context, _Item.model_validate(raw), data["offers"]) for raw in data["page"]]
        listing_ids = [*data.get("listing_ids", []), *(i.external_id for i in items if i.external_id.isdigit())]
        group_skus = [*data.get("group_skus", []), *(raw["sku"] for raw in data["page"] if raw.get("groupIds"))]
        checkpoint = {
            **data,
            "page": [],
            "offers": {},
            "listing_ids": listing_ids,
            "group_skus": group_skus,
            "inventory_done": bool(data.get("last_page")),
        }
        return recorded(context, checkpoint, items, f"{min(int(data['offset']), int(data.get('total', 0)))} items")


def _pending_offers(data: JsonDict) -> list[str]:
    offers = data.get("offers", {})
    return [raw["sku"] for raw in data.get("page", []) if not raw.get("groupIds") and raw["sku"] not in offers]


def _for_sku(context: JobContext, sku: str) -> JobContext:
    return replace(context, input={**context.input, "sku": sku})


def _price_of(reply: Reply, offer_id: str) -> JsonDict | None:
    for offer in (reply.result or {}).get("offers", []):
        if isinstance(offer, dict) and offer.get("offerId") == offer_id:
            price = (offer.get("pricingSummary") or {}).get("price")
            return price if isinstance(price, dict) else None
    return None


def _inventory_item(context: JobContext, item: _Item, offers: JsonDict) -> ImportedItem:
    if item.group_ids:  # one listing with variations: reported once, under its group
        return ImportedItem(f"group:{item.group_ids[0]}", "active", None, None, skipped=VARIATIONS)
    offer = offers.get(item.sku) or {}
    listing_id = offer.get("listing_id")
    if not listing_id:  # an inventory item never published: not a listing
        return ImportedItem(f"sku:{item.sku}", "closed", None, None, skipped="not_listed", sku=item.sku)
    state = offer["state"]
    price = offer.get("price") or {}
    quantity = offer.get("quantity")
    if quantity is None:
        stock = item.availability.ship_to_location_availability if item.availability else None
        quantity = stock.quantity if stock is not None else 1
    aspects = item.product.aspects
    attributes: JsonDict = {"sku": item.sku, "aspects": aspects}
    if offer.get("category_id"):
        attributes["category_id"] = offer["category_id"]
    if item.condition:
        attributes["condition"] = item.condition
    return imported(
        external_id=str(listing_id),
        state=state,
        url=listing_url(context, str(listing_id)),
        title=item.product.title,
        description=item.product.description,
        price=price.get("value"),
        currency=price.get("currency"),
        quantity=0 if state == "sold" else int(quantity),
        image_urls=item.product.image_urls,
        sku=item.sku,
        brand=_aspect(aspects, "Brand"),
        size=_aspect(aspects, "Size"),
        color=_aspect(aspects, "Colour") or _aspect(aspects, "Color"),
        condition=item.condition,
        attributes={"ebay": attributes},
    )


def _aspect(aspects: dict[str, list[str]], name: str) -> str | None:
    values = aspects.get(name) or []
    return values[0] if values else None


# ------------------------------------------------------------------ the Feed report and the Browse API
def _report_requested(data: JsonDict, reply: Reply) -> JsonDict:
    if not reply.success:
        if reply.status == 429:  # about 25 reports a day: the import goes on without the ebay.com listings
            return {**data, "report_failed": "eBay's daily limit of reports is reached; import again tomorrow"}
        raise failure(reply, "asking for the report of your active listings")
    result = reply.result or {}
    task_id = result.get("taskId") or str(result.get("location", "")).rstrip("/").rpartition("/")[2]
    if not task_id:
        raise StepFailed("ebay_unexpected_reply", "eBay did not say which report it is making", retryable=False)
    return {**data, "task_id": task_id, "poll_at": time.time() + FIRST_POLL_SECONDS}


def _report(reply: Reply) -> list[JsonDict]:
    """The active listings the report lists: item id, SKU, price, quantity, and whether it has variations."""
    try:
        content = base64.b64decode(str((reply.result or {})["content_base64"]))
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            name = next(n for n in archive.namelist() if n.lower().endswith(".xml"))
            if archive.getinfo(name).file_size > MAX_REPORT_XML:
                raise ValueError("the report is too large")
            root = ElementTree.fromstring(archive.read(name))
    except (KeyError, StopIteration, ValueError, zipfile.BadZipFile, ElementTree.ParseError) as unreadable:
        raise StepFailed(
            "ebay_unexpected_reply", f"eBay's report of active listings cannot be read: {unreadable}", retryable=False
        ) from None
    listings = []
    for details in _children(root, "SKUDetails"):
        item_id = _text(details, "ItemID")
        if not item_id:
            continue
        listings.append(
            {
                "item_id": item_id,
                "sku": _text(details, "SKU"),
                "price": _text(details, "Price"),
                "quantity": _text(details, "Quantity"),
                "variation_skus": [
                    _text(variation, "SKU") or ""
                    for variations in _children(details, "Variations")
                    for variation in _children(variations, "Variation")
                ]
                or ([""] if _children(details, "Variations") else []),
            }
        )
    return listings


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]  # without its namespace


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ElementTree.Element, name: str) -> str | None:
    found = _children(element, name)
    return (found[0].text or "").strip() or None if found else None


def _outside_item(context: JobContext, entry: JsonDict, reply: Reply) -> ImportedItem:
    item_id = str(entry["item_id"])
    if any(error.error_id == 11006 for error in errors_of(reply)):  # a listing with variations after all
        return ImportedItem(item_id, "active", None, None, skipped=VARIATIONS, sku=entry.get("sku"))
    if not reply.success:
        if reply.status == 404:  # ended since the report was made
            return ImportedItem(item_id, "closed", None, None, skipped="ended_meanwhile", sku=entry.get("sku"))
        raise failure(reply, f"reading the listing {item_id}")
    item = parse(_BrowseItem, reply, f"reading the listing {item_id}")
    photos = [image.image_url for image in (item.image, *item.additional_images) if image and image.image_url]
    quantity = _quantity(entry, item)
    attributes: JsonDict = {"outside_inventory_api": True}
    if entry.get("sku"):
        attributes["sku"] = entry["sku"]
    if item.category_id:
        attributes["category_id"] = item.category_id
    return imported(
        external_id=item_id,
        state="active" if quantity > 0 else "sold",
        url=item.item_web_url or listing_url(context, item_id),
        title=item.title,
        description=item.description or item.short_description,
        price=item.price.value if item.price else entry.get("price"),
        currency=item.price.currency if item.price else None,
        quantity=quantity,
        image_urls=photos,
        sku=entry.get("sku"),
        brand=item.brand,
        size=item.size,
        color=item.color,
        condition=item.condition,
        attributes={"ebay": attributes},
    )


def _quantity(entry: JsonDict, item: _BrowseItem) -> int:
    try:
        return max(0, int(entry.get("quantity") or 0))
    except ValueError:
        pass
    estimated = [a.estimated_available_quantity for a in item.estimated_availabilities]
    return next((q for q in estimated if q is not None), 1)


# ------------------------------------------------------------------ migration
def _to_migrate(context: JobContext) -> list[str]:
    data = context.accumulated
    done = set(data.get("migrated", [])) | {entry["item_id"] for entry in data.get("not_migrated", [])}
    waiting = [str(entry["item_id"]) for entry in data.get("outside", []) if str(entry["item_id"]) not in done]
    return waiting[:MIGRATE_BATCH]


def _migrated(context: JobContext, data: JsonDict, reply: Reply) -> JsonDict | Again:
    batch = _to_migrate(context)
    if not reply.success and reply.status != 207:
        raise failure(reply, "migrating your ebay.com listings")
    answers = {answer.listing_id: answer for answer in parse(_Migrations, reply, "migrating listings").responses}
    migrated, refused = list(data.get("migrated", [])), list(data.get("not_migrated", []))
    moved: dict[str, str] = {}
    for item_id in batch:
        answer = answers.get(item_id)
        skus = [i.sku for i in answer.inventory_items if i.sku] if answer is not None else []
        if answer is not None and answer.status_code < 300 and skus:
            migrated.append(item_id)
            moved[item_id] = skus[0]
        else:
            refused.append({"item_id": item_id, "reason": _migration_refusal(reply, item_id)})
    data |= {"migrated": migrated, "not_migrated": refused}
    changes = {item_id: {"outside_inventory_api": False, "sku": sku} for item_id, sku in moved.items()}

    def effects(records: Records) -> JsonDict:
        records.annotate_listings(changes)
        return {}

    return Again(data, note=f"{len(migrated)} migrated", effects=effects)


def _migration_refusal(reply: Reply, item_id: str) -> str:
    for answer in (reply.result or {}).get("responses", []):
        if isinstance(answer, dict) and str(answer.get("listingId")) == item_id:
            errors = answer.get("errors") or []
            messages = [str(e.get("longMessage") or e.get("message")) for e in errors if isinstance(e, dict)]
            return "; ".join(messages)[:300] or "refused by eBay"
    return "eBay did not answer for this listing"
