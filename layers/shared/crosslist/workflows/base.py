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


# How a failure is handled: retried after a backoff (using an attempt), final at once, or by pausing
# the whole lane (the marketplace is throttling the user: no attempt used, the step is sent again later).
FailureKind = Literal["retryable", "permanent", "throttled", "logged_out"]


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
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.kind: FailureKind = kind or ("retryable" if retryable else "permanent")
        self.retry_after_seconds = retry_after_seconds
        self.challenge = challenge

    @property
    def retryable(self) -> bool:
        return self.kind != "permanent"

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
class HttpCall:
    """A direct call to a marketplace's REST API (eBay, Etsy), performed by the engine over httpx."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    url: str
    kind: CallKind
    headers: dict[str, str] | None = None
    json: JsonDict | None = None
    repeatable: bool = False


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
StepAction = PluginCall | HttpCall | Wait | Done


@dataclass(frozen=True)
class Reply:
    """What came back for a step's action: success with the marketplace's JSON, or the error.

    `status` is the marketplace's HTTP status when known (the extension reports Vinted's), and
    `retry_after` its Retry-After in seconds; both None when the call never got an answer.
    """

    success: bool
    result: JsonDict | None
    error: str | None
    status: int | None = None
    retry_after: float | None = None


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

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        """A read telling whether this step's write landed although its reply was lost; None when the
        step is safe to simply send again (a read, a photo upload)."""

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        """The reply to `verify`: the job's data if the write landed, None if it surely did not,
        StepFailed if it cannot be told."""

    def complete(self, context: JobContext) -> Completion:
        """The job's result once every step succeeded."""
