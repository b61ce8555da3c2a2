"""The Vinted publish workflow: what it accepts, the steps it plans, the commands it sends."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest

from crosslist.errors import InvalidRequest
from crosslist.marketplaces.vinted.publish import VintedPublish
from crosslist.realtime.relay import NoPluginConnection, PluginReply, PluginTimeout
from crosslist.workflows.base import JobContext, ProductSnapshot, Step, StepFailed, StepTools

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


class ScriptedPlugin:
    """Answers each call with the next scripted reply (or raises it)."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def call(self, **call: Any) -> PluginReply:
        self.calls.append(call)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return cast(PluginReply, reply)


def ok(result: dict[str, Any] | None) -> PluginReply:
    return PluginReply("r", True, result, None)


def context(accumulated: dict[str, Any] | None = None) -> JobContext:
    return JobContext("job-1", "alice", VintedPublish().prepare(PRODUCT), accumulated or {}, step_timeout_ms=60_000)


def run(step: str, plugin: ScriptedPlugin, accumulated: dict[str, Any] | None = None) -> dict[str, Any]:
    return VintedPublish().run_step(Step(step, ""), context(accumulated), StepTools(plugin=plugin))  # type: ignore[arg-type]


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
    plugin = ScriptedPlugin(ok({"id": 77}))
    accumulated = run("upload_photo_2", plugin, {"photo_ids": [76, 999]})  # 999: a stale id from a lost run
    assert accumulated == {"photo_ids": [76, 77]}
    command = plugin.calls[0]["command"]
    assert (command.method, command.path, command.payload["image_url"]) == (
        "POST",
        "/api/v2/photos",
        "https://images.example.com/2.jpg",
    )
    assert plugin.calls[0]["step"] == "upload_photo_2"


def test_the_item_step_carries_the_product_and_every_photo_id() -> None:
    plugin = ScriptedPlugin(ok({"item": {"id": 5, "url": "https://www.vinted.fr/items/5"}}))
    accumulated = run("create_item", plugin, {"photo_ids": [76, 77]})
    assert accumulated == {"photo_ids": [76, 77], "item_id": 5, "url": "https://www.vinted.fr/items/5"}
    payload = plugin.calls[0]["command"].payload
    assert payload["item"]["assigned_photos"] == [{"id": 76, "orientation": 0}, {"id": 77, "orientation": 0}]
    assert (payload["item"]["price"], payload["item"]["catalog_id"], payload["upload_session_id"]) == (
        "27.90",
        1839,
        "job-1",
    )


def test_an_item_reply_already_unwrapped_by_the_extension_is_understood() -> None:
    accumulated = run("create_item", ScriptedPlugin(ok({"id": 5, "url": None})), {"photo_ids": [1]})
    assert accumulated["item_id"] == 5


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (PluginReply("r", False, None, "Vinted is down"), "plugin_error", True),
        (ok({"unexpected": True}), "invalid_plugin_result", True),
        (ok(None), "invalid_plugin_result", True),
        (PluginTimeout("late"), "plugin_timeout", True),
        (NoPluginConnection("no_plugin_connection", "no tab"), "no_plugin_connection", False),
        (NoPluginConnection("plugin_not_ready", "no ready tab"), "plugin_not_ready", False),
    ],
)
def test_failures_become_step_failures_that_say_what_happened(reply: Any, code: str, retryable: bool) -> None:
    with pytest.raises(StepFailed) as failed:
        run("upload_photo_1", ScriptedPlugin(reply))
    assert (failed.value.code, failed.value.retryable) == (code, retryable)
