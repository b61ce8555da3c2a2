"""How eBay's and Etsy's answers become the engine's failure kinds, with the marketplace's message kept."""

from __future__ import annotations

import pytest

from crosslist.marketplaces.ebay.common import failure as ebay_failure
from crosslist.marketplaces.etsy.common import failure as etsy_failure
from crosslist.workflows.base import Reply

EBAY_REFUSAL = {
    "errors": [
        {
            "errorId": 25002,
            "domain": "API_INVENTORY",
            "category": "REQUEST",
            "message": "A user error has occurred. Offer entity already exists.",
            "parameters": [{"name": "offerId", "value": "9001"}],
        }
    ]
}


def test_a_429_pauses_for_the_marketplaces_retry_after() -> None:
    failed = ebay_failure(Reply(False, None, "slow down", status=429, retry_after=7.0), "creating the offer")
    assert (failed.kind, failed.retry_after_seconds, failed.code) == ("throttled", 7.0, "ebay_rate_limited")


@pytest.mark.parametrize("status", [None, 500, 502, 503, 504, 408])
def test_no_answer_or_a_server_error_is_tried_again(status: int | None) -> None:
    failed = etsy_failure(Reply(False, None, "upstream timed out", status=status), "uploading photo 1 of 2")
    assert failed.kind == "retryable"
    assert failed.code == "etsy_unavailable"


def test_a_refusal_is_final_and_keeps_ebays_message_and_errors() -> None:
    failed = ebay_failure(Reply(False, EBAY_REFUSAL, "...", status=400), "creating the offer")
    assert failed.kind == "permanent"
    assert failed.message == "eBay refused creating the offer: A user error has occurred. Offer entity already exists."
    assert failed.error["detail"]["errors"][0]["errorId"] == 25002


def test_etsys_error_text_is_what_the_user_reads() -> None:
    body = {"error": "Shipping profile 17 does not belong to shop 42"}
    failed = etsy_failure(Reply(False, body, "...", status=400), "creating the Etsy draft")
    assert failed.kind == "permanent"
    assert failed.message.endswith("Shipping profile 17 does not belong to shop 42")
