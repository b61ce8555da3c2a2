"""The marketplaces crosslist publishes to and the actions a job can run on each."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, get_args

Marketplace = Literal["vinted", "ebay", "etsy"]
MARKETPLACES: tuple[Marketplace, ...] = get_args(Marketplace)
DISPLAY_NAMES: dict[str, str] = {"vinted": "Vinted", "ebay": "eBay", "etsy": "Etsy"}  # as users write them
# The actions a job can run, per marketplace (ACTION_TYPES below names and tunes each; a test keeps them equal).
VintedAction = Literal["publish", "update", "delete", "sync", "orders", "message", "link_product", "relist", "import"]
RestAction = Literal["publish", "update", "delete", "sync", "sync_orders", "import"]


# Whether a job of the action acts on one product: it must name it, may name it (link_product: an existing
# product, or one it creates), or acts on the whole account and names none.
PRODUCT_USE: dict[str, Literal["required", "optional", "none"]] = {
    "publish": "required",
    "update": "required",
    "delete": "required",
    "relist": "required",
    "link_product": "optional",
    "sync": "none",
    "orders": "none",
    "sync_orders": "none",
    "message": "none",
    "import": "none",
}


class ActionCode(enum.StrEnum):
    """Every action a job can run, on one marketplace or another."""

    PUBLISH = "publish"
    UPDATE = "update"
    DELETE = "delete"
    RELIST = "relist"
    SYNC = "sync"
    ORDERS = "orders"
    SYNC_ORDERS = "sync_orders"
    MESSAGE = "message"
    LINK_PRODUCT = "link_product"
    IMPORT = "import"


class NotAvailable(Exception):
    """No app is registered with this marketplace here (eBay, Etsy): its accounts and jobs cannot run."""


class ReadFailed(Exception):
    """A read from a marketplace's API (outside a job) got no usable answer; the message says why."""


@dataclass(frozen=True)
class ActionType:
    marketplace: Marketplace
    code: str
    name: str
    default_priority: int
    max_attempts: int
    timeout_ms: int  # how long one step may wait on the marketplace (or the Vinted plugin)
    # Who performs its calls: the user's browser extension (commands over the WebSocket, paced like a
    # person, parked while no tab can run them) or the marketplace's REST API, called directly.
    runs_in: Literal["extension", "api"]


def _actions(marketplace: Marketplace, codes: dict[str, str]) -> list[ActionType]:
    runs_in: Literal["extension", "api"] = "extension" if marketplace == "vinted" else "api"
    return [
        ActionType(marketplace, code, name, default_priority=5, max_attempts=3, timeout_ms=60_000, runs_in=runs_in)
        for code, name in codes.items()
    ]


# The one catalogue of actions: every migration run writes it into marketplace_action_types
# (crosslist.db.action_types), so adding an action here is all it takes.
ACTION_TYPES: tuple[ActionType, ...] = (
    *_actions(
        "vinted",
        {
            "publish": "Publish a product",
            "update": "Update a listing",
            "delete": "Delete a listing",
            "sync": "Sync listings",
            "orders": "Import orders",
            "message": "Send a message",
            "link_product": "Link an existing listing to a product",
            "relist": "Relist a listing (a new listing, then the old one deleted)",
            "import": "Import the wardrobe (POST /imports)",
        },
    ),
    *(
        action
        for marketplace in ("ebay", "etsy")
        for action in _actions(
            marketplace,
            {
                "publish": "Publish a product",
                "update": "Update a listing",
                "delete": "Delete a listing",
                "sync": "Sync listings",
                "sync_orders": "Import orders",
                "import": "Import the shop (POST /imports)",
            },
        )
    ),
)

# Lanes whose calls the user's browser extension runs: a tab connecting or becoming ready wakes them.
EXTENSION_MARKETPLACES: tuple[Marketplace, ...] = tuple(
    sorted({action.marketplace for action in ACTION_TYPES if action.runs_in == "extension"})
)
