"""The one registry of runnable workflows, keyed "{action}_{marketplace}" (e.g. "publish_vinted")."""

from __future__ import annotations

from crosslist.marketplaces.ebay.imports import EbayImport
from crosslist.marketplaces.ebay.publish import EbayPublish
from crosslist.marketplaces.ebay.revise import EbayDelete, EbayUpdate
from crosslist.marketplaces.ebay.sync import EbayOrders, EbaySync
from crosslist.marketplaces.etsy.imports import EtsyImport
from crosslist.marketplaces.etsy.publish import EtsyPublish
from crosslist.marketplaces.etsy.revise import EtsyDelete, EtsyUpdate
from crosslist.marketplaces.etsy.sync import EtsyOrders, EtsySync
from crosslist.marketplaces.vinted.delete import VintedDelete
from crosslist.marketplaces.vinted.imports import VintedImport
from crosslist.marketplaces.vinted.link import VintedLink
from crosslist.marketplaces.vinted.message import VintedMessage
from crosslist.marketplaces.vinted.orders import VintedOrders
from crosslist.marketplaces.vinted.publish import VintedPublish
from crosslist.marketplaces.vinted.relist import VintedRelist
from crosslist.marketplaces.vinted.sync import VintedSync
from crosslist.marketplaces.vinted.update import VintedUpdate
from crosslist.workflows.base import Workflow

WORKFLOWS: dict[str, Workflow] = {
    f"{workflow.action}_{workflow.marketplace}": workflow
    for workflow in (
        VintedPublish(),
        VintedUpdate(),
        VintedDelete(),
        VintedSync(),
        VintedOrders(),
        VintedMessage(),
        VintedRelist(),
        VintedLink(),
        VintedImport(),
        EbayPublish(),
        EbayUpdate(),
        EbayDelete(),
        EbaySync(),
        EbayOrders(),
        EbayImport(),
        EtsyPublish(),
        EtsyUpdate(),
        EtsyDelete(),
        EtsySync(),
        EtsyOrders(),
        EtsyImport(),
    )
}


def find_workflow(marketplace: str, action: str) -> Workflow | None:
    return WORKFLOWS.get(f"{action}_{marketplace}")
