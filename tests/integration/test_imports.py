"""Imports of a seller's shops (real PostgreSQL, the real handlers, the fakes holding seeded shops): every listing
becomes a product or the listing of the product it surely is, uncertain matches wait for the user, importing again
makes nothing, an import interrupted after any page resumes without duplicating, an item sold meanwhile is
imported as sold, and what crosslist cannot represent is reported with its reason."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from crosslist import runtime
from crosslist.imports import apply as applying
from crosslist.jobs import engine, lanes
from crosslist.jobs.engine import LaneEngine
from crosslist.marketplaces import image_fetch
from crosslist.marketplaces.ebay import imports as ebay_imports
from crosslist.marketplaces.etsy import imports as etsy_imports
from crosslist.marketplaces.image_fetch import FetchedImage, ImageFetchFailed
from devstack.images import photo_at
from devstack.plugin import VintedSimulator
from devstack.shops import Seeded, Shops, external, pairs, score, seed_all, sized_shops
from tests.integration.conftest import count
from tests.integration.test_ebay_etsy import Marketplaces, marketplaces  # noqa: F401 - its fixture
from tests.integration.test_engine import Killed
from tests.integration.test_push_notifications import rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # make slow


@dataclass
class Shop:
    marketplaces: Marketplaces
    shops: Shops
    seeded: Seeded
    vinted: VintedSimulator

    @property
    def backend(self) -> Any:
        return self.marketplaces.backend

    def start(self, *where: str, expect: int = 202, **extra: Any) -> dict[str, Any]:
        reply = self.backend.http("POST", "/imports", body={"marketplaces": list(where), **extra})
        assert reply.status == expect, reply.body
        return dict(reply.body)

    def finished(self, import_id: str) -> dict[str, Any]:
        self.backend.run_queue(wait_timers=60)
        return self.view(import_id)

    def view(self, import_id: str) -> dict[str, Any]:
        reply = self.backend.http("GET", f"/imports/{import_id}")
        assert reply.status == 200, reply.body
        return dict(reply.body)


@pytest.fixture
def shop(marketplaces: Marketplaces, monkeypatch: pytest.MonkeyPatch) -> Shop:  # noqa: F811
    monkeypatch.setattr(ebay_imports, "FIRST_POLL_SECONDS", 0.1)
    monkeypatch.setattr(ebay_imports, "POLL_SECONDS", 0.2)
    marketplaces.ready("ebay")
    marketplaces.ready("etsy")
    _, tab = marketplaces.backend.open_tab()
    shops = sized_shops(7, small=True)

    def fetch(url: str, **_: Any) -> FetchedImage:  # the seeded shops' photos (each marketplace's copy)
        content = photo_at(url)
        if content is None:
            raise ImageFetchFailed(f"{url} answered HTTP 404")
        return FetchedImage(content, "image/png" if url.endswith(".png") else "image/jpeg")

    monkeypatch.setattr(image_fetch, "fetch_image", fetch)
    seeded = seed_all(shops, ebay=marketplaces.ebay, etsy=marketplaces.etsy, vinted=tab.simulator, account="alice")
    return Shop(marketplaces, shops, seeded, tab.simulator)


def groups(sql: Any, user: str = "alice") -> list[dict[str, str]]:
    """The products' listings, as {marketplace: external id} per product with more than one."""
    found: dict[str, dict[str, str]] = {}
    for row in rows(
        sql, "SELECT product_id, marketplace, external_id FROM marketplace_listings WHERE user_id = :u", u=user
    ):
        found.setdefault(str(row["product_id"]), {})[row["marketplace"]] = row["external_id"]
    return [group for group in found.values() if len(group) > 1]


