"""Whether a product can be put on sale on a marketplace: one check for every marketplace and every action
that lists it (publish, relist, and eBay's and Etsy's updates), so that a product refused on one is refused
for the same reason, with the same code, on the others."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from crosslist.errors import InvalidRequest
from crosslist.marketplaces import DISPLAY_NAMES
from crosslist.workflows.base import ProductSnapshot

# "This product cannot be put on sale here": a 422 at POST /jobs naming every problem.
NOT_PUBLISHABLE = "not_publishable"


def checked_product[Attributes: BaseModel](
    product: ProductSnapshot | None,
    marketplace: str,
    action: str,
    attributes: type[Attributes],
    *,
    max_photos: int,
    max_title: int | None = None,
    more: list[str] | None = None,
    code: str = NOT_PUBLISHABLE,
    for_sale: bool = True,
) -> tuple[ProductSnapshot, Attributes]:
    """The product and its marketplace_attributes.{marketplace} when the marketplace can take them;
    InvalidRequest (`code`) naming every problem (with `more` of the marketplace's own) otherwise.
    `for_sale`: the action puts the item on sale, so there must be stock left to sell."""
    name = DISPLAY_NAMES[marketplace]
    if product is None:
        raise InvalidRequest(f"{action} on {name} needs a product_id")
    problems = list(more or [])
    if max_title is not None and len(product.title) > max_title:
        problems.append(f"title: {name} takes at most {max_title} characters, this one has {len(product.title)}")
    if not product.image_urls:
        problems.append(f"image_urls: {name} needs at least one photo to list it")
    if len(product.image_urls) > max_photos:
        problems.append(
            f"image_urls: {name} takes at most {max_photos} photos, the product has {len(product.image_urls)}"
        )
    if for_sale and product.quantity < 1:
        problems.append("quantity: nothing left to sell")
    found: Attributes | None = None
    try:
        found = attributes.model_validate(product.marketplace_attributes.get(marketplace) or {})
    except ValidationError as invalid:
        fields = sorted({".".join(str(p) for p in error["loc"]) for error in invalid.errors()})
        problems.append(f"marketplace_attributes.{marketplace} is missing or invalid: {', '.join(fields)}")
    if problems or found is None:
        raise InvalidRequest("; ".join(problems), code=code)
    return product, found
