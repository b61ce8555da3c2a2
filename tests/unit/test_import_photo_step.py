"""An import's page waits for its photos' hashes before it is recorded: the page is kept in the checkpoint, the
step's next action is a PhotoHashes (performed by the engine, outside any transaction), and its reply records the
page with each listing's hash. A photo without a hash, or a failed photo step, never stops the import."""

from __future__ import annotations

from typing import Any

from crosslist.marketplaces.etsy.imports import EtsyImport
from crosslist.marketplaces.importing import PAGE_READ
from crosslist.workflows.base import Again, HttpCall, ImportedItem, JobContext, PhotoHashes, Reply, Step

WORKFLOW = EtsyImport()
STEP = Step("import_active", "Importing your Etsy listings (active)", kind="active")
FRONT, BACK, OTHER = "https://i.etsystatic.test/1.jpg", "https://i.etsystatic.test/2.jpg", "https://i.test/3.jpg"


def listing(listing_id: int, *photos: str) -> dict[str, Any]:
    return {
        "listing_id": listing_id,
        "state": "active",
        "title": f"Levi's 501 jeans {listing_id}",
        "price": {"amount": 4500, "divisor": 100, "currency_code": "EUR"},
        "quantity": 1,
        "images": [{"rank": rank, "url_fullxfull": url} for rank, url in enumerate(photos, 1)],
    }


def context(accumulated: dict[str, Any] | None = None) -> JobContext:
    job_input = {"import_id": "7b0c5a34-3a43-4b8e-9f41-2f0b8f0a5d11", "seller": {"shop_id": 42}}
    return JobContext("job-1", "alice", job_input, accumulated or {}, 30_000)


class Recorder:
    """The records an import page writes (crosslist.imports.apply in the real engine)."""

    def __init__(self) -> None:
        self.pages: list[list[ImportedItem]] = []

    def import_listings(self, import_id: str, items: list[ImportedItem]) -> dict[str, int]:
        self.pages.append(items)
        return {"created": len(items)}


def read_page(*listings: dict[str, Any]) -> Again:
    reply = Reply(True, {"count": 250, "results": list(listings)}, None, status=200)  # the first of 3 pages
    read = WORKFLOW.apply(STEP, context(), reply)
    assert isinstance(read, Again)
    return read


def record(again: Again) -> list[ImportedItem]:
    assert again.effects is not None
    recorder = Recorder()
    again.effects(recorder)  # type: ignore[arg-type] # only import_listings is used
    return recorder.pages[0]


def test_a_page_waits_for_the_hashes_of_its_first_photos_then_is_recorded_with_them() -> None:
    read = read_page(listing(1, FRONT, BACK), listing(2, OTHER), listing(3, FRONT))

    assert read.effects is None  # nothing recorded yet
    assert "comparing photos" in read.note
    hashing = WORKFLOW.plan(STEP, context(read.data))
    assert hashing == PhotoHashes((FRONT, OTHER))  # the first photo of each, each once

    hashes = {"hashes": {FRONT: "00ff00ff00ff00ff", OTHER: None}}
    done = WORKFLOW.apply(STEP, context(read.data), Reply(True, hashes, None))

    assert isinstance(done, Again)
    assert PAGE_READ not in done.data
    assert [(item.external_id, item.photo_hash) for item in record(done)] == [
        ("1", "00ff00ff00ff00ff"),
        ("2", None),
        ("3", "00ff00ff00ff00ff"),
    ]
    assert isinstance(WORKFLOW.plan(STEP, context(done.data)), HttpCall)  # then the next page


def test_a_failed_photo_step_or_a_malformed_hash_leaves_the_listings_without_one() -> None:
    read = read_page(listing(1, FRONT), listing(2, OTHER))

    failed = WORKFLOW.apply(STEP, context(read.data), Reply(False, None, "timed out"))
    assert isinstance(failed, Again)
    assert [item.photo_hash for item in record(failed)] == [None, None]
    odd = {"hashes": {FRONT: "not a hash", OTHER: 12}}
    malformed = WORKFLOW.apply(STEP, context(read.data), Reply(True, odd, None))
    assert isinstance(malformed, Again)
    assert [item.photo_hash for item in record(malformed)] == [None, None]


def test_a_page_without_photos_is_recorded_at_once() -> None:
    read = read_page(listing(1))

    assert [item.external_id for item in record(read)] == ["1"]
    assert PAGE_READ not in read.data
