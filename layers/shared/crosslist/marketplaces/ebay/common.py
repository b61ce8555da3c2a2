"""eBay's Sell APIs as crosslist uses them: paths, the product as eBay takes it, eBay's errors, and the
read that finds a product's offer (every job but a publish starts from it).

A product's inventory item on eBay has crosslist's SKU (from the product id: stable across retries and
relists), and at most one offer per eBay site. The listing id is what marketplace_listings keeps."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from crosslist.errors import InvalidRequest
from crosslist.marketplaces.product_check import checked_product
from crosslist.marketplaces.rest import failure as rest_failure
from crosslist.marketplaces.rest import parsed, sku_of
from crosslist.marketplaces.seller import EBAY_SITES
from crosslist.workflows.base import HttpCall, JobContext, JsonDict, ProductSnapshot, Reply, StepFailed

INVENTORY = "/sell/inventory/v1"
MAX_TITLE = 80  # eBay's limit (crosslist's products allow 200)
MAX_PHOTOS = 24
OFFER_EXISTS = 25002  # createOffer on a SKU that has an offer: the error names the existing offer
NO_OFFER = 25713  # "This Offer is not available": the SKU has no offer (or the offer id is unknown)

EbayCondition = Literal[
    "NEW",
    "LIKE_NEW",
    "NEW_OTHER",
    "NEW_WITH_DEFECTS",
    "CERTIFIED_REFURBISHED",
    "EXCELLENT_REFURBISHED",
    "VERY_GOOD_REFURBISHED",
    "GOOD_REFURBISHED",
    "SELLER_REFURBISHED",
    "USED_EXCELLENT",
    "USED_VERY_GOOD",
    "USED_GOOD",
    "USED_ACCEPTABLE",
    "FOR_PARTS_OR_NOT_WORKING",
    "PRE_OWNED_EXCELLENT",
    "PRE_OWNED_FAIR",
]


class EbayAttributes(BaseModel):
    """marketplace_attributes.ebay of a product."""

    model_config = ConfigDict(extra="forbid")

    category_id: str = Field(pattern=r"^\d{1,10}$", description="eBay's leaf category id")
    condition: EbayCondition
    aspects: dict[str, list[str]] = Field(
        default_factory=dict, description='Item specifics, e.g. {"Brand": ["Levi\'s"]}'
    )
    sku: str | None = Field(
        default=None,
        max_length=50,
        description="The SKU of the product's eBay listing when it was imported (crosslist's own SKU otherwise)",
    )
    outside_inventory_api: bool = Field(
        default=False,
        description="Its eBay listing was made on ebay.com or in Seller Hub: crosslist cannot revise or end it"
        " until it is migrated (POST /imports with migrate_ebay: true; eBay's migration is one-way)",
    )


def ebay_sku(product_id: str, attributes: JsonDict) -> str:
    """The SKU of the product's eBay inventory item: an imported listing's own, else crosslist's."""
    own = attributes.get("sku")
    return str(own) if own else sku_of(product_id)


def check_in_inventory(product: ProductSnapshot, action: str) -> None:
    """InvalidRequest when the product's eBay listing was made outside the Inventory API (imported, not migrated)."""
    if (product.marketplace_attributes.get("ebay") or {}).get("outside_inventory_api"):
        raise InvalidRequest(
            f"this product's eBay listing was made on ebay.com or in Seller Hub: crosslist cannot {action} it until"
            ' it is migrated to eBay\'s Inventory API (POST /imports with marketplaces ["ebay"] and migrate_ebay:'
            " true; eBay's migration is one-way)",
            code="ebay_listing_outside_inventory_api",
        )


def product_input(product: ProductSnapshot | None, action: str) -> JsonDict:
    """What a job writing the product to eBay needs of it; InvalidRequest naming everything missing."""
    product, attributes = checked_product(
        product, "ebay", action, EbayAttributes, max_title=MAX_TITLE, max_photos=MAX_PHOTOS
    )
    aspects = dict(attributes.aspects)
    if product.brand and "Brand" not in aspects:
        aspects["Brand"] = [product.brand]
    return {
        "product_id": product.id,
        "sku": ebay_sku(product.id, attributes.model_dump()),
        "title": product.title,
        "description": product.description or product.title,
        "image_urls": product.image_urls,
        "quantity": product.quantity,
        "price": product.price,
        "currency": product.currency,
        "category_id": attributes.category_id,
        "condition": attributes.condition,
        "aspects": aspects,
    }


def headers(context: JobContext) -> dict[str, str]:
    return {"Content-Language": EBAY_SITES[context.input["seller"]["marketplace_id"]][1]}