def test_three_shops_become_one_product_per_item_and_a_second_import_makes_nothing(shop: Shop, sql: Any) -> None:
    started = shop.start("ebay", "etsy", "vinted")
    assert started["status"] == "running"
    assert {job["marketplace"] for job in started["jobs"]} == {"ebay", "etsy", "vinted"}

    done = shop.finished(started["id"])

    assert done["status"] == "completed", done
    listings = len(shop.shops.ebay) + len(shop.shops.etsy) + len(shop.shops.vinted)
    made = count(sql, "SELECT count(*) FROM products")
    counts = done["counts"]
    assert made == counts["created"]
    # Every listing read is recorded once: eBay groups count once per variation SKU they hold.
    assert count(sql, "SELECT count(DISTINCT (marketplace, external_id)) FROM imported_listings") >= listings - 5
    # Never a wrong merge on its own: every pair of listings linked to one product is one item.
    found = score(shop.seeded.truth, groups(sql))
    assert found.precision == 1.0, found
    assert found.recall >= 0.5, found
    # What crosslist cannot represent is reported, with its reason.
    reasons = {(s["marketplace"], s["reason"]) for s in done["skipped"]}
    assert ("etsy", "variations_not_supported") in reasons
    assert ("ebay", "variations_not_supported") in reasons
    assert counts["skipped"] == len(done["skipped"])
    # Each listing with variations is reported once, whether the Inventory API or only the report shows it.
    skipped_ebay = [s for s in done["skipped"] if s["marketplace"] == "ebay"]
    assert len(skipped_ebay) == sum(bool(listing.variations) for listing in shop.shops.ebay)
    # Made or linked, an eBay listing's product keeps the listing's own SKU and where it was made: its update and
    # delete need them.
    for listing in shop.shops.ebay:
        held = rows(
            sql,
            "SELECT p.marketplace_attributes -> 'ebay' AS ebay FROM products p JOIN marketplace_listings l"
            " ON l.product_id = p.id WHERE l.marketplace = 'ebay' AND l.external_id = :e",
            e=shop.seeded.ids["ebay"][listing.key],
        )
        if listing.variations or not held:  # skipped, or proposed and waiting
            continue
        assert held[0]["ebay"].get("sku") == listing.sku, listing
        assert bool(held[0]["ebay"].get("outside_inventory_api")) == (not listing.inventory_api), listing
    # The listings made on ebay.com were read from eBay's report.
    outside = sum(not listing.inventory_api and not listing.variations for listing in shop.shops.ebay)
    marked = count(
        sql,
        "SELECT count(*) FROM products WHERE (marketplace_attributes -> 'ebay' ->> 'outside_inventory_api') = 'true'",
    )
    assert 0 < marked <= outside

    again = shop.finished(shop.start("ebay", "etsy", "vinted")["id"])

    assert again["status"] == "completed"
    assert again["counts"]["created"] == again["counts"]["linked"] == again["counts"]["proposed"] == 0
    assert again["counts"]["already_imported"] >= listings - 5
    assert count(sql, "SELECT count(*) FROM products") == made


def test_uncertain_matches_wait_for_the_user_and_are_settled_once(shop: Shop, sql: Any) -> None:
    # Two products the seller made in crosslist, close to two Etsy listings: a word more, the same price.
    close = [e for e in shop.shops.etsy if e.state == "active" and not e.variations and not e.sku][:2]
    for listing in close:
        shop.marketplaces.product(title=f"{listing.title} pockets", price=listing.price)
    import_id = shop.start("etsy")["id"]
    shop.finished(import_id)
    matches = shop.backend.http("GET", f"/imports/{import_id}/matches").body["items"]
    assert matches, "the seeded shops hold close titles: some matches are uncertain"
    assert all(0.6 <= m["confidence"] < 1 and m["status"] == "proposed" for m in matches)
    first, second = matches[0], matches[1]
    before = count(sql, "SELECT count(*) FROM products")

    accepted = shop.backend.http("POST", f"/imports/{import_id}/matches/{first['id']}", body={"accept": True})
    rejected = shop.backend.http("POST", f"/imports/{import_id}/matches/{second['id']}", body={"accept": False})
    twice = shop.backend.http("POST", f"/imports/{import_id}/matches/{first['id']}", body={"accept": False})

    assert accepted.status == 200, accepted.body
    assert (accepted.body["status"], accepted.body["product_id"]) == ("accepted", first["product"]["id"])
    listed = rows(
        sql,
        "SELECT product_id FROM marketplace_listings WHERE marketplace = :m AND external_id = :e",
        m=first["marketplace"],
        e=first["external_id"],
    )
    assert [str(row["product_id"]) for row in listed] == [first["product"]["id"]]
    assert rejected.status == 200
    assert rejected.body["status"] == "rejected"
    assert rejected.body["product_id"] not in (None, second["product"]["id"])
    assert count(sql, "SELECT count(*) FROM products") == before + 1
    assert twice.status == 409
    assert twice.body["code"] == "match_decided"
    unknown = shop.backend.http("POST", f"/imports/{import_id}/matches/{uuid.uuid4()}", body={"accept": True})
    assert unknown.status == 404


