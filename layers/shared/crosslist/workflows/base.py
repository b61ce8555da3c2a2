"""What every marketplace workflow provides: its steps, what each step needs done, what a reply means.

A step never performs its call itself: `plan` says what is needed (a command for the Vinted browser
extension, a direct HTTP call for eBay and Etsy, a wait), the engine performs it, and `apply` turns the
reply into the job's data or a classified StepFailed. So the engine alone decides how a call is
carried and when (pacing, parking, backoff, a paused lane).

A write whose reply never came may have landed. It is never blindly sent again: the engine asks the
workflow to `verify` it (a read), and `verified` says whether it landed (the step's data) or surely
did not (None: the write is planned again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from crosslist.errors import InvalidRequest
from crosslist.marketplaces import Marketplace

if TYPE_CHECKING:
    from crosslist.realtime.messages import PhotoDownloadFailure, PluginCommand

JsonDict = dict[str, Any]
# Marketplaces pace and budget calls by kind (a Vinted write is spaced more than a read).
CallKind = Literal["read", "write", "delete"]
# A listing's state on its marketplace (marketplace_listings.status).
ListingState = Literal["active", "sold", "hidden", "reserved", "closed", "deleted"]


@dataclass(frozen=True)
class Step:
    name: str  # stable identifier, e.g. "upload_photo_2"
    description: str  # what the user sees, e.g. "Uploading photo 2 of 3"
    kind: str = ""  # what the step does, e.g. "upload_photo": the workflow dispatches on it
    index: int = 0  # which one, for repeated steps (the photo's position)


# How a failure is handled: retried after a backoff (using an attempt), final at once, or by pausing
# the whole lane (the marketplace is throttling the user: no attempt used, the step is sent again later).
# `reauth`: the marketplace account must be connected again (eBay, Etsy): the lane waits for it.
FailureKind = Literal["retryable", "permanent", "throttled", "logged_out", "reauth"]


class StepFailed(Exception):
    """A step did not succeed. Retryable failures resume at this same step on the next attempt.

    `throttled`: the marketplace limits the user (429, a bot challenge); the lane pauses for
    `retry_after_seconds` when given, else for the engine's pause (longer when `challenge`).
    `logged_out`: the Vinted session expired; the lane waits for the extension to report it is logged in.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = True,
        kind: FailureKind | None = None,
        retry_after_seconds: float | None = None,
        challenge: bool = False,
        detail: JsonDict | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail
        self.kind: FailureKind = kind or ("retryable" if retryable else "permanent")
        self.retry_after_seconds = retry_after_seconds
        self.challenge = challenge

    @property
    def retryable(self) -> bool:
        return self.kind != "permanent"

    @property
    def error(self) -> JsonDict:
        """As the job stores and shows it."""
        error: JsonDict = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return error


@dataclass(frozen=True)
class ProductSnapshot:
    """The product as it was when the user asked for the job: the job publishes exactly this."""

    id: str
    title: str
    description: str
    price: str
    currency: str
    brand: str | None
    size: str | None
    condition: str | None
    color: str | None
    image_urls: list[str]
    quantity: int
    sku: str | None
    marketplace_attributes: JsonDict
    # Its listings: marketplace -> {"external_id", "url", "status", "image_urls"} (the photos it shows).
    listings: dict[str, JsonDict] = field(default_factory=dict)


@dataclass(frozen=True)
class Listed:
    """The listing a completed workflow created or changed on the marketplace."""

    external_id: str
    url: str | None
    status: ListingState = "active"
    image_urls: list[str] | None = None  # the product's photos it now shows; None: as they were


@dataclass(frozen=True)
class ListingRef:
    """One of the user's listings on the lane's marketplace, as the database has it, with its product."""

    product_id: str
    external_id: str
    url: str | None
    status: str
    title: str
    price: str
    # The product's marketplace_attributes for the lane's marketplace (eBay: an imported listing's own SKU).
    attributes: JsonDict = field(default_factory=dict)


@dataclass(frozen=True)
class SeenItem:
    """An item a sync read on the marketplace."""

    external_id: str
    state: str  # as marketplace_listings says it
    title: str
    price: str | None = None  # None: the marketplace's list does not show it
    created: int | None = None  # a number that grows with the item's age on the marketplace: newer is larger


@dataclass(frozen=True)
class Duplicate:
    product_id: str
    listing_id: str  # the product's listing, as crosslist records it
    duplicate_id: str  # the other live item
    duplicate_is_newer: bool


