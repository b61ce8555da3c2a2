"""The one registry of runnable workflows, keyed "{action}_{marketplace}" (e.g. "publish_vinted")."""

from __future__ import annotations

from crosslist.marketplaces.vinted.publish import VintedPublish
from crosslist.workflows.base import Workflow

WORKFLOWS: dict[str, Workflow] = {
    f"{workflow.action}_{workflow.marketplace}": workflow for workflow in (VintedPublish(),)
}


def find_workflow(marketplace: str, action: str) -> Workflow | None:
    return WORKFLOWS.get(f"{action}_{marketplace}")
