"""A product as a job snapshots it, ready for a Vinted publish (unit tests build jobs from it)."""

from __future__ import annotations

from typing import Any

from crosslist.workflows.base import ProductSnapshot


def vinted_product(photos: int = 2, **fields: Any) -> ProductSnapshot:
    values: dict[str, Any] = {
        "id": "p1",
        "title": "Levi's 501",
        "description": "Straight fit",
        "price": "27.90",
        "currency": "EUR",
        "brand": "Levi's",
        "size": "W32",
        "condition": "very good",
        "color": "blue",
        "image_urls": [f"https://images.example.com/{n}.jpg" for n in range(1, photos + 1)],
        "quantity": 1,
        "sku": None,
        "marketplace_attributes": {
            "vinted": {"catalog_id": 1839, "status_id": 2, "package_size_id": 1, "brand_id": 53}
        },
        **fields,
    }
    return ProductSnapshot(**values)
