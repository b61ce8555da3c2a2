"""What every marketplace workflow provides, and what its steps may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from crosslist.marketplaces import Marketplace

if TYPE_CHECKING:
    from crosslist.realtime.relay import PluginRelay

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Step:
    name: str  # stable identifier, e.g. "upload_photo_2"
    description: str  # what the user sees, e.g. "Uploading photo 2 of 3"


class StepFailed(Exception):
    """A step did not succeed. Retryable failures resume at this same step on the next attempt."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable

    @property
    def error(self) -> str:
        return f"{self.code}: {self.message}"


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
class StepTools:
    """How a step talks to a marketplace. Vinted steps go through the browser extension."""

    plugin: PluginRelay


class Workflow(Protocol):
    marketplace: Marketplace
    action: str
    needs_product: bool

    def prepare(self, product: ProductSnapshot | None) -> JsonDict:
        """Check the job can run and build its input; raises InvalidRequest naming what is missing."""

    def steps(self, job_input: JsonDict) -> list[Step]:
        """The steps of this job, in order; the same input always gives the same steps."""

    def run_step(self, step: Step, context: JobContext, tools: StepTools) -> JsonDict:
        """Perform one step; returns the new accumulated data, or raises StepFailed."""

    def complete(self, context: JobContext) -> Completion:
        """The job's result once every step succeeded."""