def inventory_item(item: JsonDict) -> JsonDict:
    return {
        "availability": {"shipToLocationAvailability": {"quantity": item["quantity"]}},
        "condition": item["condition"],
        "product": {
            "title": item["title"],
            "description": item["description"],
            "imageUrls": item["image_urls"],
            "aspects": item["aspects"],
        },
    }


def put_inventory_item(context: JobContext) -> HttpCall:
    """Create or replace the inventory item: the whole object each time, so sending it again is harmless.
    eBay downloads the photos from their URLs: each is checked first."""
    item = context.input
    path = f"{INVENTORY}/inventory_item/{quote(item['sku'], safe='')}"
    return HttpCall(
        "PUT",
        path,
        "write",
        headers=headers(context),
        json=inventory_item(item),
        repeatable=True,
        photos=tuple(item["image_urls"]),
    )


def offer(context: JobContext) -> JsonDict:
    item, seller = context.input, context.input["seller"]
    return {
        "sku": item["sku"],
        "marketplaceId": seller["marketplace_id"],
        "format": "FIXED_PRICE",
        "availableQuantity": item["quantity"],
        "categoryId": item["category_id"],
        "listingDescription": item["description"],
        "pricingSummary": {"price": {"value": item["price"], "currency": item["currency"]}},
        "listingPolicies": {
            "paymentPolicyId": seller["payment_policy_id"],
            "fulfillmentPolicyId": seller["fulfillment_policy_id"],
            "returnPolicyId": seller["return_policy_id"],
        },
        "merchantLocationKey": seller["merchant_location_key"],
    }


def listing_url(context: JobContext, listing_id: str) -> str:
    return f"https://{EBAY_SITES[context.input['seller']['marketplace_id']][0]}/itm/{listing_id}"


# ---------------------------------------------------------------- eBay's answers
class EbayModel(BaseModel):
    """eBay's JSON names fields in camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ErrorParameter(BaseModel):
    name: str = ""
    value: str = ""


class EbayError(EbayModel):
    error_id: int = 0
    message: str = ""
    long_message: str | None = None
    parameters: list[ErrorParameter] = Field(default_factory=list)


class EbayErrors(EbayModel):
    errors: list[EbayError] = Field(default_factory=list)


def errors_of(reply: Reply) -> list[EbayError]:
    try:
        return EbayErrors.model_validate(reply.result or {}).errors
    except ValidationError:
        return []


def failure(reply: Reply, doing: str) -> StepFailed:
    errors = errors_of(reply)
    message = "; ".join(error.long_message or error.message for error in errors) or None
    detail = {"errors": [error.model_dump(by_alias=True) for error in errors]} if errors else None
    return rest_failure("ebay", reply, doing, message, detail)


def parse[Model: BaseModel](model: type[Model], reply: Reply, doing: str) -> Model:
    return parsed("ebay", model, reply, doing)


class OfferListing(EbayModel):
    listing_id: str | None = None
    listing_status: str | None = None
    sold_quantity: int = 0


class Offer(EbayModel):
    offer_id: str
    sku: str = ""
    marketplace_id: str = ""
    status: str = ""  # PUBLISHED or UNPUBLISHED
    available_quantity: int | None = None
    category_id: str | None = None
    listing: OfferListing | None = None


class Offers(EbayModel):
    offers: list[Offer] = Field(default_factory=list)


def find_offer(context: JobContext) -> HttpCall:
    sku, site = context.input["sku"], context.input["seller"]["marketplace_id"]
    path = f"{INVENTORY}/offer?sku={quote(sku, safe='')}&marketplace_id={site}"
    return HttpCall("GET", path, "read", repeatable=True)


def found_offer(context: JobContext, reply: Reply) -> Offer | None:
    """The product's offer on the seller's eBay site, from find_offer's reply; None when it has none."""
    if not reply.success:
        if reply.status == 404 or any(error.error_id == NO_OFFER for error in errors_of(reply)):
            return None
        raise failure(reply, "reading the offer")
    site = context.input["seller"]["marketplace_id"]
    offers = parse(Offers, reply, "reading the offer").offers
    return next((o for o in offers if o.marketplace_id in ("", site)), None)


def listing_state(found: Offer | None) -> str:
    """What a listing's state is, as marketplace_listings says it, from its offer."""
    if found is None:
        return "deleted"
    if found.status != "PUBLISHED" or found.listing is None:
        return "closed"  # withdrawn (the offer stays, for a relist)
    status = (found.listing.listing_status or "ACTIVE").upper()
    if status == "ACTIVE":
        return "active"
    if status == "OUT_OF_STOCK" or (found.available_quantity == 0 and found.listing.sold_quantity > 0):
        return "sold"
    return "closed"
