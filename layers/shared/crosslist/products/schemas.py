"""Products as the HTTP API accepts and shows them.

Every stored field is bounded: a product is shown whole in `GET /products` pages, and a Lambda
response cannot pass 6 MB.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    UrlConstraints,
    model_validator,
)

from crosslist import settings, untrusted_json
from crosslist.db.models import ListingStatus, MarketplaceListing, Product
from crosslist.jobs.schemas import JobView
from crosslist.marketplaces import MARKETPLACES, Marketplace
from crosslist.marketplaces.vinted import MAX_PHOTOS
from crosslist.products.image_urls import MAX_IMAGE_URL_LENGTH, check_image_url

# The width of products.title (varchar(200)); every marketplace allows fewer characters than that.
MAX_TITLE_LENGTH = 200
# A detailed listing description is a few thousand characters; the largest part of a product in a list page.
MAX_DESCRIPTION_LENGTH = 5000
# eBay item aspects and Etsy properties take a few KiB; 16 KiB of JSON keeps a product far below a page's budget.
MAX_ATTRIBUTES_JSON_BYTES = 16 * 1024
# {"ebay": {"aspects": {"Size": ["M"]}}} nests 4 levels: 6 leaves room without inviting trees.
MAX_ATTRIBUTES_DEPTH = 6
# Catalogues hold thousands of products; a bound also keeps the offset within PostgreSQL's bigint.
MAX_LIST_OFFSET = 1_000_000


def _safe_image_url(url: HttpUrl) -> HttpUrl:
    encoded = str(url)
    # The limit holds once non-ASCII characters are percent-encoded, as the URL is stored and shown.
    if len(encoded) > MAX_IMAGE_URL_LENGTH:
        raise ValueError(f"an image URL is at most {MAX_IMAGE_URL_LENGTH} characters once encoded, not {len(encoded)}")
    check_image_url(encoded, settings.current().dev_image_origins)
    if (url.path or "").lower().endswith((".svg", ".svgz")):
        # Marketplaces take photos (JPEG, PNG, WebP…), not drawings; a URL that hides one is refused when used.
        raise ValueError("an image URL must be a photo (JPEG, PNG, GIF, WebP, HEIC), not an SVG drawing")
    return url


def _bounded_attributes(attributes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    try:
        encoded = json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        raise ValueError("marketplace_attributes must hold JSON values only") from None
    if len(encoded) > MAX_ATTRIBUTES_JSON_BYTES:
        raise ValueError(
            f"marketplace_attributes is {len(encoded)} bytes as JSON; the limit is {MAX_ATTRIBUTES_JSON_BYTES}"
        )
    try:
        untrusted_json.check(attributes, MAX_ATTRIBUTES_DEPTH)
    except untrusted_json.InvalidJson as invalid:
        raise ValueError(f"marketplace_attributes: {invalid.reason}") from None
    return attributes


Money = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2), PlainSerializer(str, return_type=str)]
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE_LENGTH)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH)]
ImageUrl = Annotated[HttpUrl, UrlConstraints(max_length=MAX_IMAGE_URL_LENGTH), AfterValidator(_safe_image_url)]
ImageUrls = Annotated[list[ImageUrl], Field(max_length=MAX_PHOTOS)]
MarketplaceAttributes = Annotated[
    dict[Literal["vinted", "ebay", "etsy"], dict[str, Any]],
    AfterValidator(_bounded_attributes),
    Field(
        description=f"Per marketplace; at most {MAX_ATTRIBUTES_JSON_BYTES} bytes as JSON, "
        f"nested at most {MAX_ATTRIBUTES_DEPTH} levels"
    ),
]


class ProductFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title
    description: Description = ""
    price: Money
    currency: str = Field(default="EUR", pattern="^[A-Z]{3}$")
    brand: str | None = Field(default=None, max_length=100)
    size: str | None = Field(default=None, max_length=50)
    condition: str | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=50)
    image_urls: ImageUrls = Field(default_factory=list)
    quantity: int = Field(default=1, ge=0, le=10_000)
    sku: str | None = Field(default=None, max_length=100)
    marketplace_attributes: MarketplaceAttributes = Field(default_factory=dict)


class ProductCreate(ProductFields):
    pass


class ProductUpdate(BaseModel):
    """Only the fields present change (PATCH)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: Title | None = None
    description: Description | None = None
    price: Money | None = None
    currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    brand: str | None = Field(default=None, max_length=100)
    size: str | None = Field(default=None, max_length=50)
    condition: str | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=50)
    image_urls: ImageUrls | None = None
    quantity: int | None = Field(default=None, ge=0, le=10_000)
    sku: str | None = Field(default=None, max_length=100)
    marketplace_attributes: MarketplaceAttributes | None = None

    @model_validator(mode="after")
    def _required_fields_stay_set(self) -> ProductUpdate:
        cleared = sorted(name for name in self.model_fields_set & _REQUIRED_FIELDS if getattr(self, name) is None)
        if cleared:
            raise ValueError(f"these fields cannot be null: {', '.join(cleared)}")
        return self


_REQUIRED_FIELDS = frozenset(
    {"title", "description", "price", "currency", "image_urls", "quantity", "marketplace_attributes"}
)


class ListingView(BaseModel):
    """Where the product is listed, as crosslist last saw it (a job's result or a sync)."""

    marketplace: Marketplace
    status: ListingStatus = Field(
        description="active, hidden and reserved listings are live: the item can still be bought"
    )
    external_id: str = Field(description="The marketplace's id: the Vinted item, the eBay or Etsy listing")
    url: str | None
    last_synced_at: datetime | None = Field(description="When a job or a sync last saw it on the marketplace")

    @classmethod
    def of(cls, listing: MarketplaceListing) -> ListingView:
        return cls(
            marketplace=listing.marketplace,
            status=listing.status,
            external_id=listing.external_id,
            url=listing.url,
            last_synced_at=listing.last_synced_at,
        )


class ProductView(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    price: Money
    currency: str
    brand: str | None
    size: str | None
    condition: str | None
    color: str | None
    image_urls: list[str]
    quantity: int
    sku: str | None
    marketplace_attributes: dict[str, Any]
    listings: list[ListingView] = Field(description="Where it is listed, one listing per marketplace at most")
    delete_requested_at: datetime | None = Field(
        description="DELETE ?delist=true was asked: the product is deleted once its listings are delisted"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: Product, listings: list[MarketplaceListing]) -> ProductView:
        fields = {name: getattr(product, name) for name in cls.model_fields if name != "listings"}
        ordered = sorted(listings, key=lambda listing: MARKETPLACES.index(listing.marketplace))
        return cls.model_validate({**fields, "listings": [ListingView.of(listing) for listing in ordered]})


class ProductPage(BaseModel):
    items: list[ProductView] = Field(
        description="At most `limit` products, fewer when more would pass the page's byte budget"
    )
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="The offset of the next page; null when this page holds the last product"
    )


class Delisting(BaseModel):
    """DELETE /products/{id}?delist=true on a live product: it is deleted once these jobs have delisted it."""

    product_id: uuid.UUID
    jobs: list[JobView] = Field(description="One delete job per marketplace the product is live on")