@pytest.mark.parametrize("marketplace", ["ebay", "etsy"])
@pytest.mark.parametrize("when", ["before_commit", "after_commit"])
@pytest.mark.parametrize("page", [1, 2, 3])
def test_an_import_interrupted_after_any_page_resumes_without_duplicating(  # noqa: PLR0917 - parametrized
    shop: Shop, sql: Any, monkeypatch: pytest.MonkeyPatch, marketplace: str, when: str, page: int
) -> None:
    monkeypatch.setattr(ebay_imports, "PAGE_SIZE", 15)  # several pages of a small shop
    monkeypatch.setattr(etsy_imports, "PAGE_SIZE", 8)
    # A call in flight when its invocation died is taken as lost once its sender cannot be alive any more.
    monkeypatch.setattr(engine, "SENDER_LIFETIME_SECONDS", 3.0)
    pages = _kill_at_page(monkeypatch, page, when)

    import_id = shop.start(marketplace)["id"]
    kills = run_with_kills(shop.backend, monkeypatch)

    assert kills == 1
    assert pages[0] > page
    done = shop.view(import_id)
    assert done["status"] == "completed", done
    recorded = count(sql, "SELECT count(*) FROM imported_listings")
    assert count(sql, "SELECT count(DISTINCT (marketplace, external_id)) FROM imported_listings") == recorded
    assert count(sql, "SELECT count(*) FROM products") == done["counts"]["created"]
    assert sum(done["counts"][key] for key in ("created", "linked", "proposed", "skipped", "known")) == recorded
    live = count(sql, "SELECT count(*) FROM marketplace_listings")
    assert live == done["counts"]["created"] + done["counts"]["linked"]
    # Paged, never truncated: every listing of the shop was read, across pages smaller than the shop.
    read = {row["external_id"] for row in rows(sql, "SELECT external_id FROM imported_listings")}
    listings = shop.shops.ebay if marketplace == "ebay" else shop.shops.etsy
    expected = {shop.seeded.ids[marketplace][listing.key] for listing in listings if not listing.variations}
    assert expected <= read


