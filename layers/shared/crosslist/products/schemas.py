"""Products as the HTTP API accepts and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, PlainSerializer, model_validator

from crosslist.db.models import Product
from crosslist.marketplaces.vinted.publish import MAX_PHOTOS

Money = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2), PlainSerializer(str, return_type=str)]
ImageUrl = Annotated[HttpUrl, Field(max_length=2000)]
MarketplaceAttributes = dict[Annotated[str, Field(pattern="^(vinted|ebay|etsy)$")], dict[str, Any]]


class ProductFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    price: Money
    currency: str = Field(default="EUR", pattern="^[A-Z]{3}$")
    brand: str | None = Field(default=None, max_length=100)
    size: str | None = Field(default=None, max_length=50)
    condition: str | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=50)
    image_urls: list[ImageUrl] = Field(default_factory=list, max_length=MAX_PHOTOS)
    quantity: int = Field(default=1, ge=0, le=10_000)
    sku: str | None = Field(default=None, max_length=100)
    marketplace_attributes: MarketplaceAttributes = Field(default_factory=dict)


class ProductCreate(ProductFields):
    pass


class ProductUpdate(BaseModel):
    """Only the fields present change (PATCH)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    price: Money | None = None
    currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    brand: str | None = Field(default=None, max_length=100)
    size: str | None = Field(default=None, max_length=50)
    condition: str | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=50)
    image_urls: list[ImageUrl] | None = Field(default=None, max_length=MAX_PHOTOS)
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
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductView:
        return cls.model_validate(product, from_attributes=True)


class ProductPage(BaseModel):
    items: list[ProductView]
    total: int
    limit: int
    offset: int
