"""Import a Vinted wardrobe: its pages of 96 items, paced as reads like a sync's, each page recorded with its
checkpoint. The wardrobe shows each item's title, price, photos, brand, size and condition, but not its
description: reading every item for it would cost a paced call per item (minutes for a wardrobe), so an imported
product's description starts empty (`no_description` in its warnings) and the user fills it in.

Newest first: an item listed while the import runs pushes the others down a page (read twice, recorded once),
rather than being missed.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from crosslist.marketplaces import Marketplace
from crosslist.marketplaces.importing import (
    completed,
    import_input,
    imported,
    photos_hashed,
    photos_to_hash,
    recorded,
)
from crosslist.marketplaces.vinted.paging import PagedRead, Pagination, page_number
from crosslist.marketplaces.vinted.publish import WARDROBE_PAGE_SIZE, account_in_path
from crosslist.marketplaces.vinted.replies import check, parse
from crosslist.marketplaces.vinted.sync import WardrobeItem
from crosslist.realtime.messages import PluginCommand
from crosslist.workflows.base import (
    Again,
    Completion,
    Done,
    ImportedItem,
    JobContext,
    JsonDict,
    PluginCall,
    ProductSnapshot,
    Reply,
    Step,
    StepAction,
)

PAGE_PATH = "/api/v2/wardrobe/{account_id}/items?page={page}&per_page={per_page}&order=newest_first"


class _Photo(BaseModel):
    url: str | None = Field(default=None, max_length=1000)
    full_size_url: str | None = Field(default=None, max_length=1000)


class _Item(WardrobeItem):
    photos: list[_Photo] = Field(default_factory=list)
    brand_title: str | None = Field(default=None, max_length=200)
    size_title: str | None = Field(default=None, max_length=200)
    status: str | None = Field(default=None, max_length=200)  # the condition, as Vinted names it
    description: str | None = Field(default=None, max_length=100_000)


class _Page(BaseModel):
    items: list[_Item] = Field(max_length=WARDROBE_PAGE_SIZE)
    pagination: Pagination


class VintedImport(PagedRead):
    marketplace: Marketplace = "vinted"
    action = "import"

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return import_input(params)

    def steps(self, job_input: JsonDict) -> list[Step]:
        return [Step("import_wardrobe", "Importing your Vinted wardrobe", kind="import_wardrobe")]

    def plan(self, step: Step, context: JobContext) -> StepAction:
        if (hashing := photos_to_hash(context)) is not None:  # a page read waits for its photos
            return hashing
        if context.accumulated.get("done"):
            return Done(context.accumulated)
        return PluginCall(PluginCommand(method="GET", path=self._path(context)), kind="read", repeatable=True)

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        if (hashed := photos_hashed(context, reply)) is not None:
            return hashed
        check(reply)
        path = self._path(context)
        page = parse(_Page, reply, path)
        number, total = page_number(context), page.pagination.total_pages
        data = {**context.accumulated, "next_page": number + 1, "pages": total}
        if number >= total:
            data["done"] = True
        return recorded(context, data, [_item(item) for item in page.items], f"page {number} of {total} read")

    def complete(self, context: JobContext) -> Completion:
        return completed(context, pages=context.accumulated.get("pages", 0))

    @staticmethod
    def _path(context: JobContext) -> str:
        account = account_in_path(context, code="cannot_import", unable="Your Vinted wardrobe cannot be read")
        return PAGE_PATH.format(account_id=account, page=page_number(context), per_page=WARDROBE_PAGE_SIZE)


def _item(item: _Item) -> ImportedItem:
    state = item.state
    price = item.price
    photos = [photo.full_size_url or photo.url or "" for photo in item.photos]
    found = imported(
        external_id=str(item.id),
        state=state,
        url=item.url,
        title=item.title,
        description=item.description,
        price=item.amount,
        currency=price.currency_code if price is not None and not isinstance(price, str) else None,
        quantity=0 if state == "sold" else 1,
        image_urls=[photo for photo in photos if photo],
        brand=item.brand_title,
        size=item.size_title,
        condition=item.status,
    )
    if found.product is not None and not item.description:
        return ImportedItem(
            found.external_id, found.state, found.url, found.product, warnings=(*found.warnings, "no_description")
        )
    return found
