"""The Vinted publish workflow: what it accepts, the steps it plans, the commands it sends, and how it
verifies a create whose reply was lost (in the account's wardrobe) instead of creating a duplicate."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from crosslist.errors import InvalidRequest
from crosslist.marketplaces.vinted.publish import VintedPublish
from crosslist.realtime.messages import PluginResultMessage, command_message
from crosslist.workflows.base import Completion, JobContext, PluginCall, ProductSnapshot, Reply, Step, StepFailed
from tests.support.fakes import FakeVinted
from tests.support.products import vinted_product

PRODUCT = vinted_product()


def ok(result: dict[str, Any] | None) -> Reply:
    return Reply(True, result, None)


def context(
    accumulated: dict[str, Any] | None = None, *, product: ProductSnapshot = PRODUCT, account_id: str | None = "31337"
) -> JobContext:
    job_input = VintedPublish().prepare(product)
    return JobContext("job-1", "alice", job_input, accumulated or {}, step_timeout_ms=60_000, account_id=account_id)


def step(name: str) -> Step:
    return next(step for step in VintedPublish().steps(VintedPublish().prepare(PRODUCT)) if step.name == name)


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
    assert refused.value.code == "not_publishable"
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
    assert accumulated == {"photo_ids": [76, 77], "item_id": "5", "url": "https://www.vinted.fr/items/5"}
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
    assert accumulated["item_id"] == "5"  # as the result and the listing say it


@pytest.mark.parametrize("url", ["https://www.vinted.fr/items/5-" + "x" * 600, "javascript:alert(1)", 42])
def test_an_item_whose_url_cannot_be_stored_is_still_recorded_by_its_id(url: Any) -> None:
    # The item exists on Vinted: losing its id would leave a listing nobody knows about.
    _, accumulated = run("create_item", ok({"item": {"id": 5, "url": url}}), {"photo_ids": [1]})
    assert (accumulated["item_id"], accumulated["url"]) == ("5", None)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(False, None, "network error: connection reset"), "plugin_error"),
        (Reply(False, None, "Service Unavailable", status=503), "vinted_unavailable"),
        (ok({"unexpected": True}), "vinted_reply_unrecognised"),
        (ok(None), "vinted_reply_unrecognised"),
        (ok({"id": "x" * 101}), "vinted_reply_unrecognised"),
        (ok({"id": 2**64}), "vinted_reply_unrecognised"),
        (ok({"id": 0}), "vinted_reply_unrecognised"),
    ],
)
def test_failures_become_retryable_step_failures_that_say_what_happened(reply: Reply, code: str) -> None:
    with pytest.raises(StepFailed) as failed:
        run("upload_photo_1", reply)
    assert (failed.value.code, failed.value.retryable) == (code, True)


def test_a_failed_reply_is_classified_by_vinted_s_status() -> None:
    with pytest.raises(StepFailed) as refused:
        run("create_item", Reply(False, None, "Title is too short", status=422), {"photo_ids": [1]})
    assert (refused.value.code, refused.value.kind, refused.value.message) == (
        "vinted_refused",
        "permanent",
        "Title is too short",
    )
    with pytest.raises(StepFailed) as throttled:
        run("upload_photo_1", Reply(False, None, "slow down", status=429, retry_after=60))
    assert (throttled.value.kind, throttled.value.retry_after_seconds) == ("throttled", 60)


# Verifying a create whose reply was lost.

ACCUMULATED = {"photo_ids": [9001, 9002]}


def wardrobe(*items: dict[str, Any]) -> Reply:
    return ok({"items": list(items), "pagination": {"current_page": 1, "total_pages": 1, "total_entries": len(items)}})


def listing(item_id: int = 4242, *, title: str = "Levi's 501", price: Any = None, photos: Any = ()) -> dict[str, Any]:
    return {
        "id": item_id,
        "title": title,
        "price": {"amount": "99.00", "currency_code": "EUR"} if price is None else price,
        "photos": [{"id": photo_id, "url": "https://images1.vinted.net/x.jpg"} for photo_id in photos],
        "url": f"https://www.vinted.fr/items/{item_id}-levis-501",
        "is_closed": False,
        "view_count": 0,  # one of the many fields the check does not need
    }


def verified(reply: Reply, accumulated: dict[str, Any] | None = None) -> dict[str, Any] | None:
    return VintedPublish().verified(step("create_item"), context(accumulated or ACCUMULATED), reply)


def test_a_photo_upload_is_simply_sent_again() -> None:
    assert VintedPublish().verify(step("upload_photo_1"), context()) is None


def test_a_lost_create_is_looked_for_in_the_newest_listings_of_the_account() -> None:
    call = VintedPublish().verify(step("create_item"), context(ACCUMULATED, account_id="31337"))
    assert isinstance(call, PluginCall)
    assert (call.kind, call.repeatable, call.command.method, call.command.payload) == ("read", True, "GET", None)
    assert call.command.path == "/api/v2/wardrobe/31337/items?page=1&per_page=96&order=newest_first"


def test_a_lost_create_cannot_be_verified_without_the_account() -> None:
    with pytest.raises(StepFailed) as failed:
        VintedPublish().verify(step("create_item"), context(ACCUMULATED, account_id=None))
    assert (failed.value.code, failed.value.kind) == ("cannot_verify", "retryable")
    assert "did not report which Vinted account" in failed.value.message


def test_an_item_with_the_title_and_one_of_the_photos_is_the_lost_create() -> None:
    data = verified(wardrobe(listing(4300, title="Other"), listing(4242, photos=[9002])))
    # Exactly what apply would have recorded from the create's own reply.
    _, applied = run(
        "create_item", ok({"item": {"id": 4242, "url": "https://www.vinted.fr/items/4242-levis-501"}}), ACCUMULATED
    )
    assert data == applied == {**ACCUMULATED, "item_id": "4242", "url": "https://www.vinted.fr/items/4242-levis-501"}


@pytest.mark.parametrize("price", [{"amount": "27.9", "currency_code": "EUR"}, {"amount": 27.90}, "27.90", 27.9])
def test_an_item_with_the_title_and_the_price_is_the_lost_create(price: Any) -> None:
    data = verified(wardrobe(listing(4242, price=price, photos=[1234])))
    assert data is not None
    assert data["item_id"] == "4242"


@pytest.mark.parametrize(
    "items",
    [
        [],
        [listing(photos=[1234])],  # the title, but neither a photo nor the price
        [listing(title="Levi's 501 W34", photos=[9001], price="27.90")],  # another product
    ],
)
def test_no_matching_item_means_the_create_did_not_land(items: list[dict[str, Any]]) -> None:
    assert verified(wardrobe(*items)) is None


@pytest.mark.parametrize(
    "result",
    [
        None,
        {},
        {"items": "none"},
        {"items": [{"title": "Levi's 501"}]},  # no id
        {"items": [{"id": 1, "title": "Levi's 501", "price": {"amount": "free"}}]},
        {"items": [listing(n) for n in range(1, 98)]},  # more than the page Vinted serves
    ],
)
def test_a_wardrobe_that_does_not_parse_fails_loudly(result: dict[str, Any] | None) -> None:
    with pytest.raises(StepFailed) as failed:
        verified(ok(result))
    assert (failed.value.code, failed.value.kind) == ("invalid_plugin_result", "retryable")


def test_a_failed_wardrobe_read_is_classified() -> None:
    with pytest.raises(StepFailed) as failed:
        verified(Reply(False, None, '{"url":"https://geo.captcha-delivery.com/c"}', status=403))
    assert (failed.value.code, failed.value.challenge) == ("challenge", True)


# The workflow against the shared fake Vinted (devstack's VintedSimulator through FakeVinted).

THREE_PHOTOS = replace(PRODUCT, image_urls=[f"https://images.example.com/{n}.jpg" for n in (1, 2, 3)])


def publish_on(vinted: FakeVinted, answers: list[dict[str, Any]]) -> Completion:
    """Run every step as the engine does: a call whose reply is lost is verified (when the workflow
    says it must be) before it is sent again."""
    workflow, job = VintedPublish(), context(product=THREE_PHOTOS, account_id=vinted.vinted_user_id)

    def call(step: Step, action: PluginCall) -> Reply | None:
        answers.clear()
        vinted(command_message(f"req-{len(vinted.commands)}", job.job_id, step.name, action.command, 60_000))
        if not answers:
            return None
        message = PluginResultMessage.model_validate(answers.pop())
        return Reply(message.success, message.result, message.error, message.status, message.retry_after)

    for current in workflow.steps(job.input):
        for _ in range(3):
            reply = call(current, workflow.plan(current, job))
            if reply is not None:
                job.accumulated = workflow.apply(current, job, reply)
                break
            check = workflow.verify(current, job)
            if check is None:
                continue
            assert isinstance(check, PluginCall)
            looked = call(current, check)
            assert looked is not None
            data = workflow.verified(current, job, looked)
            if data is not None:
                job.accumulated = data
                break
        else:
            raise AssertionError(f"{current.name} never completed")
    return workflow.complete(job)


def test_a_create_whose_reply_was_lost_is_found_and_not_created_twice() -> None:
    answers: list[dict[str, Any]] = []
    vinted = FakeVinted(send=answers.append, lose_reply={"create_item"})

    completion = publish_on(vinted, answers)

    assert [(c["step"], c["method"]) for c in vinted.commands][-2:] == [("create_item", "POST"), ("create_item", "GET")]
    [item] = vinted.items
    assert (item["title"], item["price"], item["photo_ids"], item["upload_session_id"]) == (
        "Levi's 501",
        "27.90",
        [9001, 9002, 9003],
        "job-1",
    )
    assert completion.listing is not None
    assert (completion.listing.external_id, completion.listing.url) == (str(item["id"]), item["url"])


def test_a_photo_upload_whose_reply_was_lost_is_uploaded_again() -> None:
    answers: list[dict[str, Any]] = []
    vinted = FakeVinted(send=answers.append, lose_reply={"upload_photo_2"})

    completion = publish_on(vinted, answers)

    assert sorted(vinted.photos) == [9001, 9002, 9003, 9004]  # 9002 landed unanswered: harmless
    [item] = vinted.items
    assert item["photo_ids"] == completion.result["photo_ids"] == [9001, 9003, 9004]