def run_with_kills(backend: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the queues; the message of a killed invocation (the jobs' or the timers') comes back when its visibility
    times out (made immediate here). Returns how many invocations were killed."""
    received: dict[str, list[dict[str, Any]]] = {}
    receive = backend.sqs.receive_message

    def remembered(**request: Any) -> Any:
        reply = receive(**request)
        received[request["QueueUrl"]] = reply.get("Messages", [])
        return reply

    monkeypatch.setattr(backend.sqs, "receive_message", remembered)
    kills = 0
    for _ in range(100):
        try:
            backend.run_queue(wait_timers=5)
        except Killed:
            kills += 1
            for url, messages in received.items():
                for message in messages:
                    with contextlib.suppress(ClientError):  # deleted: it was not the killed invocation's
                        backend.sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                        )
            continue
        if not backend.active_jobs():
            break
    return kills


def _kill_at_page(monkeypatch: pytest.MonkeyPatch, page: int, when: str) -> list[int]:
    """process_job dies once, at the `page`-th page applied: before its transaction commits, or right after."""
    applied = [0]
    real_apply = applying.apply_page
    real_tell = LaneEngine._tell_and_wake

    def apply_page(*args: Any, **kwargs: Any) -> Any:
        result = real_apply(*args, **kwargs)
        applied[0] += 1
        if when == "before_commit" and applied[0] == page:
            raise Killed
        return result

    told = [False]

    def tell_and_wake(self: LaneEngine, *args: Any, **kwargs: Any) -> None:
        if when == "after_commit" and applied[0] == page and not told[0]:
            told[0] = True
            raise Killed
        real_tell(self, *args, **kwargs)

    monkeypatch.setattr(lanes, "apply_page", apply_page)
    monkeypatch.setattr(LaneEngine, "_tell_and_wake", tell_and_wake)
    return applied


def test_an_item_sold_while_the_import_runs_is_imported_as_sold(
    shop: Shop, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = shop.marketplaces.etsy
    single = next(
        listing
        for listing in shop.shops.etsy
        if listing.state == "active" and listing.quantity == 1 and not listing.variations
    )
    listing_id = shop.seeded.ids["etsy"][single.key]
    real_apply = applying.apply_page
    sold: list[str] = []

    def apply_page(*args: Any, **kwargs: Any) -> Any:
        result = real_apply(*args, **kwargs)
        if not sold:  # the active listings are read and recorded: it sells now
            sold.append(fake.sell(listing_id))
        return result

    monkeypatch.setattr(lanes, "apply_page", apply_page)

    done = shop.finished(shop.start("etsy")["id"])

    assert done["status"] == "completed"
    assert done["counts"]["updated"] >= 1
    row = rows(
        sql,
        "SELECT l.status, p.quantity FROM marketplace_listings l JOIN products p ON p.id = l.product_id"
        " WHERE l.marketplace = 'etsy' AND l.external_id = :e",
        e=listing_id,
    )
    assert [(r["status"], r["quantity"]) for r in row] == [("sold", 0)]


def test_an_ebay_item_sold_between_its_page_and_its_offer_is_imported_as_sold(
    shop: Shop, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = shop.marketplaces.ebay
    single = next(
        listing for listing in shop.shops.ebay if listing.inventory_api and not listing.group and listing.quantity == 1
    )
    listing_id = shop.seeded.ids["ebay"][single.key]
    real_inventory = ebay_imports.EbayImport._inventory
    sold: list[str] = []

    def inventory(self: Any, context: Any, reply: Any) -> Any:
        answer = real_inventory(self, context, reply)
        if not sold:  # the first page is read; the offers are not yet
            sold.append(fake.sell(listing_id, account="alice"))
        return answer

    monkeypatch.setattr(ebay_imports.EbayImport, "_inventory", inventory)

    done = shop.finished(shop.start("ebay")["id"])

    assert done["status"] == "completed"
    row = rows(
        sql,
        "SELECT l.status, p.quantity FROM marketplace_listings l JOIN products p ON p.id = l.product_id"
        " WHERE l.marketplace = 'ebay' AND l.external_id = :e",
        e=listing_id,
    )
    assert [(r["status"], r["quantity"]) for r in row] == [("sold", 0)]
    assert done["counts"]["sold"] >= 1


def test_ebay_listings_made_on_ebay_com_are_ended_only_once_migrated(shop: Shop, sql: Any) -> None:
    first = shop.finished(shop.start("ebay")["id"])
    outside = rows(
        sql,
        "SELECT p.id, l.external_id, p.marketplace_attributes -> 'ebay' ->> 'sku' AS sku FROM products p"
        " JOIN marketplace_listings l ON l.product_id = p.id AND l.marketplace = 'ebay'"
        " WHERE (p.marketplace_attributes -> 'ebay' ->> 'outside_inventory_api') = 'true'",
    )
    assert outside
    assert first["counts"]["created"] > 0
    refused = shop.backend.http(
        "POST", "/jobs", body={"marketplace": "ebay", "action": "delete", "product_id": str(outside[0]["id"])}
    )
    assert refused.status == 422
    assert refused.body["code"] == "ebay_listing_outside_inventory_api"

    migrated = shop.finished(shop.start("ebay", migrate_ebay=True)["id"])

    assert migrated["status"] == "completed", migrated
    job = shop.backend.job(migrated["jobs"][0]["job_id"])
    with_sku = [row for row in outside if row["sku"]]
    assert job["result"]["migrated"] == len(with_sku) > 0
    assert all("SKU" in entry["reason"] or "sku" in entry["reason"] for entry in job["result"]["not_migrated"])
    still = count(
        sql,
        "SELECT count(*) FROM products WHERE (marketplace_attributes -> 'ebay' ->> 'outside_inventory_api') = 'true'",
    )
    assert still == len(outside) - len(with_sku)
    product = next(row for row in outside if row["sku"])
    ended = shop.marketplaces.run(shop.marketplaces.job("ebay", "delete", str(product["id"])))
    assert ended["status"] == "completed", ended
    assert shop.marketplaces.ebay.listing_status(product["external_id"]) in ("ENDED", "WITHDRAWN", None, "OUT_OF_STOCK")


def test_bad_imports_are_refused_with_their_reason(shop: Shop, marketplaces: Marketplaces) -> None:  # noqa: F811
    http: Callable[..., Any] = shop.backend.http
    for body, code in (
        ({"marketplaces": []}, 422),
        ({"marketplaces": ["ebay", "ebay"]}, 422),
        ({"marketplaces": ["amazon"]}, 422),
        ({"marketplaces": ["etsy"], "migrate_ebay": "yes"}, 422),
        ({"marketplaces": ["etsy"], "extra": 1}, 422),
    ):
        reply = http("POST", "/imports", body=body)
        assert reply.status == code, (body, reply.body)
    not_connected = http("POST", "/imports", body={"marketplaces": ["ebay"]}, user="bob")
    assert not_connected.status == 422
    assert not_connected.body["code"] == "marketplace_not_connected"
    running = shop.start("etsy")
    again = http("POST", "/imports", body={"marketplaces": ["etsy", "ebay"]})
    assert again.status == 409
    assert again.body["code"] == "import_in_progress"
    assert again.body["import_id"] == running["id"]
    assert http("GET", f"/imports/{running['id']}", user="bob").status == 404


def test_a_sync_after_an_ebay_import_keeps_its_listings_which_keep_the_sellers_skus(shop: Shop, sql: Any) -> None:
    shop.finished(shop.start("ebay")["id"])
    before = rows(sql, "SELECT external_id, status FROM marketplace_listings WHERE marketplace = 'ebay'")

    synced = shop.marketplaces.run(shop.marketplaces.job("ebay", "sync"))

    assert synced["status"] == "completed", synced
    after = rows(sql, "SELECT external_id, status FROM marketplace_listings WHERE marketplace = 'ebay'")
    assert sorted((r["external_id"], str(r["status"])) for r in after) == sorted(
        (r["external_id"], str(r["status"])) for r in before
    )
    assert any(str(r["status"]) == "active" for r in after)


def _one_sku(skus: list[str | None]) -> bool:
    return skus[0] is not None and skus[0] == skus[1]


def found_pairs(sql: Any) -> set[frozenset[tuple[str, str]]]:
    """The pairs of listings an import made one product of, or proposed as one (the listing and its candidate's)."""
    proposed = [
        {row["marketplace"]: row["external_id"], row["other"]: row["other_id"]}
        for row in rows(
            sql,
            "SELECT i.marketplace, i.external_id, l.marketplace AS other, l.external_id AS other_id"
            " FROM imported_listings i JOIN marketplace_listings l ON l.product_id = i.candidate_product_id"
            " WHERE i.decision = 'proposed'",
        )
    ]
    return pairs(groups(sql)) | pairs(proposed)


@pytest.mark.parametrize("photos", ["on", "off"])
def test_a_reworded_title_is_recognised_by_its_photo_and_a_shared_stock_photo_never_merges(
    shop: Shop, sql: Any, monkeypatch: pytest.MonkeyPatch, photos: str
) -> None:
    monkeypatch.setenv("CROSSLIST_PHOTO_MATCHING", photos)
    runtime.settings.cache_clear()
    runtime.lane_engine.cache_clear()
    # The pairs only their photo can tell: titles reworded (half the words differ), the same photo re-hosted by
    # each marketplace (another URL, size and format), no SKU in common.
    skus = {listing.key: listing.sku for listing in shop.shops.ebay} | {item.key: item.sku for item in shop.shops.etsy}
    rehosted = pairs(shop.shops.notes["reworded"]) - pairs(shop.shops.notes["rephotographed"])
    by_photo_only = [dict(pair) for pair in rehosted if not _one_sku([skus.get(key) for _, key in pair])]
    reworded = pairs(external(by_photo_only, shop.seeded.ids))
    assert reworded, "the seeded shops hold reworded titles"

    import_id = shop.start("ebay", "etsy", "vinted")["id"]
    done = shop.finished(import_id)

    assert done["status"] == "completed", done
    found = found_pairs(sql)
    matches = shop.backend.http("GET", f"/imports/{import_id}/matches").body["items"]
    linked_by_photo = count(sql, "SELECT count(*) FROM imported_listings WHERE reason = 'title_price_photo'")
    if photos == "on":
        assert reworded <= found, reworded - found  # linked, or proposed to the seller
        assert linked_by_photo > 0
        assert "title_price_photo" in {match["reason"] for match in matches}  # the seller is told why
    else:
        assert not reworded & found
        assert linked_by_photo == 0
        assert "title_price_photo" not in {match["reason"] for match in matches}
    # Photos or not, never a wrong merge: not even the look-alikes sharing one stock photo (another size or colour).
    assert score(shop.seeded.truth, groups(sql)).precision == 1.0
    stock = pairs(shop.seeded.notes["stock_photo_distractors"])
    assert stock
    assert not stock & found
