"""Events a sale and a sync record (the outbox: what the app's webhooks and the dispatcher carry), and the
reconciliation every sync ends with: a sold-out product still live elsewhere is delisted, two live items of
one product on one marketplace are reported. Real PostgreSQL, moto, the real handlers, the one fake Vinted;
eBay's and Etsy's listing jobs are instant (tests.integration.test_auto_delist)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from crosslist.workflows.base import JobContext, StepAction, StepFailed
from crosslist.workflows.registry import WORKFLOWS
from tests.integration.conftest import Backend
from tests.integration.test_auto_delist import (
    InstantListingAction,
    OrdersImport,
    create_job,
    jobs_of,
    list_on,
    listing_status,
    marketplaces,  # noqa: F401 - a fixture, used by name
    published,
    sales,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _ebay_and_etsy_connected(backend: Backend, marketplaces: dict[str, OrdersImport]) -> None:  # noqa: F811
    """Alice's eBay and Etsy accounts with instant jobs (after the backend: it resets the runtime)."""


def events(sql: Any, *types: str) -> list[tuple[str, dict[str, Any]]]:
    """Alice's recorded events of these types, oldest first."""
    with sql.connect() as connection:
        rows = connection.execute(
            text("SELECT type, payload FROM outbox WHERE user_id = 'alice' AND type = ANY(:types) ORDER BY created_at"),
            {"types": list(types)},
        ).all()
    return [(row.type, row.payload) for row in rows]


def set_quantity(sql: Any, product_id: str, quantity: int) -> None:
    with sql.begin() as connection:
        connection.execute(text("UPDATE products SET quantity = :q WHERE id = :p"), {"q": quantity, "p": product_id})


@dataclass
class RefusedDelete(InstantListingAction):
    """A delete the marketplace refuses for good."""

    def plan(self, step: Any, context: JobContext) -> StepAction:
        raise StepFailed("etsy_refused", "Etsy refused deleting the listing: it is under review", retryable=False)


