"""The Vinted publish workflow: what it accepts, the steps it plans, the commands it sends."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from crosslist.errors import InvalidRequest
from crosslist.marketplaces.vinted.publish import VintedPublish
from crosslist.workflows.base import JobContext, PluginCall, ProductSnapshot, Reply, StepFailed

PRODUCT = ProductSnapshot(
    id="p1",
    title="Levi's 501",
    description="Straight fit",
    price="27.90",
    currency="EUR",
    brand="Levi's",
    size="W32",
    condition="very good",
    color="blue",
    image_urls=["https://images.example.com/1.jpg", "https://images.example.com/2.jpg"],
    quantity=1,
    sku=None,
    marketplace_attributes={"vinted": {"catalog_id": 1839, "status_id": 2, "package_size_id": 1, "brand_id": 53}},
)


def ok(result: dict[str, Any] | None) -> Reply:
    return Reply(True, result, None)


def context(accumulated: dict[str, Any] | None = None) -> JobContext:
    return JobContext("job-1", "alice", VintedPublish().prepare(PRODUCT), accumulated or {}, step_timeout_ms=60_000)


def run(step_name: str, reply: Reply, accumulated: dict[str, Any] | None = None) -> tuple[PluginCall, dict[str, Any]]:
    """Plan the named step, then apply `reply` to it: (what it asked for, the job's data after it)."""
    workflow, job = VintedPublish(), context(accumulated)
    step = next(step for step in workflow.steps(job.input) if step.name == step_name)
    return workflow.plan(step, job), workflow.apply(step, job, reply)


def test_one_upload_step_per_photo_then_the_item() -> None:
    steps = VintedPublish().steps(VintedPublish().prepare(PRODUCT))
    assert [(s.name, s.description) for s in steps] == [
        ("upload_photo_1", "Uploading photo 1 of 2"),
        ("upload_photo_2", "Uploading photo 2 of 2"),
        ("create_item", "Creating the Vinted listing"),
    ]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"image_urls": []}, "at least one photo"),
        ({"image_urls": [f"https://images.example.com/{n}.jpg" for n in range(21)]}, "at most 20 photos"),
        ({"marketplace_attributes": {}}, "catalog_id, package_size_id, status_id"),
        (
            {"marketplace_attributes": {"vinted": {"catalog_id": "jeans", "status_id": 2, "package_size_id": 1}}},
            "catalog_id",
        ),
        (
            {
                "marketplace_attributes": {
                    "vinted": {"catalog_id": 1, "status_id": 2, "package_size_id": 1, "color_ids": [1, 2, 3]}
                }
            },
            "color_ids",
        ),
    ],
)
def test_a_product_vinted_would_refuse_is_refused_up_front(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        VintedPublish().prepare(replace(PRODUCT, **change))
    assert refused.value.code == "product_not_publishable"
    assert complaint in refused.value.message


def test_a_photo_step_sends_the_image_url_and_records_the_photo_id_at_its_position() -> None:
    call, accumulated = run("upload_photo_2", ok({"id": 77}), {"photo_ids": [76, 999]})  # 999: from a lost run
    assert accumulated == {"photo_ids": [76, 77]}
    assert (call.kind, call.command.method, call.command.path) == ("write", "POST", "/api/v2/photos")
    assert call.command.payload is not None
    assert call.command.payload["image_url"] == "https://images.example.com/2.jpg"


def test_the_item_step_carries_the_product_and_every_photo_id() -> None:
    reply = ok({"item": {"id": 5, "url": "https://www.vinted.fr/items/5"}})
    call, accumulated = run("create_item", reply, {"photo_ids": [76, 77]})
    assert accumulated == {"photo_ids": [76, 77], "item_id": 5, "url": "https://www.vinted.fr/items/5"}
    payload = call.command.payload
    assert payload is not None
    assert payload["item"]["assigned_photos"] == [{"id": 76, "orientation": 0}, {"id": 77, "orientation": 0}]
    assert (payload["item"]["price"], payload["item"]["catalog_id"], payload["upload_session_id"]) == (
        "27.90",
        1839,
        "job-1",
    )


def test_an_item_reply_already_unwrapped_by_the_extension_is_understood() -> None:
    _, accumulated = run("create_item", ok({"id": 5, "url": None}), {"photo_ids": [1]})
    assert accumulated["item_id"] == 5


@pytest.mark.parametrize("url", ["https://www.vinted.fr/items/5-" + "x" * 600, "javascript:alert(1)", 42])
def test_an_item_whose_url_cannot_be_stored_is_still_recorded_by_its_id(url: Any) -> None:
    # The item exists on Vinted: losing its id would leave a listing nobody knows about.
    _, accumulated = run("create_item", ok({"item": {"id": 5, "url": url}}), {"photo_ids": [1]})
    assert (accumulated["item_id"], accumulated["url"]) == (5, None)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(False, None, "Vinted is down"), "plugin_error"),
        (ok({"unexpected": True}), "invalid_plugin_result"),
        (ok(None), "invalid_plugin_result"),
        (ok({"id": "x" * 101}), "invalid_plugin_result"),
        (ok({"id": 2**64}), "invalid_plugin_result"),
        (ok({"id": 0}), "invalid_plugin_result"),
    ],
)
def test_failures_become_retryable_step_failures_that_say_what_happened(reply: Reply, code: str) -> None:
    with pytest.raises(StepFailed) as failed:
        run("upload_photo_1", reply)
    assert (failed.value.code, failed.value.retryable) == (code, True)
