"""Import an Etsy shop: its listings in every state, a page of 100 per step with their photos and inventory
(`includes=Images,Inventory`: price, quantity and SKU come with the page, no call per listing).

A listing with variations (several inventory products) is skipped with `variations_not_supported`: crosslist's
products have one price and one quantity, and flattening the variations would sell what is not there.
Pages overlap by a few listings: a listing that leaves a state while the import reads it (sold meanwhile) shifts
the ones after it back by one, and the overlap reads them again rather than missing them (recorded once).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.etsy.common import Money, failure, listing_state, parse, shop
from crosslist.marketplaces.importing import (
    completed,
    import_input,
    imported,
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
    Reply,
    Step,
    StepAction,
)

PAGE_SIZE = 100  # Etsy's maximum
OVERLAP = 5
STATES = ("active", "inactive", "sold_out", "draft", "expired")
WHO_MADE = ("i_did", "someone_else", "collective")


class _Price(Money):
    currency_code: str | None = None


class _Offering(BaseModel):
    price: _Price | None = None
    quantity: int = 0
    is_enabled: bool = True


class _Product(BaseModel):
    sku: str | None = Field(default=None, max_length=100)
    property_values: list[JsonDict] = Field(default_factory=list)
    offerings: list[_Offering] = Field(default_factory=list)


class _Inventory(BaseModel):
    products: list[_Product] = Field(default_factory=list)


class _Image(BaseModel):
    rank: int = 1
    url_fullxfull: str | None = Field(default=None, max_length=1000)
    url_570xN: str | None = Field(default=None, max_length=1000)  # noqa: N815 (Etsy's name)


class _Listing(BaseModel):
    listing_id: int
    state: str = ""
    title: str = Field(default="", max_length=1000)
    description: str = Field(default="", max_length=100_000)
    price: _Price | None = None
    url: str | None = Field(default=None, max_length=500)
    quantity: int = 0
    has_variations: bool = False
    skus: list[str] = Field(default_factory=list)
    taxonomy_id: int | None = None
    who_made: str | None = None
    when_made: str | None = None
    tags: list[str] = Field(default_factory=list)
    images: list[_Image] = Field(default_factory=list)
    inventory: _Inventory | None = None


class _Page(BaseModel):
    count: int = 0
    results: list[_Listing] = Field(default_factory=list, max_length=PAGE_SIZE)


class EtsyImport(ApiWorkflow):
    marketplace: Marketplace = "etsy"
    action = "import"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return import_input(params)

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step(f"import_{state}", f"Importing your Etsy listings ({state})", kind=state) for state in STATES]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        if (hashing := photos_to_hash(context)) is not None:  # a page read waits for its photos
            return hashing
        if context.accumulated.get(f"done_{step.kind}"):
            return Done(context.accumulated)
        offset = int(context.accumulated.get(f"offset_{step.kind}", 0))
        path = f"{shop(context)}/listings?state={step.kind}&limit={PAGE_SIZE}&offset={offset}&includes=Images,Inventory"
        return HttpCall("GET", path, "read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        if (hashed := photos_hashed(context, reply)) is not None:
            return hashed
        if not reply.success:
            raise failure(reply, f"reading the shop's {step.kind} listings")
        page = parse(_Page, reply, f"reading the shop's {step.kind} listings")
        offset = int(context.accumulated.get(f"offset_{step.kind}", 0))
        items = [_item(listing, step.kind) for listing in page.results]
        last = not page.results or offset + len(page.results) >= page.count
        data = {**context.accumulated, f"offset_{step.kind}": offset + PAGE_SIZE - OVERLAP}
        if last:
            data[f"done_{step.kind}"] = True
        note = f"{min(offset + len(page.results), page.count)} of {page.count} {step.kind} listings read"
        return recorded(context, data, items, note)

    def complete(self, context: JobContext) -> Completion:
        return completed(context)


def _item(listing: _Listing, read_as: str) -> ImportedItem:
    state = listing_state(listing.state or read_as)
    external_id = str(listing.listing_id)
    products = listing.inventory.products if listing.inventory is not None else []
    if listing.has_variations or len(products) > 1:
        return ImportedItem(external_id, state, listing.url, None, skipped="variations_not_supported")
    offerings = [o for o in (products[0].offerings if products else []) if o.is_enabled]
    price = offerings[0].price if offerings and offerings[0].price is not None else listing.price
    quantity = sum(o.quantity for o in offerings) if offerings else listing.quantity
    if state == "sold":
        quantity = 0
    sku = (products[0].sku if products else None) or (listing.skus[0] if listing.skus else None)
    photos = [image.url_fullxfull or image.url_570xN or "" for image in sorted(listing.images, key=lambda i: i.rank)]
    return imported(
        external_id=external_id,
        state=state,
        url=listing.url,
        title=listing.title,
        description=listing.description,
        price=Decimal(price.text()) if price is not None else None,
        currency=price.currency_code if price is not None else None,
        quantity=quantity,
        image_urls=[photo for photo in photos if photo],
        sku=sku or None,
        attributes=_attributes(listing),
    )


def _attributes(listing: _Listing) -> JsonDict:
    """What Etsy needs to publish the product again (a relist, or the other marketplaces' shape from it)."""
    if listing.taxonomy_id is None or listing.who_made not in WHO_MADE or not listing.when_made:
        return {}
    etsy: JsonDict = {"taxonomy_id": listing.taxonomy_id, "who_made": listing.who_made, "when_made": listing.when_made}
    if listing.tags:
        etsy["tags"] = listing.tags[:13]
    return {"etsy": etsy}
