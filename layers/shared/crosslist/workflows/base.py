"""What every marketplace workflow provides: its steps, what each step needs done, what a reply means.

A step never performs its call itself: `plan` says what is needed (for Vinted, a command for the
browser extension), the engine performs it, and `apply` turns the reply into the job's data or a
StepFailed. So the engine alone decides how a call is carried (and, later, when: pacing, parking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from crosslist.marketplaces import Marketplace

if TYPE_CHECKING:
    from crosslist.realtime.messages import PluginCommand

JsonDict = dict[str, Any]
# Marketplaces pace and budget calls by kind (a Vinted write is spaced more than a read).
CallKind = Literal["read", "write", "delete"]


@dataclass(frozen=True)
class Step:
    name: str  # stable identifier, e.g. "upload_photo_2"
    description: str  # what the user sees, e.g. "Uploading photo 2 of 3"
    kind: str = ""  # what the step does, e.g. "upload_photo": the workflow dispatches on it
    index: int = 0  # which one, for repeated steps (the photo's position)


class StepFailed(Exception):
    """A step did not succeed. Retryable failures resume at this same step on the next attempt."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable

    @property
    def error(self) -> JsonDict:
        """As the job stores and shows it."""
        return {"code": self.code, "message": self.message}


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


@dataclass(frozen=True)
class Listed:
    """The listing a completed workflow created or changed on the marketplace."""

    external_id: str
    url: str | None


@dataclass(frozen=True)
class Completion:
    result: JsonDict
    listing: Listed | None = None


@dataclass
class JobContext:
    job_id: str
    user_id: str
    input: JsonDict
    accumulated: JsonDict
    step_timeout_ms: int


@dataclass(frozen=True)
class PluginCall:
    """Have the user's browser extension run this command (a Vinted web call) and hand back its reply."""

    command: PluginCommand
    kind: CallKind
    # Safe to send again when its reply was lost (a read, or a photo upload: an unused photo id is
    # harmless). A create is not: it may have landed, and a second one is a duplicate listing.
    repeatable: bool = False


# What a step can ask the engine for; eBay and Etsy steps will add direct HTTP calls.
StepAction = PluginCall


@dataclass(frozen=True)
class Reply:
    """What came back for a step's action: success with the marketplace's JSON, or the error."""

    success: bool
    result: JsonDict | None
    error: str | None


class Workflow(Protocol):
    marketplace: Marketplace
    action: str
    needs_product: bool

    def prepare(self, product: ProductSnapshot | None) -> JsonDict:
        """Check the job can run and build its input; raises InvalidRequest naming what is missing."""

    def steps(self, job_input: JsonDict) -> list[Step]:
        """The steps of this job, in order; the same input always gives the same steps."""

    def plan(self, step: Step, context: JobContext) -> StepAction:
        """What the step needs done; raises StepFailed if it cannot be planned."""

    def apply(self, step: Step, context: JobContext, reply: Reply) -> JsonDict:
        """The job's accumulated data once the step's reply is in, or StepFailed saying what went wrong."""

    def complete(self, context: JobContext) -> Completion:
        """The job's result once every step succeeded."""
