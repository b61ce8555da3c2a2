"""What Vinted's paged reads (the wardrobe, my_orders) share: the pagination they answer with, the page a
job is at, and the checkpoint after each page (`Again`: the same step reads the next page)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from crosslist.workflows.base import Again, JobContext, JsonDict, ProductSnapshot, Reply, Step, StepAction


class Pagination(BaseModel):
    current_page: int = Field(ge=1)
    total_pages: int = Field(ge=0)


def page_number(context: JobContext) -> int:
    """The page the job reads next (1 first)."""
    return int(context.accumulated.get("next_page", 1))


def after_page(context: JobContext, data: JsonDict, pagination: Pagination) -> JsonDict | Again:
    """The job's data once this page is read: the last page ends the step, any other is a checkpoint."""
    number = page_number(context)
    if number < pagination.total_pages:
        return Again({**data, "next_page": number + 1}, note=f"page {number} of {pagination.total_pages} read")
    return data


class PagedRead:
    """A workflow that only reads: no product, and nothing to verify (a read is simply repeated)."""

    def prepare(self, product: ProductSnapshot | None, params: JsonDict | None = None) -> JsonDict:
        return {}

    def verify(self, step: Step, context: JobContext) -> StepAction | None:
        return None

    def verified(self, step: Step, context: JobContext, reply: Reply) -> JsonDict | None:
        return None
