"""Small things that each cost a frontend an afternoon: a job's times, what a whole-account job takes, the
unlinked list after a link, and what the template asks of an operator (real PostgreSQL, moto, the handlers)."""

from __future__ import annotations

from datetime import datetime

import pytest

from crosslist.marketplaces import ACTION_TYPES, PRODUCT_USE
from devstack.template import load_template
from tests.conftest import REPO
from tests.integration.conftest import Backend
from tests.integration.test_vinted_link import on_vinted

pytestmark = pytest.mark.integration


def test_a_new_jobs_last_change_is_never_before_its_creation(backend: Backend) -> None:
    product_id = backend.create_product()["id"]
    jobs = [backend.publish(product_id).body]
    reply = backend.http(
        "POST",
        "/jobs/batch",
        body={
            "marketplace": "vinted",
            "action": "publish",
            "product_ids": [backend.create_product()["id"] for _ in range(3)],
        },
    )
    jobs += reply.body["jobs"]
    for job in jobs:
        assert datetime.fromisoformat(job["updated_at"]) >= datetime.fromisoformat(job["created_at"]), job
    created = [datetime.fromisoformat(job["created_at"]) for job in reply.body["jobs"]]
    assert created == sorted(created)
    assert len(set(created)) == len(created)  # a batch's jobs keep their order in the lane


@pytest.mark.parametrize(("marketplace", "action"), [("vinted", "sync"), ("vinted", "orders"), ("ebay", "sync")])
def test_a_whole_account_job_takes_no_product(backend: Backend, marketplace: str, action: str) -> None:
    product_id = backend.create_product()["id"]
    reply = backend.http("POST", "/jobs", body={"marketplace": marketplace, "action": action, "product_id": product_id})
    assert reply.status == 422, reply.body
    assert "takes no product_id" in reply.body["message"]
    assert backend.http("GET", "/jobs", query={"product_id": product_id}).body["items"] == []


def test_every_action_says_whether_it_acts_on_a_product() -> None:
    assert {action.code for action in ACTION_TYPES} == set(PRODUCT_USE)


def test_an_item_just_linked_leaves_the_unlinked_list(backend: Backend) -> None:
    _, vinted = backend.open_tab()
    item_id = on_vinted(vinted)
    sync = backend.http("POST", "/jobs", body={"marketplace": "vinted", "action": "sync"}).body["id"]
    assert backend.run_job(sync)["status"] == "completed"
    assert str(item_id) in [
        item["item_id"] for item in backend.http("GET", "/marketplaces/vinted/unlinked").body["items"]
    ]
    total = backend.http("GET", "/marketplaces/vinted/unlinked").body["total"]

    product_id = backend.create_product()["id"]
    link = {"marketplace": "vinted", "action": "link_product", "product_id": product_id}
    job = backend.http("POST", "/jobs", body={**link, "params": {"vinted_item_id": str(item_id)}}).body["id"]
    assert backend.run_job(job)["status"] == "completed"

    unlinked = backend.http("GET", "/marketplaces/vinted/unlinked").body
    assert str(item_id) not in [item["item_id"] for item in unlinked["items"]]
    assert unlinked["total"] == total - 1


@pytest.mark.parametrize("parameter", ["EbayOAuthSecretArn", "EtsyOAuthSecretArn"])
def test_the_template_says_everything_an_apps_secret_holds(parameter: str) -> None:
    described = load_template(REPO / "template.yaml")["Parameters"][parameter]["Description"]
    for key in ("client_id", "client_secret", "redirect_uri", "scopes"):
        assert f'"{key}"' in described
