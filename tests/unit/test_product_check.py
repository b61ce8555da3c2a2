"""One check decides whether a product can be put on sale, whatever the marketplace and the action that lists
it: a product refused on one marketplace is refused on the others with the same code and reason."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crosslist.errors import InvalidRequest
from crosslist.workflows.base import ProductSnapshot
from crosslist.workflows.registry import find_workflow
from tests.support.products import vinted_product

# What each marketplace needs of a product, and a live Vinted listing (a relist needs one).
LISTABLE_EVERYWHERE = vinted_product(
    marketplace_attributes={
        "vinted": {"catalog_id": 1839, "status_id": 2, "package_size_id": 1},
        "ebay": {"category_id": "11483", "condition": "USED_EXCELLENT"},
        "etsy": {"taxonomy_id": 1234, "who_made": "someone_else", "when_made": "2010_2019"},
    },
    listings={"vinted": {"external_id": "4242", "url": None, "status": "active", "image_urls": None}},
)
# Every action that puts an item on sale.
PUTTING_ON_SALE = [("vinted", "publish"), ("vinted", "relist"), ("ebay", "publish"), ("etsy", "publish")]


def prepare(marketplace: str, action: str, product: ProductSnapshot) -> None:
    workflow = find_workflow(marketplace, action)
    assert workflow is not None
    workflow.prepare(product)


@pytest.mark.parametrize(("marketplace", "action"), PUTTING_ON_SALE)
def test_a_product_with_stock_can_be_put_on_sale(marketplace: str, action: str) -> None:
    prepare(marketplace, action, LISTABLE_EVERYWHERE)


@pytest.mark.parametrize(("marketplace", "action"), PUTTING_ON_SALE)
def test_a_sold_out_product_is_refused_everywhere_with_the_same_code_naming_every_problem(
    marketplace: str, action: str
) -> None:
    sold_out_without_photos = replace(LISTABLE_EVERYWHERE, quantity=0, image_urls=[])

    with pytest.raises(InvalidRequest) as refused:
        prepare(marketplace, action, sold_out_without_photos)

    assert refused.value.code == "not_publishable"
    assert "quantity: nothing left to sell" in refused.value.message
    assert "at least one photo" in refused.value.message


def test_a_vinted_update_of_a_live_listing_does_not_need_stock() -> None:
    # It changes a listing already on sale; a sold-out product's listing goes with a delete instead.
    prepare("vinted", "update", replace(LISTABLE_EVERYWHERE, quantity=0))