@dataclass(frozen=True)
class ListingChange:
    product_id: str
    status: ListingState


@dataclass(frozen=True)
class Reconciled:
    """What a sync found: the listings to change, and what the job's result reports."""

    changes: list[ListingChange]
    result: JsonDict


@dataclass(frozen=True)
class OrderRecord:
    """A sale on a marketplace, as an orders import found it."""

    external_order_id: str
    item_ids: list[str]
    title: str
    price: str
    currency: str
    buyer: str | None
    status: str
    sold_at: str  # ISO 8601
    product_id: str | None = None  # the product whose listing was sold, when crosslist knows it
    quantity: int = 1  # how many of the product were sold


@dataclass(frozen=True)
class NewProduct:
    """A product a job creates (from a listing found on a marketplace), as the products table holds it."""

    title: str  # at most 200 characters
    description: str
    price: str  # a positive amount in cents, e.g. "27.90"
    currency: str  # ISO 4217, e.g. "EUR"
    brand: str | None = None
    size: str | None = None
    condition: str | None = None
    color: str | None = None
    image_urls: list[str] = field(default_factory=list)
    quantity: int = 1
    sku: str | None = None
    marketplace_attributes: JsonDict = field(default_factory=dict)


@dataclass(frozen=True)
class ImportedItem:
    """A listing an import read on the lane's marketplace, as crosslist would hold it."""

    external_id: str
    state: ListingState
    url: str | None
    # The product it makes; None when crosslist cannot represent it (`skipped` says why).
    product: NewProduct | None
    skipped: str | None = None  # e.g. "variations_not_supported"
    # The seller's SKU on the marketplace, when it has one: the surest match.
    sku: str | None = None
    warnings: tuple[str, ...] = ()
    # The first photo's difference hash (crosslist.imports.photos), when it could be read: the same picture
    # re-hosted by another marketplace tells that two listings are one item.
    photo_hash: str | None = None


