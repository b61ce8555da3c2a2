"""What a sale of a single-item listing (Vinted) does where it sold: a new item of the product while stock is
left (crosslist.orders.delist.decide_republish), without a database."""

from __future__ import annotations

import uuid

import pytest

from crosslist.orders.delist import ActiveJob, Decision, decide_republish
from crosslist.orders.schemas import SaleActionKind

REPUBLISH, NONE = SaleActionKind.REPUBLISH, SaleActionKind.NONE


def job(action: str, *, started: bool = False) -> ActiveJob:
    return ActiveJob(uuid.uuid4(), action, started)


@pytest.mark.parametrize(
    ("listed", "active", "auto_delist", "stock_left", "expected"),
    [
        (False, None, True, True, Decision(REPUBLISH, queue=True)),
        (False, None, True, False, None),  # the last one sold: nothing to publish or log
        (False, None, False, False, None),
        (False, None, False, True, Decision(NONE, "auto_delist_off")),  # the stock is the user's to keep
        (True, None, True, True, Decision(NONE, "already_listed")),  # live there again: never two
        (True, job("publish"), True, True, Decision(NONE, "already_listed")),
        (False, job("publish"), True, True, Decision(REPUBLISH, "waiting_for_job", existing="wait")),
        (False, job("relist", started=True), True, True, Decision(REPUBLISH, "waiting_for_job", existing="wait")),
        (False, job("update"), True, True, Decision(REPUBLISH, "waiting_for_job", existing="wait")),
        (False, job("delete"), True, True, Decision(NONE, "listing_being_deleted", existing="keep")),
    ],
)
def test_a_new_item_is_published_only_with_stock_left_nothing_live_there_and_no_job_of_the_product_there(
    listed: bool, active: ActiveJob | None, auto_delist: bool, stock_left: bool, expected: Decision | None
) -> None:
    assert decide_republish(listed=listed, job=active, auto_delist=auto_delist, stock_left=stock_left) == expected
