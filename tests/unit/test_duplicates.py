"""A second live item of a product on one marketplace: found by title and price, never among items a product
already holds, never in an item that is not live."""

from __future__ import annotations

from crosslist.marketplaces.duplicates import find_duplicates
from crosslist.workflows.base import Duplicate, ListingRef, SeenItem


def listing(product: str, external_id: str, title: str, price: str = "27.90", status: str = "active") -> ListingRef:
    return ListingRef(product, external_id, None, status, title, price)


def test_a_lookalike_is_found_whatever_its_case_spacing_or_unicode_form() -> None:
    mine = listing("p1", "100", "Café  Levi's 501")
    seen = [
        SeenItem("100", "active", "Café  Levi's 501", "27.90"),
        SeenItem("205", "active", "CAFE\u0301 levi's 501 ", "27.9"),  # é decomposed, other case, other spaces
    ]
    assert find_duplicates([mine], seen) == [Duplicate("p1", "100", "205", duplicate_is_newer=True)]


def test_another_price_a_closed_item_or_an_item_of_another_product_is_no_duplicate() -> None:
    mine = listing("p1", "100", "Wool scarf")
    theirs = listing("p2", "300", "Wool scarf")  # two products of the same name: each holds its own item
    seen = [
        SeenItem("100", "active", "Wool scarf", "27.90"),
        SeenItem("300", "active", "Wool scarf", "27.90"),
        SeenItem("201", "active", "Wool scarf", "35.00"),
        SeenItem("202", "sold", "Wool scarf", "27.90"),
        SeenItem("203", "closed", "Wool scarf", "27.90"),
    ]
    assert find_duplicates([mine, theirs], seen) == []


def test_a_list_without_prices_matches_on_the_title_and_age_comes_from_the_site_when_it_says() -> None:
    mine = listing("p1", "900", "Silk tie")
    seen = [
        SeenItem("900", "active", "Silk tie", None, created=2_000),
        SeenItem("50", "hidden", "silk tie", None, 1_000),
    ]
    assert find_duplicates([mine], seen) == [Duplicate("p1", "900", "50", duplicate_is_newer=False)]


def test_a_listing_crosslist_no_longer_has_live_has_no_duplicates() -> None:
    mine = listing("p1", "100", "Silk tie", status="deleted")
    assert find_duplicates([mine], [SeenItem("101", "active", "Silk tie", "27.90")]) == []
