"""Seeded shops (devstack.shops) in the fake eBay, Etsy and Vinted, as an import reads them: the generator is
deterministic and holds its counts and truth, its photos are the same pictures under each marketplace's URLs (or
other pictures: photographed again), some titles are reworded, and the fakes answer the reads a whole-shop import
makes (Inventory API pages, the Sell Feed report, the Browse API, listing migration, Etsy's includes and states,
Vinted's wardrobe), and the devstack's `crosslist dev seed-shops` seeds all three."""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from crosslist.imports.matching import Candidate, Listing, title_similarity
from crosslist.imports.matching import score as match_score
from crosslist.imports.photos import SAME_PHOTO_BITS, difference_hash
from devstack import cli
from devstack.fake_ebay import TOKEN_PATH, FakeEbay
from devstack.fake_etsy import FakeEtsy
from devstack.images import photo_at
from devstack.plugin import VintedSimulator
from devstack.plugin_control import control_server
from devstack.shops import (
    MARKETPLACES,
    REHOSTED_WIDTH,
    REWORDED_SIMILARITY,
    EbayListing,
    EtsyListing,
    Seeded,
    Shops,
    VintedItem,
    generate_shops,
    pairs,
    score,
    seed_all,
    sized_shops,
)

INVENTORY = "/sell/inventory/v1"
FEED = "/sell/feed/v1"
BROWSE = "/buy/browse/v1/item/get_item_by_legacy_id"
REPORT = {"feedType": "LMS_ACTIVE_INVENTORY_REPORT", "schemaVersion": "1.0"}
NS = {"e": "urn:ebay:apis:eBLBaseComponents"}
WARDROBE = "/api/v2/wardrobe/devstack-1/items"

FULL = generate_shops(7)
SMALL = sized_shops(7, small=True)


@pytest.fixture
def vinted() -> VintedSimulator:
    return VintedSimulator(latency_ms=0)


@pytest.fixture
def seeded(fake_ebay: FakeEbay, fake_etsy: FakeEtsy, vinted: VintedSimulator) -> Seeded:
    return seed_all(FULL, ebay=fake_ebay, etsy=fake_etsy, vinted=vinted, account="dev")


@pytest.fixture
def seller(fake_ebay: FakeEbay) -> Iterator[httpx.Client]:
    token = fake_ebay.issue_tokens("dev")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Language": "en-GB"}
    with httpx.Client(base_url=fake_ebay.base_url, headers=headers) as client:
        yield client


@pytest.fixture
def shop(fake_etsy: FakeEtsy) -> Iterator[httpx.Client]:
    token = fake_etsy.issue_tokens("dev")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": f"{fake_etsy.keystring}:{fake_etsy.shared_secret}"}
    with httpx.Client(base_url=fake_etsy.base_url + "/v3/application", headers=headers) as client:
        yield client


def by_key(shops: Shops) -> dict[str, Any]:
    return {listing.key: listing for marketplace in MARKETPLACES for listing in getattr(shops, marketplace)}


def ebay_listing(seeded: Seeded, test: Any) -> tuple[EbayListing, str]:
    """The first seeded eBay listing `test` holds for, and its listingId."""
    listing = next(listing for listing in FULL.ebay if test(listing))
    return listing, seeded.ids["ebay"][listing.key]


