"""A reseller publishes a product on Vinted: the job runs step by step through the browser extension."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration


def listing_rows(sql: Any) -> list[dict[str, Any]]:
    with sql.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, product_id, marketplace, external_id, url, status FROM marketplace_listings")
        )
        return [dict(row._mapping) for row in rows]


def test_publish_with_three_photos_uploads_each_photo_then_creates_the_item(backend: Backend, sql: Any) -> None:
    connection_id, vinted = backend.open_tab()
    product = backend.create_product(images=3)

    created = backend.publish(product["id"])
    assert created.status == 202, created.body
    assert created.body["status"] == "pending"
    assert created.body["total_steps"] == 4
    backend.run_queue()

    photo_commands = [c for c in vinted.commands if c["path"] == "/api/v2/photos"]
    item_commands = [c for c in vinted.commands if c["path"] == "/api/v2/item_upload/items"]
    assert [c["payload"]["image_url"] for c in photo_commands] == product["image_urls"]
    assert all(c["method"] == "POST" and c["job_id"] == created.body["id"] for c in vinted.commands)
    assert len(item_commands) == 1
    item = item_commands[0]["payload"]["item"]
    assert [p["id"] for p in item["assigned_photos"]] == [9001, 9002, 9003]
    assert (item["title"], item["price"], item["catalog_id"], item["brand_id"]) == (
        "Levi's 501 jeans",
        "27.90",
        1839,
        53,
    )

    progress = backend.gateway.of_type(connection_id, "job.progress")
    assert [(p["step"], p["current_step"], p["total_steps"]) for p in progress] == [
        ("upload_photo_1", 1, 4),
        ("upload_photo_2", 2, 4),
        ("upload_photo_3", 3, 4),
    ]  # and the create: job.completed
    completed = backend.gateway.of_type(connection_id, "job.completed")
    assert len(completed) == 1
    assert completed[0]["result"]["item_id"] == "4242"
    # The user sees progress before completion, never after.
    types = [m["type"] for m in backend.gateway.messages[connection_id] if m["type"].startswith("job.")]
    assert types[-1] == "job.completed"

    job = backend.job(created.body["id"])
    assert job["status"] == "completed"
    assert (job["current_step"], job["total_steps"], job["attempts"]) == (4, 4, 1)
    assert job["result"] == {
        "item_id": "4242",
        "url": "https://www.vinted.fr/items/4242",
        "photo_ids": [9001, 9002, 9003],
    }
    assert listing_rows(sql) == [
        {
            "user_id": "alice",
            "product_id": uuid.UUID(product["id"]),
            "marketplace": "vinted",
            "external_id": "4242",
            "url": "https://www.vinted.fr/items/4242",
            "status": "active",
        }
    ]
    assert backend.queued() == 0