class Records(Protocol):
    """What a completing job may read and change, in the transaction that completes it (the lane's user
    on the lane's marketplace)."""

    def listings(self) -> list[ListingRef]: ...

    def update_listings(self, changes: list[ListingChange]) -> None: ...

    def add_orders(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        """Store the orders not stored yet (one per external order id); returns those it stored."""

    def announce(self, message: JsonDict) -> None:
        """A message for the user's connections, sent once the transaction has committed."""

    def create_product(self, fields: NewProduct) -> str:
        """Store a new product of the lane's user; returns its id."""

    def link(self, product_id: str, external_id: str, url: str | None, image_urls: list[str] | None) -> None:
        """The product's listing on the lane's marketplace is now `external_id`, active, showing `image_urls`
        (None: the photos it showed stay as recorded); created, or replacing the one it had."""

    def import_listings(self, import_id: str, items: list[ImportedItem]) -> JsonDict:
        """An import's page: each item read is recorded once ever, and linked to the product it surely is, proposed
        as a match to the user, made a new product, or skipped with its reason. Returns the page's counts."""

    def annotate_listings(self, attributes: dict[str, JsonDict]) -> None:
        """Merge `attributes[external_id]` into the marketplace attributes (for the lane's marketplace) of the
        product whose live listing is that item (an eBay listing migrated into the Inventory API)."""

    def reconcile_catalogue(self, duplicates: list[Duplicate]) -> JsonDict:
        """A sync's last word, after its listings are updated: products with no stock left still live on any
        marketplace are delisted, and `duplicates` (found on the lane's marketplace) are reported. Returns
        more of the job's result."""


@dataclass(frozen=True)
class Completion:
    result: JsonDict
    listing: Listed | None = None
    # What a sync or an import records beyond one listing; returns more of the job's result.
    effects: Callable[[Records], JsonDict] | None = None


@dataclass(frozen=True)
class Again:
    """`apply`'s answer when the step is not finished (one page of many): its data so far is saved (a
    checkpoint: a new invocation resumes from it) and the step is planned again."""

    data: JsonDict
    note: str = ""  # what the user is shown, e.g. "page 2 of 3 read"
    # What this page records (an import's listings), in the transaction that saves the checkpoint: a page is
    # applied once with its checkpoint, or not at all. Returns what is merged into `data`.
    effects: Callable[[Records], JsonDict] | None = None


@dataclass
class JobContext:
    job_id: str
    user_id: str
    input: JsonDict
    accumulated: JsonDict
    step_timeout_ms: int
    # The user's account on the marketplace as the executing tab reported it (Vinted: the user id its
    # extension is logged in as, needed for wardrobe reads); None when unknown.
    account_id: str | None = None


@dataclass(frozen=True)
class PluginCall:
    """Have the user's browser extension run this command (a Vinted web call) and hand back its reply."""

    command: PluginCommand
    kind: CallKind
    # Safe to send again when its reply was lost (a read, or a photo upload: an unused photo id is
    # harmless). A create is not: it may have landed, and a second one is a duplicate listing.
    repeatable: bool = False


@dataclass(frozen=True)
class ImageUpload:
    """A photo sent as multipart/form-data: fetched from the product's URL by the function making the call."""

    image_url: str
    part: str = "image"  # the file part's name
    form: dict[str, str] = field(default_factory=dict)  # the other parts, e.g. {"rank": "1"}


@dataclass(frozen=True)
class HttpCall:
    """A direct call to a marketplace's REST API (eBay, Etsy), performed by the engine with the user's
    OAuth token (crosslist.marketplaces.api). `path` is relative to the marketplace's API base URL."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    kind: CallKind
    headers: dict[str, str] | None = None
    json: JsonDict | None = None
    upload: ImageUpload | None = None
    repeatable: bool = False
    # Photos the marketplace downloads itself from these URLs (eBay): each is checked first, so a broken
    # one fails the job with its URL instead of a listing without it or a vague refusal.
    photos: tuple[str, ...] = ()
    # The answer is a file (eBay's Feed reports are zip files): the reply's result is {"content_base64": ...}.
    binary: bool = False


@dataclass(frozen=True)
class PhotoHashes:
    """Fingerprint these photos (crosslist.imports.photos): the engine downloads each from its public host, outside
    any transaction, and replies {"hashes": {url: hash, or None when it could not be read}}. Not a marketplace call:
    never paced, never sent through the extension, safe to do again."""

    urls: tuple[str, ...]
    kind: CallKind = "read"
    repeatable: bool = True


@dataclass(frozen=True)
class Wait:
    """Nothing to call yet: wake this job again after `seconds` (no Lambda waits meanwhile)."""

    seconds: float
    reason: str = "backoff"


@dataclass(frozen=True)
class Done:
    """The step needs no call: its data is ready (e.g. computed from earlier steps)."""

    data: JsonDict


# What a step can ask the engine for.
StepAction = PluginCall | HttpCall | PhotoHashes | Wait | Done


@dataclass(frozen=True)
class Reply:
    """What came back for a step's action: success with the marketplace's JSON, or the error.

    `status` is the marketplace's HTTP status when known (the extension reports Vinted's), and
    `retry_after` its Retry-After in seconds (on a success: when its rate-limit headers let the next call
    go, if they say the budget is spent); both None when the call never got an answer. `photo_failure`:
    the extension could not download the photo the call uploads, so the marketplace was never called.
    """

    success: bool
    result: JsonDict | None
    error: str | None
    status: int | None = None
    retry_after: float | None = None
    photo_failure: PhotoDownloadFailure | None = None


class Workflow(Protocol):
    marketplace: Marketplace
    action: str

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        """Check the job can run and build its input from the product and the request's action-specific
        `params`; raises InvalidRequest naming what is missing."""

    def steps(self, job_input: JsonDict) -> list[Step]:
        """The steps of this job, in order; the same input always gives the same steps."""

    def plan(self, step: Step, context: JobContext) -> StepAction:
        """What the step needs done; raises StepFailed if it cannot be planned."""

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | Again:
        """The job's accumulated data once the step's reply is in (Again: the step goes on), or StepFailed
        saying what went wrong."""

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        """A read telling whether this step's write landed although its reply was lost; None when the
        step is safe to simply send again (a read, a photo upload)."""

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        """The reply to `verify`: the job's data if the write landed, None if it surely did not,
        StepFailed if it cannot be told."""

    def complete(self, context: JobContext) -> Completion:
        """The job's result once every step succeeded."""


def parse_params[Params: BaseModel](model: type[Params], params: JsonDict | None, needs: str) -> Params:
    """A job's action-specific `params` in the shape `model` expects; else InvalidRequest (422,
    `invalid_params`) saying `needs` and each field's problem."""
    try:
        return model.model_validate(params or {})
    except ValidationError as invalid:
        reasons = "; ".join(f"params.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise InvalidRequest(f"{needs}: {reasons}", code="invalid_params") from None