def test_a_sale_records_listing_sold_and_delist_started_and_a_refused_delete_records_delist_failed(
    backend: Backend, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(WORKFLOWS, "delete_etsy", RefusedDelete("etsy", "delete"))
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    list_on(sql, product_id, "ebay", "ebay-111")
    list_on(sql, product_id, "etsy", "etsy-222")

    vinted.simulator.sell(item_id, buyer="lea")
    create_job(backend, "vinted", "orders")
    backend.run_queue()

    jobs = {(job["marketplace"], job["action"]): job for job in jobs_of(sql, product_id)}
    [(_, sold)] = events(sql, "listing.sold")
    assert (sold["product_id"], sold["marketplace"], sold["quantity"]) == (product_id, "vinted", 1)
    assert sold["message"]["type"] == "listing.sold"  # what the user's connections were told
    started = events(sql, "delist.started")
    assert sorted((p["marketplace"], p["job_id"], p["sold_on"]) for _, p in started) == [
        ("ebay", jobs[("ebay", "delete")]["id"], "vinted"),
        ("etsy", jobs[("etsy", "delete")]["id"], "vinted"),
    ]
    assert {p["sale_id"] for _, p in started} == {sold["sale_id"]}
    [(_, failed)] = events(sql, "delist.failed")
    assert (failed["marketplace"], failed["job_id"], failed["error"]["code"]) == (
        "etsy",
        jobs[("etsy", "delete")]["id"],
        "etsy_refused",
    )
    assert listing_status(sql, product_id, "etsy") == "active"  # and the app heard it is still live


def test_a_sync_delists_a_sold_out_product_still_live_elsewhere_and_the_sale_log_shows_it(
    backend: Backend, sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sale whose delete failed leaves the Etsy listing live: the next sync (any marketplace's) delists it."""
    monkeypatch.setitem(WORKFLOWS, "delete_etsy", RefusedDelete("etsy", "delete"))
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    list_on(sql, product_id, "etsy", "etsy-222")
    vinted.simulator.sell(item_id)
    create_job(backend, "vinted", "orders")
    backend.run_queue()
    assert listing_status(sql, product_id, "etsy") == "active"
    # Another product, sold out by hand and never sold through crosslist, still live on Etsy.
    other = backend.create_product(title="Wool scarf")
    list_on(sql, other["id"], "etsy", "etsy-333")
    set_quantity(sql, other["id"], 0)
    # And one with stock: left alone.
    kept = backend.create_product(title="Silk tie")
    list_on(sql, kept["id"], "etsy", "etsy-444")

    monkeypatch.setitem(WORKFLOWS, "delete_etsy", InstantListingAction("etsy", "delete"))  # Etsy accepts now
    sync = create_job(backend, "vinted", "sync")
    backend.run_queue()

    result = backend.job(sync)["result"]
    assert sorted((d["product_id"], d["marketplace"]) for d in result["sold_out_delists"]) == sorted(
        [(product_id, "etsy"), (other["id"], "etsy")]
    )
    assert listing_status(sql, product_id, "etsy") == "deleted"
    assert listing_status(sql, other["id"], "etsy") == "deleted"
    assert listing_status(sql, kept["id"], "etsy") == "active"
    assert listing_status(sql, product_id, "vinted") == "sold"  # where it sold: not deleted by reconciliation
    [sale] = sales(product_id)
    [etsy] = [a for a in sale["actions"] if a["marketplace"] == "etsy"]
    assert (etsy["action"], etsy["reason"], etsy["status"]) == ("delete", "reconciled", "completed")
    assert None not in (etsy["started_at"], etsy["completed_at"])
    reconciled = [p for _, p in events(sql, "delist.started") if p.get("reason") == "reconciled"]
    assert {p["product_id"] for p in reconciled} == {product_id, other["id"]}

    # The next sync finds nothing left to do.
    again = create_job(backend, "vinted", "sync")
    backend.run_queue()
    assert "sold_out_delists" not in backend.job(again)["result"]


def test_a_sync_delists_a_vinted_item_published_after_a_sale_there_once_the_product_is_sold_out(
    backend: Backend, sql: Any
) -> None:
    """The product sold on Vinted, so a new item of it was published there: that sale no longer shields the new
    item from reconciliation (the sold one is never deleted)."""
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, quantity=2)
    vinted.simulator.sell(item_id)
    create_job(backend, "vinted", "orders")
    backend.run_queue()
    republish = [job for job in jobs_of(sql, product_id) if job["action"] == "publish"][-1]
    new_item = int(backend.job(republish["id"])["result"]["item_id"])
    assert listing_status(sql, product_id, "vinted") == "active"
    set_quantity(sql, product_id, 0)  # the last one sold in the user's shop, by hand

    sync = create_job(backend, "vinted", "sync")
    backend.run_queue()

    [delist] = backend.job(sync)["result"]["sold_out_delists"]
    assert (delist["product_id"], delist["marketplace"]) == (product_id, "vinted")
    assert backend.job(delist["job_id"])["status"] == "completed"
    assert new_item not in vinted.simulator.items
    assert vinted.simulator.items[item_id]["item_closing_action"] == "sold"  # the sold item: left as it is
    assert listing_status(sql, product_id, "vinted") == "deleted"


def test_with_auto_delist_off_a_sync_leaves_sold_out_listings_to_the_user(backend: Backend, sql: Any) -> None:
    with sql.begin() as connection:
        connection.execute(text("INSERT INTO user_settings (user_id, auto_delist) VALUES ('alice', false)"))
    backend.open_tab()
    product = backend.create_product(title="Wool scarf")
    list_on(sql, product["id"], "etsy", "etsy-333")
    set_quantity(sql, product["id"], 0)
    sync = create_job(backend, "vinted", "sync")
    backend.run_queue()
    assert "sold_out_delists" not in backend.job(sync)["result"]
    assert listing_status(sql, product["id"], "etsy") == "active"


def test_a_vinted_sync_reports_a_second_live_item_of_a_product_and_records_drift(backend: Backend, sql: Any) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted, title="Levi's 501 jeans", price="27.90")
    lookalike = vinted.simulator.add_item("levi's  501 JEANS", "27.90")  # listed by hand as well
    vinted.simulator.add_item("Levi's 501 jeans", "35.00")  # another price: another item
    other_id, other_item = published(backend, vinted, title="Wool scarf")
    vinted.simulator.hide(other_item)  # hidden on the site: crosslist's record drifts

    sync = create_job(backend, "vinted", "sync")
    backend.run_queue()

    [duplicate] = backend.job(sync)["result"]["duplicates"]
    assert duplicate == {
        "product_id": product_id,
        "external_id": str(item_id),
        "duplicate_external_id": str(lookalike),
        "duplicate_is_newer": True,
        "removal_job_id": None,  # reported only: the user's remove_duplicates is off
    }
    [(_, reported)] = events(sql, "listing.duplicate")
    assert (reported["product_id"], reported["duplicate_external_id"]) == (product_id, str(lookalike))
    [(_, drift)] = events(sql, "listing.drift")
    assert drift == {
        "product_id": other_id,
        "marketplace": "vinted",
        "external_id": str(other_item),
        "previous_status": "active",
        "status": "hidden",
    }
    # Synced again: the same duplicate is reported again (it is still there), the drift is not (nothing changed).
    create_job(backend, "vinted", "sync")
    backend.run_queue()
    assert len(events(sql, "listing.duplicate")) == 2
    assert len(events(sql, "listing.drift")) == 1


def test_with_remove_duplicates_on_a_sync_deletes_the_newer_duplicate_once_and_never_the_older_or_the_listing(
    backend: Backend, sql: Any
) -> None:
    with sql.begin() as connection:
        connection.execute(text("INSERT INTO user_settings (user_id, remove_duplicates) VALUES ('alice', true)"))
    _, vinted = backend.open_tab()
    older = vinted.simulator.add_item("Wool scarf", "20.00")  # listed by hand before crosslist published its own
    scarf_id, scarf_item = published(backend, vinted, title="Wool scarf", price="20.00")
    jeans_id, jeans_item = published(backend, vinted, title="Levi's 501 jeans", price="27.90")
    newer = vinted.simulator.add_item("Levi's 501 jeans", "27.90")  # listed by hand again after crosslist

    sync = create_job(backend, "vinted", "sync")
    backend.run_queue()

    found = {d["duplicate_external_id"]: d for d in backend.job(sync)["result"]["duplicates"]}
    assert found[str(older)]["removal_job_id"] is None  # the older one is never removed
    removal = backend.job(found[str(newer)]["removal_job_id"])
    assert (removal["action"], removal["product_id"], removal["status"]) == ("delete", jeans_id, "completed")
    assert newer not in vinted.simulator.items  # deleted on Vinted
    assert {jeans_item, scarf_item, older} <= set(vinted.simulator.items)
    assert listing_status(sql, jeans_id, "vinted") == "active"  # the product's own listing untouched
    assert listing_status(sql, scarf_id, "vinted") == "active"

    again = create_job(backend, "vinted", "sync")
    backend.run_queue()
    [left] = backend.job(again)["result"]["duplicates"]
    assert (left["duplicate_external_id"], left["removal_job_id"]) == (str(older), None)
    assert len([j for j in jobs_of(sql, jeans_id) if j["action"] == "delete"]) == 1  # once


def test_a_delete_names_a_duplicate_only_by_a_numeric_id_other_than_the_products_listing(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    product_id, item_id = published(backend, vinted)
    for params, why in (
        ({"duplicate_id": str(item_id)}, "the product's own listing"),
        ({"duplicate_id": "../items/1"}, "duplicate_id"),
        ({"item_id": "5"}, "takes no params but"),
    ):
        body = {"marketplace": "vinted", "action": "delete", "product_id": product_id, "params": params}
        refused = backend.http("POST", "/jobs", body=body)
        assert (refused.status, refused.body["code"]) == (422, "invalid_params"), refused.body
        assert why in refused.body["message"]