def words(title: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", title.lower())


def picture(url: str) -> int:
    """The picture a photo URL shows (`.../12.png`, `.../12.jpg?w=96`)."""
    return int(urlsplit(url).path.rsplit("/", 1)[1].split(".")[0])


@cache
def photo_hash(url: str) -> int:
    """The difference hash of what the devstack's image route serves at `url`: the original PNG, or a marketplace's
    JPEG copy."""
    served = photo_at(url)
    assert served is not None, url
    return difference_hash(served)


def bits_apart(one: str, other: str) -> int:
    return (photo_hash(one) ^ photo_hash(other)).bit_count()


def match_score_of(one: Any, other: Any) -> float:
    """How sure crosslist's matcher is, from the titles and prices alone, that the two listings are one item."""
    return match_score(Listing(one.title, one.price), Candidate(other.title, other.price, product_id="other"))


# the generator -------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_shops_and_another_seed_others() -> None:
    assert generate_shops(7) == FULL
    assert generate_shops(8).ebay != FULL.ebay
    assert sized_shops(7, small=True) == SMALL


def test_the_shops_have_the_asked_sizes_and_about_120_items_on_two_marketplaces_and_40_on_three() -> None:
    counts = FULL.counts()
    assert {name: counts[name] for name in ("ebay", "ebay_outside", "etsy", "vinted")} == {
        "ebay": 500,
        "ebay_outside": 100,
        "etsy": 200,
        "vinted": 300,
    }
    assert (counts["on_two"], counts["on_three"]) == (120, 40)
    assert counts["distractors"] >= 30
    small = SMALL.counts()
    assert (small["ebay"], small["ebay_outside"], small["etsy"], small["vinted"]) == (50, 10, 20, 30)
    assert small["on_two"] > 0
    assert small["on_three"] > 0
    assert small["distractors"] > 0
    assert generate_shops(7, ebay=500, etsy=200, vinted=30).counts()["on_three"] == 4  # scaled to the smallest
    with pytest.raises(ValueError, match="at most"):
        generate_shops(7, ebay=10, ebay_outside=20)


def test_listings_are_second_hand_clothes_in_eur_mostly_one_of_each_with_what_crosslist_cannot_represent() -> None:
    listings: list[EbayListing | EtsyListing | VintedItem] = [*FULL.ebay, *FULL.etsy, *FULL.vinted]
    assert all(Decimal(5) <= Decimal(listing.price) <= Decimal(300) for listing in listings)
    assert {listing.currency for listing in listings} == {"EUR"}
    assert len({listing.key for listing in listings}) == len(listings)
    sold_by_quantity: list[EbayListing | EtsyListing] = [*FULL.ebay, *FULL.etsy]
    quantities = [listing.quantity for listing in sold_by_quantity if not listing.variations]
    assert quantities.count(1) > 0.8 * len(quantities)
    assert {2, 3, 4, 5} & set(quantities)
    groups = [listing for listing in FULL.ebay if listing.group]
    assert len(groups) == 10
    assert all(listing.inventory_api and len(listing.variations) >= 2 for listing in groups)
    outside_variations = [listing for listing in FULL.ebay if listing.variations and not listing.inventory_api]
    assert outside_variations
    assert any(v.sku is None for listing in outside_variations for v in listing.variations)
    assert len([listing for listing in FULL.etsy if listing.variations]) == 8
    assert {listing.state for listing in FULL.etsy} == {"active", "inactive", "sold_out", "draft", "expired"}
    assert [listing.state for listing in FULL.etsy].count("active") > len(FULL.etsy) / 2
    assert {item.state for item in FULL.vinted} == {"active", "sold", "hidden", "reserved", "draft"}
    assert sum(not listing.photos for listing in listings) >= 2
    assert any(listing.sku is None for listing in FULL.ebay if not listing.inventory_api and not listing.variations)
    assert all(listing.sku for listing in FULL.ebay if listing.inventory_api and not listing.variations)


def test_the_truth_holds_items_matched_by_sku_and_items_matched_by_a_close_title_at_the_same_price() -> None:
    listings = by_key(FULL)
    same_sku = close_titles = 0
    for group in FULL.truth:
        members = [listings[key] for key in group.values()]
        assert len({member.item for member in members}) == 1  # one physical item
        assert 2 <= len(group) <= 3
        assert set(group) <= set(MARKETPLACES)
        assert not any(getattr(member, "variations", ()) for member in members)
        prices = [Decimal(member.price) for member in members]
        assert max(prices) - min(prices) <= min(prices) / 100 * 2  # each within 1 % of the item's price
        # Each marketplace shows the photos under its own URLs (the pictures behind them: the test below).
        assert len({member.photos for member in members}) == len(members)
        if "ebay" in group and "etsy" in group:
            ebay_sku, etsy_sku = listings[group["ebay"]].sku, listings[group["etsy"]].sku
            if etsy_sku:
                assert ebay_sku == etsy_sku
                same_sku += 1
            else:
                close_titles += 1
    assert same_sku >= 20
    assert close_titles >= 20
    titles = [[listings[key].title for key in group.values()] for group in FULL.truth]
    assert sum(len(set(group)) > 1 for group in titles) > len(titles) / 2  # most titles differ between marketplaces
    flattened = {key for group in FULL.truth for key in group.values()}
    assert len(flattened) == sum(len(group) for group in FULL.truth)  # a listing is in one group at most


def test_distractors_are_another_size_or_colour_at_the_same_price_and_never_in_the_truth() -> None:
    listings = by_key(FULL)
    true_pairs = pairs(FULL.truth)
    assert FULL.distractors
    for pair in FULL.distractors:
        assert frozenset(pair.items()) not in true_pairs
        one, other = (listings[key] for key in pair.values())
        assert one.item != other.item
        assert one.brand == other.brand
        assert (one.colour, one.size) != (other.colour, other.size)
        assert one.colour == other.colour or one.size == other.size  # one token apart
    exact = [pair for pair in FULL.distractors if len({listings[key].price for key in pair.values()}) == 1]
    assert len(exact) > len(FULL.distractors) / 2


def test_an_items_listings_show_the_same_pictures_under_each_marketplaces_urls_unless_photographed_again() -> None:
    listings = by_key(FULL)
    rephotographed = pairs(FULL.notes["rephotographed"])
    assert rephotographed <= pairs(FULL.truth)
    assert 0.1 < len(rephotographed) / len(pairs(FULL.truth)) < 0.3  # ~20 % of the listings after an item's first
    for pair in pairs(FULL.truth):
        (place, key), (other_place, other_key) = sorted(pair)
        one, other = listings[key], listings[other_key]
        for marketplace, listing in ((place, one), (other_place, other)):
            rehosted = f".jpg?w={REHOSTED_WIDTH[marketplace]}"
            assert all(url.endswith((".png", rehosted)) for url in listing.photos)  # the upload, or this copy of it
        assert not set(one.photos) & set(other.photos)
        if pair in rephotographed:
            assert not {picture(url) for url in one.photos} & {picture(url) for url in other.photos}
            assert bits_apart(one.photos[0], other.photos[0]) > SAME_PHOTO_BITS
        else:
            assert [picture(url) for url in one.photos] == [picture(url) for url in other.photos]
            assert bits_apart(one.photos[0], other.photos[0]) <= SAME_PHOTO_BITS


def test_about_15_percent_of_close_titles_are_reworded_keeping_the_brand_size_colour_and_price() -> None:
    listings = by_key(FULL)
    reworded = pairs(FULL.notes["reworded"])
    close_titles = {pair for pair in pairs(FULL.truth) if len({listings[key].title for _, key in pair}) > 1}
    assert reworded <= close_titles
    assert 0.1 <= len(reworded) / len(close_titles) <= 0.25
    lowest, below = REWORDED_SIMILARITY
    for pair in reworded:
        one, other = (listings[key] for _, key in sorted(pair))
        similarity = title_similarity(one.title, other.title)
        assert lowest <= similarity < below, (one.title, other.title)
        assert one.brand == other.brand
        # Neither the size nor the colour rules it out, and the price is the same: the titles alone score this.
        assert match_score_of(one, other) == similarity
    assert len(pairs(SMALL.notes["reworded"])) > 0


def test_a_third_of_the_distractors_show_the_originals_first_picture_which_the_titles_tell_apart() -> None:
    listings = by_key(FULL)
    stock_photo = pairs(FULL.notes["stock_photo_distractors"])
    distractors = pairs(FULL.distractors)
    assert stock_photo <= distractors
    assert 0.2 < len(stock_photo) / len(distractors) < 0.45
    for pair in distractors:
        one, other = (listings[key] for _, key in sorted(pair))
        assert match_score_of(one, other) == 0.0  # the titles name another size or colour
        if pair in stock_photo:
            assert one.photos[0] != other.photos[0]
            assert picture(one.photos[0]) == picture(other.photos[0])
            assert bits_apart(one.photos[0], other.photos[0]) <= SAME_PHOTO_BITS
        elif one.photos and other.photos:
            assert bits_apart(one.photos[0], other.photos[0]) > SAME_PHOTO_BITS


def test_scoring_counts_pairs() -> None:
    truth = [{"ebay": "1", "etsy": "2", "vinted": "3"}, {"ebay": "4", "vinted": "5"}]
    assert score(truth, truth).precision == score(truth, truth).recall == 1.0
    found = score(truth, [{"ebay": "1", "etsy": "2"}, {"ebay": "4", "vinted": "6"}])
    assert (found.true_pairs, found.found_pairs, found.right_pairs) == (4, 2, 1)
    assert (found.precision, found.recall) == (0.5, 0.25)


# seeding -------------------------------------------------------------------------------------------------


def test_every_truth_id_exists_in_its_fake_and_seeding_again_adds_nothing(
    seeded: Seeded, fake_ebay: FakeEbay, fake_etsy: FakeEtsy, vinted: VintedSimulator
) -> None:
    live = {listing["listingId"] for listing in fake_ebay.listings("dev")}
    outside = {listing["listingId"] for listing in fake_ebay.outside_listings("dev")}
    existing = {
        "ebay": live | outside,
        "etsy": {str(listing["listing_id"]) for listing in fake_etsy.listings("dev")},
        "vinted": {str(item_id) for item_id in vinted.items},
    }
    assert {name: len(ids) for name, ids in existing.items()} == {"ebay": 500, "etsy": 200, "vinted": 300}
    assert len(outside) == 100
    assert len(seeded.truth) == 160
    noted = [pair for found in seeded.notes.values() for pair in found]
    assert len(noted) == sum(len(found) for found in FULL.notes.values())
    for group in [*seeded.truth, *seeded.distractors, *noted]:
        assert all(listing_id in existing[marketplace] for marketplace, listing_id in group.items())
    assert not pairs(seeded.distractors) & pairs(seeded.truth)

    again = seed_all(FULL, ebay=fake_ebay, etsy=fake_etsy, vinted=vinted, account="dev")

    assert again == seeded
    assert (len(fake_ebay.listings("dev")), len(fake_etsy.listings("dev")), len(vinted.items)) == (400, 200, 300)


def test_a_seeded_sku_already_in_the_inventory_is_refused_before_anything_is_seeded(fake_ebay: FakeEbay) -> None:
    first = seed_all(SMALL, ebay=fake_ebay, account="dev").ids["ebay"]
    clash = sized_shops(8, small=True)  # other keys, some of the same SKUs

    with pytest.raises(ValueError, match="SKU"):
        fake_ebay.seed_shop("dev", clash.ebay)

    assert len(fake_ebay.listings("dev")) + len(fake_ebay.outside_listings("dev")) == len(first)
    assert fake_ebay.seed_shop("other", clash.ebay)  # another seller's inventory is its own


# eBay: Inventory API ----------------------------------------------------------------------------------


def test_inventory_api_listings_page_as_inventory_items_each_with_a_published_offer(
    seeded: Seeded, seller: httpx.Client
) -> None:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = seller.get(f"{INVENTORY}/inventory_item", params={"limit": 100, "offset": offset}).json()
        items += page["inventoryItems"]
        offset += 100
        if offset >= page["total"]:
            break
    singles = [listing for listing in FULL.ebay if listing.inventory_api and not listing.variations]
    variations = sum(len(listing.variations) for listing in FULL.ebay if listing.inventory_api)
    assert page["total"] == len(items) == len(singles) + variations
    listing = singles[0]
    [item] = [item for item in items if item["sku"] == listing.sku]
    assert item["product"]["title"] == listing.title
    assert item["product"]["imageUrls"] == list(listing.photos)
    assert item["product"]["aspects"]["Brand"] == [listing.brand]
    assert item["availability"]["shipToLocationAvailability"]["quantity"] == listing.quantity
    assert item["condition"] == listing.condition
    assert "groupIds" not in item

    [offer] = seller.get(f"{INVENTORY}/offer", params={"sku": listing.sku}).json()["offers"]
    assert offer["status"] == "PUBLISHED"
    assert offer["listing"]["listingId"] == seeded.ids["ebay"][listing.key]
    assert offer["listing"]["listingStatus"] == "ACTIVE"
    assert offer["pricingSummary"]["price"] == {"value": listing.price, "currency": "EUR"}
    assert offer["availableQuantity"] == listing.quantity


def test_an_item_group_is_inventory_items_with_group_ids_and_offers_on_one_listing(
    seeded: Seeded, seller: httpx.Client, fake_ebay: FakeEbay
) -> None:
    group, listing_id = ebay_listing(seeded, lambda listing: listing.group)
    members = [seller.get(f"{INVENTORY}/inventory_item/{v.sku}").json() for v in group.variations]
    assert all(member["groupIds"] == [group.group] for member in members)
    offers = [seller.get(f"{INVENTORY}/offer", params={"sku": v.sku}).json()["offers"][0] for v in group.variations]
    assert {offer["listing"]["listingId"] for offer in offers} == {listing_id}
    found = seller.get(f"{INVENTORY}/inventory_item_group/{group.group}").json()
    assert found["variantSKUs"] == [v.sku for v in group.variations]
    assert found["variesBy"]["specifications"] == [{"name": "Size", "values": [v.size for v in group.variations]}]

    order_id = fake_ebay.sell(listing_id)

    [line] = next(order for order in fake_ebay.orders("dev") if order["orderId"] == order_id)["lineItems"]
    assert (line["legacyItemId"], line["sku"]) == (listing_id, group.variations[0].sku)


def test_listings_made_on_ebay_com_are_invisible_to_inventory_reads_but_sell_like_the_others(
    seeded: Seeded, seller: httpx.Client, fake_ebay: FakeEbay
) -> None:
    listing, listing_id = ebay_listing(
        seeded, lambda one: not one.inventory_api and one.sku is None and not one.variations
    )
    with_sku, _ = ebay_listing(seeded, lambda one: not one.inventory_api and one.sku and not one.variations)
    assert seller.get(f"{INVENTORY}/offer", params={"sku": with_sku.sku}).status_code == 404
    assert seller.get(f"{INVENTORY}/inventory_item/{with_sku.sku}").status_code == 404

    sold = seller.post("/__fake/sell", json={"listing_id": listing_id, "buyer": "jane"})

    assert sold.status_code == 200
    order = seller.get(f"/sell/fulfillment/v1/order/{sold.json()['order_id']}").json()
    [line] = order["lineItems"]
    assert line["legacyItemId"] == listing_id
    assert "sku" not in line
    assert line["title"] == listing.title
    assert order["pricingSummary"]["total"] == {"value": listing.price, "currency": "EUR"}
    assert sold.json()["listing_status"] == ("OUT_OF_STOCK" if listing.quantity == 1 else "ACTIVE")


# eBay: Sell Feed API ----------------------------------------------------------------------------------


def report_of(seller: httpx.Client) -> ElementTree.Element:
    created = seller.post(f"{FEED}/inventory_task", json=REPORT)
    assert (created.status_code, created.content) == (202, b"")
    task_url = created.headers["Location"]
    task_id = task_url.rsplit("/", 1)[1]
    assert task_url.endswith(f"{FEED}/inventory_task/{task_id}")
    statuses = [seller.get(task_url).json()["status"] for _ in range(3)]
    assert statuses == ["QUEUED", "IN_PROCESS", "COMPLETED"]
    download = seller.get(f"{FEED}/task/{task_id}/download_result_file")
    assert (download.status_code, download.headers["Content-Type"]) == (200, "application/zip")
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        [name] = archive.namelist()
        return ElementTree.fromstring(archive.read(name))


def test_the_active_inventory_report_lists_every_active_listing_made_with_the_inventory_api_or_not(
    seeded: Seeded, seller: httpx.Client
) -> None:
    report = report_of(seller)

    details = report.findall("e:SKUDetails", NS)
    listed = {detail.findtext("e:ItemID", namespaces=NS): detail for detail in details}
    assert set(listed) == set(seeded.ids["ebay"].values())
    single, single_id = ebay_listing(seeded, lambda one: not one.inventory_api and one.sku and not one.variations)
    detail = listed[single_id]
    assert detail.findtext("e:SKU", namespaces=NS) == single.sku
    assert detail.findtext("e:Quantity", namespaces=NS) == str(single.quantity)
    price = detail.find("e:Price", NS)
    assert price is not None
    assert (price.text, price.get("currencyID")) == (single.price, "EUR")
    _, no_sku_id = ebay_listing(seeded, lambda one: one.sku is None and not one.variations)
    assert listed[no_sku_id].find("e:SKU", NS) is None
    group, group_id = ebay_listing(seeded, lambda one: one.group)
    variations = listed[group_id].findall("e:Variations/e:Variation", NS)
    assert [v.findtext("e:SKU", namespaces=NS) for v in variations] == [v.sku for v in group.variations]
    assert [v.findtext("e:Quantity", namespaces=NS) for v in variations] == [str(v.quantity) for v in group.variations]
    assert listed[group_id].find("e:Price", NS) is None  # a listing with variations is priced per variation


def test_a_task_is_the_sellers_own_its_file_waits_for_completion_and_25_a_day_at_most(
    seeded: Seeded, seller: httpx.Client, fake_ebay: FakeEbay
) -> None:
    task_url = seller.post(f"{FEED}/inventory_task", json=REPORT).headers["Location"]
    task_id = task_url.rsplit("/", 1)[1]
    early = seller.get(f"{FEED}/task/{task_id}/download_result_file")
    assert early.status_code == 400
    assert early.json()["errors"][0]["domain"] == "API_FEED"
    other = fake_ebay.issue_tokens("someone-else")["access_token"]
    assert seller.get(task_url, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    assert seller.post(f"{FEED}/inventory_task", json={**REPORT, "feedType": "LMS_ORDER_REPORT"}).status_code == 400

    answers = [seller.post(f"{FEED}/inventory_task", json=REPORT).status_code for _ in range(25)]

    assert answers == [202] * 24 + [429]
    assert seller.post(f"{FEED}/inventory_task", json=REPORT).json()["errors"][0]["errorId"] == 160022


# eBay: Browse API ---------------------------------------------------------------------------------------


def test_browse_shows_any_live_listing_by_its_legacy_id_with_an_application_token(
    seeded: Seeded, fake_ebay: FakeEbay, seller: httpx.Client
) -> None:
    auth = httpx.BasicAuth(fake_ebay.client_id, fake_ebay.client_secret)
    app = seller.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=auth).json()["access_token"]
    browser = {"Authorization": f"Bearer {app}"}
    listing, listing_id = ebay_listing(seeded, lambda one: not one.inventory_api and len(one.photos) > 1)

    item = seller.get(BROWSE, params={"legacy_item_id": listing_id}, headers=browser).json()

    assert (item["itemId"], item["legacyItemId"]) == (f"v1|{listing_id}|0", listing_id)
    assert (item["title"], item["description"]) == (listing.title, listing.description)
    assert item["price"] == {"value": listing.price, "currency": "EUR"}
    assert item["image"] == {"imageUrl": listing.photos[0]}
    assert item["additionalImages"] == [{"imageUrl": url} for url in listing.photos[1:]]
    assert (item["brand"], item["color"], item["size"]) == (listing.brand, listing.colour, listing.size)
    assert item["categoryId"] == listing.category_id
    assert item["condition"]
    assert item["estimatedAvailabilities"][0]["estimatedAvailableQuantity"] == listing.quantity
    assert item["itemWebUrl"].endswith(listing_id)
    inventory, inventory_id = ebay_listing(seeded, lambda one: one.inventory_api and not one.variations)
    assert seller.get(BROWSE, params={"legacy_item_id": inventory_id}).json()["title"] == inventory.title


def test_browse_refuses_item_groups_and_does_not_find_ended_or_unknown_listings(
    seeded: Seeded, seller: httpx.Client
) -> None:
    for test in (lambda one: one.group, lambda one: one.variations and not one.inventory_api):
        _, group_id = ebay_listing(seeded, test)
        refused = seller.get(BROWSE, params={"legacy_item_id": group_id})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["errorId"] == 11006
    listing, listing_id = ebay_listing(seeded, lambda one: one.inventory_api and not one.variations)
    offer_id = seller.get(f"{INVENTORY}/offer", params={"sku": listing.sku}).json()["offers"][0]["offerId"]
    assert seller.post(f"{INVENTORY}/offer/{offer_id}/withdraw").status_code == 200
    for unknown in (listing_id, "123"):
        missing = seller.get(BROWSE, params={"legacy_item_id": unknown})
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["errorId"] == 11001


# eBay: listing migration --------------------------------------------------------------------------------


def test_migration_takes_five_listings_at_most_needs_skus_and_is_one_way(seeded: Seeded, seller: httpx.Client) -> None:
    with_sku, migrated_id = ebay_listing(seeded, lambda one: not one.inventory_api and one.sku and not one.variations)
    _, without_sku_id = ebay_listing(seeded, lambda one: not one.inventory_api and one.sku is None)
    many = [{"listingId": migrated_id}] * 6
    assert seller.post(f"{INVENTORY}/bulk_migrate_listing", json={"requests": many}).status_code == 400

    answer = seller.post(
        f"{INVENTORY}/bulk_migrate_listing",
        json={"requests": [{"listingId": migrated_id}, {"listingId": without_sku_id}]},
    )

    assert answer.status_code == 200
    done, refused = answer.json()["responses"]
    assert (done["statusCode"], done["listingId"], done["errors"]) == (200, migrated_id, [])
    [migrated] = done["inventoryItems"]
    assert migrated["sku"] == with_sku.sku
    assert refused["statusCode"] == 400
    assert "SKU" in refused["errors"][0]["message"]
    [offer] = seller.get(f"{INVENTORY}/offer", params={"sku": with_sku.sku}).json()["offers"]
    assert (offer["offerId"], offer["listing"]["listingId"]) == (migrated["offerId"], migrated_id)
    assert seller.get(f"{INVENTORY}/inventory_item/{with_sku.sku}").json()["product"]["title"] == with_sku.title
    again = seller.post(f"{INVENTORY}/bulk_migrate_listing", json={"requests": [{"listingId": migrated_id}]})
    assert again.json()["responses"][0]["statusCode"] == 400
    assert seller.get(BROWSE, params={"legacy_item_id": migrated_id}).json()["title"] == with_sku.title


def test_a_listing_with_variations_migrates_into_an_item_group(seeded: Seeded, seller: httpx.Client) -> None:
    listing, listing_id = ebay_listing(
        seeded, lambda one: not one.inventory_api and one.variations and all(v.sku for v in one.variations)
    )

    [done] = seller.post(f"{INVENTORY}/bulk_migrate_listing", json={"requests": [{"listingId": listing_id}]}).json()[
        "responses"
    ]

    assert done["statusCode"] == 200
    assert [item["sku"] for item in done["inventoryItems"]] == [v.sku for v in listing.variations]
    group = seller.get(f"{INVENTORY}/inventory_item_group/{done['inventoryItemGroupKey']}").json()
    assert group["variantSKUs"] == [v.sku for v in listing.variations]


def test_the_fakes_states_bring_the_seeded_shops_back(
    seeded: Seeded, fake_ebay: FakeEbay, seller: httpx.Client, fake_etsy: FakeEtsy, vinted: VintedSimulator
) -> None:
    task_url = seller.post(f"{FEED}/inventory_task", json=REPORT).headers["Location"]
    with FakeEbay() as ebay, FakeEtsy() as etsy:  # the devstack restarted
        ebay.restore(json.loads(json.dumps(fake_ebay.state())))
        etsy.restore(json.loads(json.dumps(fake_etsy.state())))
        simulator = VintedSimulator(latency_ms=0)
        simulator.restore(json.loads(json.dumps(vinted.state())))

        assert seed_all(FULL, ebay=ebay, etsy=etsy, vinted=simulator) == seeded  # nothing seeded twice
        assert len(ebay.outside_listings("dev")) == 100
        outside_id = ebay.outside_listings("dev")[0]["listingId"]
        ebay.sell(outside_id)
        assert ebay.orders("dev")[0]["lineItems"][0]["legacyItemId"] == outside_id
        token = ebay.issue_tokens("dev")["access_token"]
        task = httpx.get(ebay.base_url + urlsplit(task_url).path, headers={"Authorization": f"Bearer {token}"})
        assert task.json()["status"] == "QUEUED"


# Etsy ---------------------------------------------------------------------------------------------------


def test_etsy_lists_the_shop_by_state_with_images_and_inventory_when_included(
    seeded: Seeded, shop: httpx.Client, fake_etsy: FakeEtsy
) -> None:
    shop_id = fake_etsy.shop_id("dev")
    counted = {}
    for state in ("active", "inactive", "sold_out", "draft", "expired"):
        answer = shop.get(f"/shops/{shop_id}/listings", params={"state": state, "limit": 100})
        assert answer.headers["x-limit-per-second"]
        assert answer.headers["x-remaining-today"]
        counted[state] = answer.json()["count"]
    assert counted == {state: [one.state for one in FULL.etsy].count(state) for state in counted}
    listing = next(one for one in FULL.etsy if one.state == "active" and one.sku and len(one.photos) > 1)
    listing_id = int(seeded.ids["etsy"][listing.key])

    pages = [
        shop.get(
            f"/shops/{shop_id}/listings", params={"limit": 100, "offset": offset, "includes": "Images,Inventory"}
        ).json()["results"]
        for offset in (0, 100)
    ]

    [found] = [one for page in pages for one in page if one["listing_id"] == listing_id]
    assert (found["title"], found["state"], found["has_variations"]) == (listing.title, "active", False)
    assert [image["url_fullxfull"] for image in found["images"]] == list(listing.photos)
    assert [image["rank"] for image in found["images"]] == list(range(1, len(listing.photos) + 1))
    assert all(image["url_570xN"] and image["listing_image_id"] for image in found["images"])
    [product] = found["inventory"]["products"]
    assert (product["sku"], product["property_values"]) == (listing.sku, [])
    [offering] = product["offerings"]
    assert offering["price"] == {"amount": int(Decimal(listing.price) * 100), "divisor": 100, "currency_code": "EUR"}
    assert (offering["quantity"], offering["is_enabled"]) == (listing.quantity, True)
    plain = shop.get(f"/shops/{shop_id}/listings", params={"limit": 1}).json()["results"][0]
    assert "images" not in plain
    assert "inventory" not in plain
    repeated = shop.get(f"/shops/{shop_id}/listings", params=[("includes", "Images"), ("includes", "Inventory")])
    assert all("images" in one and "inventory" in one for one in repeated.json()["results"])


def test_an_etsy_listing_with_variations_has_a_product_per_size(seeded: Seeded, shop: httpx.Client) -> None:
    listing = next(one for one in FULL.etsy if one.variations)
    listing_id = seeded.ids["etsy"][listing.key]

    found = shop.get(f"/listings/{listing_id}", params={"includes": "inventory"}).json()

    assert found["has_variations"] is True
    products = found["inventory"]["products"]
    assert [product["property_values"][0]["values"] for product in products] == [[v.size] for v in listing.variations]
    assert [product["sku"] for product in products] == [v.sku for v in listing.variations]
    assert [product["offerings"][0]["quantity"] for product in products] == [v.quantity for v in listing.variations]


# Vinted -------------------------------------------------------------------------------------------------


def test_the_wardrobe_shows_the_seeded_items_as_vinted_does(seeded: Seeded, vinted: VintedSimulator) -> None:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        path = f"{WARDROBE}?page={page}&per_page=96&order=newest_first"
        result = vinted.perform({"method": "GET", "path": path}).result
        assert result is not None
        items += result["items"]
        if page >= result["pagination"]["total_pages"]:
            break
        page += 1
    assert len(items) == 300
    shown = {str(item["id"]): item for item in items}
    listing = next(one for one in FULL.vinted if one.state == "active" and one.photos)
    item = shown[seeded.ids["vinted"][listing.key]]
    assert set(item) == {
        "id",
        "title",
        "price",
        "url",
        "photos",
        "brand_title",
        "size_title",
        "status",
        "is_closed",
        "item_closing_action",
        "is_hidden",
        "is_reserved",
        "is_draft",
        "view_count",
        "favourite_count",
    }
    assert (item["title"], item["price"]) == (listing.title, {"amount": listing.price, "currency_code": "EUR"})
    assert (item["brand_title"], item["size_title"], item["status"]) == (listing.brand, listing.size, listing.status)
    assert [photo["url"] for photo in item["photos"]] == [photo["full_size_url"] for photo in item["photos"]]
    assert [photo["url"] for photo in item["photos"]] == list(listing.photos)
    for state, flags in (
        ("sold", {"is_closed": True, "item_closing_action": "sold"}),
        ("hidden", {"is_hidden": True, "is_closed": False}),
        ("reserved", {"is_reserved": True}),
        ("draft", {"is_draft": True}),
    ):
        one = shown[seeded.ids["vinted"][next(i for i in FULL.vinted if i.state == state).key]]
        assert {name: one[name] for name in flags} == flags
    sold = [one for one in FULL.vinted if one.state == "sold"]
    assert len(vinted.orders) == len(sold)


# the devstack's `crosslist dev seed-shops` -------------------------------------------------------------


@pytest.fixture
def devstack(
    fake_ebay: FakeEbay, fake_etsy: FakeEtsy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A devstack's health route naming the fakes (where `seed-shops` finds them); .devstack in a temporary folder."""
    monkeypatch.setattr(cli, "STATE_DIR", tmp_path / ".devstack")
    health = {"functions": [], "schedules": [], "fakes": {"ebay": fake_ebay.base_url, "etsy": fake_etsy.base_url}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(health).encode()
            self.send_response(200 if self.path == "/__devstack/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_seed_shops_seeds_the_three_fakes_and_writes_the_truth_in_their_ids(
    devstack: str,
    fake_ebay: FakeEbay,
    fake_etsy: FakeEtsy,
    vinted: VintedSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = ["dev", "seed-shops", "--account", "shop1", "--small", "--api", devstack]

    async def while_the_plugin_runs() -> list[int]:
        async with control_server(vinted) as control_url:
            cli.write_plugin_endpoint(cli.STATE_DIR, "demo", control_url)
            loop = asyncio.get_running_loop()
            return [await loop.run_in_executor(None, cli.main, command) for _ in range(2)]

    assert asyncio.run(while_the_plugin_runs()) == [0, 0]

    out = capsys.readouterr().out
    assert "eBay: 50 listings, 10 of them made on ebay.com" in out
    assert "Vinted: 30 items" in out
    assert len(fake_etsy.listings("shop1")) == 20
    assert len(vinted.items) == 30
    record = json.loads((cli.STATE_DIR / cli.SHOPS_DIR / "shop1-7.json").read_text())
    assert record["image_base"] == f"{devstack}/__devstack/images"
    ids = {name: set(found.values()) for name, found in record["ids"].items()}
    assert ids["ebay"] == {listing["listingId"] for listing in fake_ebay.listings("shop1")} | {
        listing["listingId"] for listing in fake_ebay.outside_listings("shop1")
    }
    assert ids["vinted"] == {str(item_id) for item_id in vinted.items}
    assert len(record["truth"]) == SMALL.counts()["on_two"] + SMALL.counts()["on_three"]
    assert set(record["notes"]) == {"reworded", "rephotographed", "stock_photo_distractors"}
    for group in [*record["truth"], *(pair for found in record["notes"].values() for pair in found)]:
        assert all(listing_id in ids[name] for name, listing_id in group.items())
    [photo, *_] = fake_ebay.outside_listings("shop1")[0]["imageUrls"] or ["none"]
    assert photo.startswith(f"{devstack}/__devstack/images/")


def test_seed_shops_without_a_plugin_seeds_ebay_and_etsy_and_says_how_to_seed_vinted(
    devstack: str, fake_etsy: FakeEtsy, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dev", "seed-shops", "--small", "--user", "ann", "--api", devstack]) == 0

    out = capsys.readouterr().out
    assert "Vinted: not seeded (no plugin simulator runs for user ann" in out
    assert "crosslist dev plugin --user ann" in out
    assert len(fake_etsy.listings("dev")) == 20
    record = json.loads((cli.STATE_DIR / cli.SHOPS_DIR / "dev-7.json").read_text())
    assert set(record["ids"]) == {"ebay", "etsy"}
    assert all(set(group) == {"ebay", "etsy"} for group in record["truth"])
