"""What a failed Vinted call means: each status the extension reports becomes a classified StepFailed."""

from __future__ import annotations

import pytest

from crosslist.marketplaces.vinted.replies import check
from crosslist.realtime.messages import PhotoDownloadFailure
from crosslist.workflows.base import Reply, StepFailed

DATADOME = '{"url":"https://geo.captcha-delivery.com/captcha/?initialCid=AHrlqAAAAAMA&cid=x"}'


def failure(status: int | None, error: str = "whatever Vinted said", retry_after: float | None = None) -> StepFailed:
    with pytest.raises(StepFailed) as failed:
        check(Reply(False, None, error, status=status, retry_after=retry_after))
    return failed.value


def test_a_success_passes_whatever_its_status() -> None:
    check(Reply(True, {"id": 1}, None, status=200))
    check(Reply(True, {"id": 1}, None))


def test_429_pauses_the_lane_honouring_retry_after() -> None:
    failed = failure(429, "Too Many Requests", retry_after=120.0)
    assert (failed.code, failed.kind, failed.retry_after_seconds, failed.challenge) == (
        "rate_limited",
        "throttled",
        120.0,
        False,
    )
    assert failed.retryable
    assert failure(429).retry_after_seconds is None


@pytest.mark.parametrize("body", [DATADOME, "Blocked by DataDome", "<html>window.__CF_CHL_opt = {}</html>"])
def test_a_403_from_the_anti_bot_is_a_challenge(body: str) -> None:
    failed = failure(403, body)
    assert (failed.code, failed.kind, failed.challenge) == ("challenge", "throttled", True)
    assert "captcha" in failed.message


def test_401_means_logged_out_of_vinted() -> None:
    failed = failure(401, "Unauthorized")
    assert (failed.code, failed.kind) == ("plugin_logged_out", "logged_out")
    assert "log in to Vinted in the browser with the crosslist extension" in failed.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_vinted_server_error_is_retried(status: int) -> None:
    failed = failure(status, "<html>Oops</html>")
    assert (failed.code, failed.kind) == ("vinted_unavailable", "retryable")
    assert f"HTTP {status}" in failed.message
    assert "<html>" not in failed.message  # an error page means nothing to the user


def test_no_status_means_the_extension_could_not_reach_vinted() -> None:
    failed = failure(None, "network error: the connection to Vinted was reset")
    assert (failed.code, failed.kind) == ("plugin_error", "retryable")
    assert "could not reach Vinted (network error: the connection to Vinted was reset)" in failed.message
    assert failure(None, "").message == "The browser extension could not reach Vinted: the step will be tried again."


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, "You are not allowed to edit this item"),  # a plain 403: not a challenge
        (404, "Item not found"),
        (422, '{"message":"Title is too short","errors":[{"field":"title"}]}'),
        (400, "Bad request"),
    ],
)
def test_any_other_4xx_is_final_and_says_what_vinted_said(status: int, body: str) -> None:
    failed = failure(status, body)
    assert (failed.code, failed.kind, failed.retryable) == ("vinted_refused", "permanent", False)
    assert failed.message == body


def test_vinted_s_own_text_is_truncated() -> None:
    failed = failure(422, "x" * 5000)
    assert len(failed.message) == 500
    assert failed.message.endswith("…")
    assert failure(404, "").message == "Vinted refused the request (HTTP 404)."


def test_a_failure_with_a_success_status_is_the_extension_s_and_retried() -> None:
    failed = failure(200, "could not parse Vinted's JSON")
    assert (failed.code, failed.kind) == ("plugin_error", "retryable")
    assert "HTTP 200" in failed.message


PHOTO = "https://images.example.com/levis-1.jpg"


@pytest.mark.parametrize(
    ("status", "why"),
    [(404, None), (410, None), (403, None), (None, "unknown_host"), (200, "not_an_image"), (200, "too_large")],
)
def test_a_photo_the_extension_cannot_download_for_good_fails_the_step_at_once_naming_it(
    status: int | None, why: str | None
) -> None:
    photo = PhotoDownloadFailure(url=PHOTO, status=status, error=why)
    with pytest.raises(StepFailed) as failed:
        check(Reply(False, None, "could not download the image", photo_failure=photo))
    assert (failed.value.code, failed.value.kind) == ("image_unavailable", "permanent")
    assert PHOTO in failed.value.message
    assert failed.value.detail == {"url": PHOTO}


@pytest.mark.parametrize(
    ("status", "why"),
    [(503, None), (500, None), (429, None), (408, None), (None, "timeout"), (None, "connection_failed"), (None, None)],
)
def test_a_photo_whose_host_may_answer_later_is_retried_naming_it(status: int | None, why: str | None) -> None:
    photo = PhotoDownloadFailure(url=PHOTO, status=status, error=why)
    with pytest.raises(StepFailed) as failed:
        # A status beside it changes nothing (alone, a 400 would be Vinted's final refusal): Vinted was never called.
        check(Reply(False, None, "could not download the image", status=400, photo_failure=photo))
    assert (failed.value.code, failed.value.kind) == ("image_host_unavailable", "retryable")
    assert PHOTO in failed.value.message
