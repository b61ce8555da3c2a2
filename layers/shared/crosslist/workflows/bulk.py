"""Steps one call can carry for several jobs of a batch (eBay's bulk calls): what a workflow offers for them.

The engine (crosslist.jobs.bulk) plans one call for the batch's jobs waiting in the lane at the same step (up to
`max_bulk`, the job holding the lane first), records which jobs the call carries, and hands each job its own part
of the reply, as `apply` would have answered it: a job the marketplace refused fails alone, the others go on.
A workflow without these methods, a job alone or outside a batch, a write being verified: one call per job.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from crosslist.workflows.base import HttpCall, JobContext, JsonDict, Reply, Step, StepFailed, Workflow


@runtime_checkable
class BulkWorkflow(Workflow, Protocol):
    max_bulk: int  # the most jobs one call carries (eBay: 25)

    def bulk_group(self, step: Step, context: JobContext) -> str | None:
        """Jobs at this step whose groups are equal may share one call (e.g. the step's kind and the eBay site);
        None: the step goes alone."""

    def bulk_key(self, step: Step, context: JobContext) -> str:
        """What the marketplace's reply names the job's item by at this step (eBay: its SKU, or its offer id)."""

    def bulk_plan(self, step: Step, contexts: list[JobContext]) -> HttpCall:
        """The one call doing the step for every job of `contexts` (all of one group, the lane's job first)."""

    def bulk_apply(
        self, step: Step, contexts: list[JobContext], outcome: Reply | StepFailed
    ) -> dict[str, JsonDict | StepFailed]:
        """Each job's part of the call's reply, by job id: its data (as `apply` returns it) or its own failure. A job
        left out was not carried out (its step goes again as it is), e.g. when the call was never sent because of
        another job's photo (`outcome` is then why). Raises StepFailed when the call failed as a whole."""


def bulk_of(workflow: Workflow | None) -> BulkWorkflow | None:
    """The workflow, when some of its steps can go in bulk."""
    return workflow if isinstance(workflow, BulkWorkflow) else None
