"""The plugin simulator: connects to the backend's WebSocket like the web app + browser extension,
says its extension is ready (`plugin_status`) and answers plugin commands against an in-memory fake
Vinted, so a publish completes without a browser. Like the web app, it reconnects (with backoff)
when the connection is lost, e.g. when the devstack restarts.

See docs/websocket-protocol.md for the messages. Started by `crosslist dev plugin`, which calls
`main_loop`; tests drive `run_plugin` and `VintedSimulator` directly.

`VintedSimulator` is the one fake of Vinted: the devstack, the bench and the tests (through
tests/support/fakes.py's FakeVinted) share it, with its wardrobe and its injected failures (HTTP
statuses as the real extension reports them: 503, 429 with Retry-After, a DataDome 403, 401).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from random import Random
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

import aiohttp
from yarl import URL

from devstack.fake_state import IdSequence, load_state, save_state
from devstack.shops import VintedItem

JsonDict = dict[str, Any]
ImageFetcher = Callable[[str], Awaitable[bytes]]
TokenSource = str | Callable[[], str]  # a token, or what mints a fresh one for each connection
# What runs beside the simulator's connection with its fake Vinted (devstack.plugin_control's endpoint).
ControlServer = Callable[["VintedSimulator"], contextlib.AbstractAsyncContextManager[object]]

PHOTOS_PATH = "/api/v2/photos"
ITEMS_PATH = "/api/v2/item_upload/items"
ITEM_URL = "https://www.vinted.fr/items/{id}"
SEED_IMAGE_URL = "https://images.vinted.test/seed"  # where `add_item`'s default photo is
FIRST_PHOTO_ID = 9001
FIRST_ITEM_ID = 4242
FIRST_TRANSACTION_ID = 700001
FIRST_REPLY_ID = 50001
WARDROBE_MAX_PER_PAGE = 96  # Vinted's cap
WARDROBE_PER_PAGE = 20  # when the query does not say
ORDERS_MAX_PER_PAGE = 100  # Vinted's cap
ORDERS_PER_PAGE = 20  # when the query does not say
# An item's state as Vinted keeps it (every stored item has these keys), as it is when just listed.
ITEM_STATE: dict[str, Any] = {
    "is_closed": False,
    "item_closing_action": None,  # "sold" once sold
    "is_hidden": False,
    "is_draft": False,
    "is_reserved": False,
    "view_count": 0,
    "favourite_count": 0,
}
VINTED_USER_ID = "devstack-1"  # the Vinted account the simulated extension is logged in as
# An item's condition as the wardrobe writes it (`status`), by the status_id a create sends.
STATUS_TITLES = {6: "New with tags", 1: "New without tags", 2: "Very good", 3: "Good", 4: "Satisfactory"}
MAX_ERROR_LENGTH = 2000  # the backend refuses a longer `error`
EXTENSION_VERSION = "devstack-simulator/1"  # what plugin_status says the "extension" is
MAX_IMAGE_BYTES = 20 * 1024 * 1024
IMAGE_TIMEOUT_SECONDS = 30.0

# A failure to inject. The first six fail the call before it lands; "lost_reply" carries the call out
# but its answer never reaches the backend (a timeout, a tab closed after the write); "no_reply" neither
# carries it out nor answers.
Fault = Literal[
    "unavailable", "server_error", "throttled", "challenge", "logged_out", "network", "lost_reply", "no_reply"
]

# How each failure is reported: Vinted's HTTP status (None: Vinted was never reached) and its text.
FAILURES: dict[Fault, tuple[int | None, str]] = {
    "unavailable": (503, "Vinted answered 503 Service Unavailable: please try again later"),
    "throttled": (429, "Vinted answered 429 Too Many Requests: slow down"),
    "server_error": (500, "Vinted answered 500 Internal Server Error"),
    "logged_out": (401, "Vinted answered 401 Unauthorized: the Vinted session has expired"),
    "network": (None, "network error: the connection to Vinted was reset"),
    # DataDome's answer to a request it takes for a bot: the URL of its captcha page.
    "challenge": (403, '{"url":"https://geo.captcha-delivery.com/captcha/?initialCid=devstack&cid=devstack"}'),
}
# What `failure_rate` picks from: calls that fail for no fault of the request.
RANDOM_FAILURES: tuple[Fault, ...] = ("unavailable", "throttled", "server_error", "logged_out", "network")


@dataclass(frozen=True)
class VintedReply:
    """What the extension reports for one call, as its `plugin_result` carries it."""

    success: bool
    result: JsonDict | None = None
    error: str | None = None
    status: int | None = None  # Vinted's HTTP status; None when Vinted was never reached
    retry_after: float | None = None  # Vinted's Retry-After (seconds)
    answered: bool = True  # False: the backend never hears of it (no plugin_result is sent)
    # The photo the extension could not download (Vinted was not called), and how its download failed.
    image_url: str | None = None
    image_failure: ImageFailure | None = None

    def message(self, request_id: str) -> JsonDict:
        """The `plugin_result` message."""
        message: JsonDict = {"action": "plugin_result", "request_id": request_id, "success": self.success}
        if self.success:
            message["result"] = self.result
        else:
            message["error"] = (self.error or "the browser extension reported a failure")[:MAX_ERROR_LENGTH]
        if self.status is not None:
            message["status"] = self.status
        if self.retry_after is not None:
            message["retry_after"] = self.retry_after
        if self.image_url is not None and self.image_failure is not None:
            message |= {"error_kind": "image", "image_url": self.image_url}
            if self.image_failure.status is not None:
                message["image_status"] = self.image_failure.status
            if self.image_failure.error is not None:
                message["image_error"] = self.image_failure.error
        return message


@dataclass(frozen=True)
class ImageFailure:
    """How downloading a photo failed, as the extension reports it (docs/websocket-protocol.md)."""

    status: int | None = None  # the image host's HTTP status, when it answered
    error: str | None = None  # why, when the status does not say: unknown_host, timeout, not_an_image…

    def reply(self, image_url: str, detail: str = "") -> VintedReply:
        """The extension's failed result for a photo it could not download: Vinted was not called (no status)."""
        said = ", ".join(part for part in (f"HTTP {self.status}" if self.status else "", self.error or "") if part)
        error = f"could not download image {image_url}: {detail or said or 'failed'}"
        return VintedReply(False, error=error, image_url=image_url, image_failure=self)


def _ok(result: JsonDict) -> VintedReply:
    return VintedReply(True, result, status=200)


def _refused(status: int | None, error: str) -> VintedReply:
    return VintedReply(False, error=error, status=status)


class ImageDownloadError(Exception):
    """An image of a photo command could not be downloaded: `failure` says how, as the extension reports it."""

    def __init__(self, message: str, failure: ImageFailure) -> None:
        super().__init__(message)
        self.failure = failure


class PluginConnectionError(Exception):
    """The simulator could not open its WebSocket to the backend."""


class PluginConnectionRefused(PluginConnectionError):
    """The backend refused the WebSocket upgrade (401): the token is missing, invalid or expired."""


class PluginUnreachable(PluginConnectionError):
    """Nothing answered at the WebSocket URL (connection refused, unknown host, timeout)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url


@dataclass
class VintedSimulator:
    """In-memory Vinted for one account: its photos, its items (with their state: sold, hidden,
    reserved…), its sales and its conversations, and the failures it is told to inject. The one fake
    of Vinted: the devstack and the bench drive it through `run_plugin` (`execute`), tests through
    tests/support/fakes.py's FakeVinted (`perform`), seeding it with `add_item`, `sell`, `hide`,
    `reserve`, `remove` and `open_conversation`.

    It answers, as ../shared/MARKETPLACES.md describes Vinted: POST /api/v2/photos, POST
    /api/v2/item_upload/items (create), GET and PUT /api/v2/item_upload/items/{id}, POST
    /api/v2/items/{id}/delete, GET /api/v2/wardrobe/{user}/items, GET /api/v2/my_orders and POST
    /api/v2/conversations/{id}/replies. Anything else is a 404."""

    latency_ms: int = 200  # how long each call 'takes'
    failure_rate: float = 0.0  # 0..1 probability a call fails with one of RANDOM_FAILURES
    random: Random = field(default_factory=Random)  # injectable for deterministic tests
    vinted_user_id: str = VINTED_USER_ID  # the account whose wardrobe this is
    retry_after: float | None = 60.0  # the Retry-After a 429 carries (None: no header)
    relogin_ms: int = 1000  # after the backend says the tab is logged out, how long the 'user' takes to log in
    # False: ids from FIRST_ITEM_ID etc., the same in every run (tests pin them). True: never an id that an
    # earlier run handed out (see devstack.fake_state), as `crosslist dev plugin` needs: the database outlives it.
    unique_ids: bool = False
    faults: dict[str, list[Fault]] = field(default_factory=dict)  # step name -> failures to inject, in order
    # image URL -> how downloading it fails (without any download: tests say which photos are broken)
    broken_images: dict[str, ImageFailure] = field(default_factory=dict)
    photos: dict[int, str] = field(default_factory=dict)  # photo id -> image url
    # item id -> the item as uploaded (colours as color_ids), plus id, url, photo_ids, upload_session_id
    # and its state (ITEM_STATE's keys: is_closed, item_closing_action, is_hidden, … favourite_count)
    items: dict[int, JsonDict] = field(default_factory=dict)
    # transaction id -> the sale as GET /api/v2/my_orders shows it (see `sell`)
    orders: dict[int, JsonDict] = field(default_factory=dict)
    # conversation id (digits) -> the replies posted to it, oldest first: {"id", "body", "conversation_id"}
    conversations: dict[str, list[JsonDict]] = field(default_factory=dict)
    seeded: dict[str, int] = field(default_factory=dict)  # devstack.shops key -> item id (seed_wardrobe)
    _photo_ids: IdSequence = field(init=False, repr=False)
    _item_ids: IdSequence = field(init=False, repr=False)
    _transaction_ids: IdSequence = field(init=False, repr=False)
    _reply_ids: IdSequence = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms}")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be between 0 and 1, not {self.failure_rate}")
        self._photo_ids = IdSequence(FIRST_PHOTO_ID, unique=self.unique_ids)
        self._item_ids = IdSequence(FIRST_ITEM_ID, unique=self.unique_ids)
        self._transaction_ids = IdSequence(FIRST_TRANSACTION_ID, unique=self.unique_ids)
        self._reply_ids = IdSequence(FIRST_REPLY_ID, unique=self.unique_ids)

    # --- the account across runs (`crosslist dev plugin` saves it on exit, loads it on start) ---

    def state(self) -> JsonDict:
        """The account as JSON: photos, items, sales, conversations and the last id of each kind."""
        return {
            "photos": {str(photo_id): url for photo_id, url in self.photos.items()},
            "items": list(self.items.values()),
            "orders": list(self.orders.values()),
            "conversations": self.conversations,
            "seeded": self.seeded,
            "last_ids": {
                "photo": self._photo_ids.last,
                "item": self._item_ids.last,
                "transaction": self._transaction_ids.last,
                "reply": self._reply_ids.last,
            },
        }

    def restore(self, state: JsonDict) -> None:
        """Take back the account `state` gave (on a simulator that has not been used yet)."""
        self.photos.update({int(photo_id): url for photo_id, url in state.get("photos", {}).items()})
        self.items.update({int(item["id"]): item for item in state.get("items", [])})
        self.orders.update({int(order["transaction_id"]): order for order in state.get("orders", [])})
        self.conversations.update(state.get("conversations", {}))
        self.seeded.update({key: int(item_id) for key, item_id in state.get("seeded", {}).items()})
        last = state.get("last_ids", {})
        self._photo_ids.resume_after(int(last.get("photo", 0)))
        self._item_ids.resume_after(int(last.get("item", 0)))
        self._transaction_ids.resume_after(int(last.get("transaction", 0)))
        self._reply_ids.resume_after(int(last.get("reply", 0)))

    # --- seeding and changing the account, for tests (what the user or a buyer does on the site) ---

    def add_item(
        self,
        title: str,
        price: str = "20.00",
        *,
        currency: str = "EUR",
        photo_urls: list[str] | None = None,
        **fields: Any,
    ) -> int:
        """An item listed on the site, as a create would store it: a photo for each of `photo_urls`
        (default: one), then the item with `fields` (description, brand_id, size_id, catalog_id,
        status_id, color_ids, package_size_id, item_attributes…; ITEM_STATE's keys such as is_draft or
        view_count set its state). Its id."""
        state = {name: fields.pop(name) for name in list(fields) if name in ITEM_STATE}
        urls = [f"{SEED_IMAGE_URL}/{quote(title, safe='')}.jpg"] if photo_urls is None else photo_urls
        photo_ids = [self._store_photo(url) for url in urls]
        item = {"title": title, "description": "", "price": price, "currency": currency, **fields}
        item["assigned_photos"] = [{"id": photo_id, "orientation": 0} for photo_id in photo_ids]
        reply = self._create_item({"item": item, "upload_session_id": None})
        if not reply.success or reply.result is None:
            raise ValueError(f"cannot add item {title!r}: {reply.error}")
        item_id = int(reply.result["item"]["id"])
        self.items[item_id].update(state)
        return item_id

    def sell(
        self, item_id: int, *, buyer: str = "buyer-1", price: str | None = None, at: datetime | None = None
    ) -> int:
        """A buyer bought the item (at its price unless `price` says, `at` now unless given): it is closed
        as sold and the sale is in `orders`. The transaction id."""
        item = self.items[item_id]
        if item["is_closed"]:
            raise ValueError(f"item {item_id} is already closed ({item['item_closing_action']})")
        item.update(is_closed=True, item_closing_action="sold", is_reserved=False)
        when = at or datetime.now(UTC)
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        transaction_id = next(self._transaction_ids)
        self.orders[transaction_id] = {
            "transaction_id": transaction_id,
            "item_id": item_id,
            "title": item.get("title"),
            "price": _money(item.get("price") if price is None else price, item.get("currency")),
            "status": "completed",
            "date": when.isoformat(timespec="seconds"),
            "buyer": {"login": buyer},
        }
        return transaction_id

    def seed_wardrobe(self, items: Iterable[VintedItem]) -> dict[str, str]:
        """The account's items listed on the site before crosslist (devstack.shops), each in its state: active,
        sold (closed, with its sale in `orders`), hidden, reserved or draft; with the brand, size and condition
        the wardrobe shows. Each item's key -> its id; a key seeded before keeps its item (seeding again adds
        nothing)."""
        ids: dict[str, str] = {}
        for seeded in items:
            item_id = self.seeded.get(seeded.key)
            if item_id is None:
                item_id = self.seeded[seeded.key] = self._seed_item(seeded)
            ids[seeded.key] = str(item_id)
        return ids

    def _seed_item(self, seeded: VintedItem) -> int:
        photo_ids = [self._store_photo(url) for url in seeded.photos]
        item_id = next(self._item_ids)
        self.items[item_id] = {
            "title": seeded.title,
            "description": seeded.description,
            "price": seeded.price,
            "currency": seeded.currency,
            "brand_title": seeded.brand,
            "size_title": seeded.size,
            "status": seeded.status,
            "status_id": seeded.status_id,
            "catalog_id": seeded.catalog_id,
            "color_ids": [],
            "id": item_id,
            "url": ITEM_URL.format(id=item_id),
            "photo_ids": photo_ids,
            "upload_session_id": None,
            **ITEM_STATE,
            "is_hidden": seeded.state == "hidden",
            "is_reserved": seeded.state == "reserved",
            "is_draft": seeded.state == "draft",
            "view_count": 3 * len(seeded.title),
            "favourite_count": len(seeded.title) % 7,
        }
        if seeded.state == "sold":
            self.sell(item_id, buyer=f"buyer-{item_id % 97}")
        return item_id

    def hide(self, item_id: int) -> None:
        """The user hid the item on the site."""
        self.items[item_id]["is_hidden"] = True

    def reserve(self, item_id: int) -> None:
        """The user reserved the item for a buyer."""
        self.items[item_id]["is_reserved"] = True

    def remove(self, item_id: int) -> None:
        """The item is gone from Vinted (the user deleted it on the site, or Vinted removed it)."""
        del self.items[item_id]

    def open_conversation(self, conversation_id: str) -> None:
        """A buyer wrote: the conversation exists and can be replied to."""
        if not _is_id(conversation_id):
            raise ValueError(f"a conversation id is a string of digits, not {conversation_id!r}")
        self.conversations.setdefault(conversation_id, [])

    # --- executing commands ---

    async def execute(self, command: JsonDict, fetch_image: ImageFetcher, *, fault: Fault | None = None) -> VintedReply:
        """Perform one `plugin.command` (its step, method, path and payload) as the extension would: after
        `latency_ms`, downloading a photo's image first. `fault` (else the step's next scripted fault,
        else a random one) makes it fail."""
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        fault = self._fault(command, fault)
        if fault in (None, "lost_reply") and _is_photo_upload(command):
            failed = self._broken_image(command) or await _download_failure(command.get("payload"), fetch_image)
            if failed is not None:
                return failed
        return self._receive(command, fault)

    def perform(self, command: JsonDict, *, fault: Fault | None = None) -> VintedReply:
        """The same at once and without downloading images (only `broken_images` fail): for tests that answer
        synchronously."""
        fault = self._fault(command, fault)
        broken = self._broken_image(command) if fault in (None, "lost_reply") else None
        return broken or self._receive(command, fault)

    def _broken_image(self, command: JsonDict) -> VintedReply | None:
        """The failed result of a photo upload whose image is one of `broken_images`."""
        payload = command.get("payload")
        image_url = payload.get("image_url") if isinstance(payload, dict) else None
        failure = self.broken_images.get(image_url) if isinstance(image_url, str) else None
        if failure is None or not _is_photo_upload(command):
            return None
        assert isinstance(image_url, str)
        return failure.reply(image_url)

    def _fault(self, command: JsonDict, fault: Fault | None) -> Fault | None:
        if fault is not None:
            return fault
        scripted = self.faults.get(str(command.get("step")))
        if scripted:
            return scripted.pop(0)
        if self.failure_rate and self.random.random() < self.failure_rate:
            return self.random.choice(RANDOM_FAILURES)
        return None

    def _receive(self, command: JsonDict, fault: Fault | None) -> VintedReply:
        if fault == "no_reply":
            return VintedReply(False, error="the extension never answered", answered=False)
        if fault is not None and fault != "lost_reply":
            status, error = FAILURES[fault]
            return VintedReply(
                False, error=error, status=status, retry_after=self.retry_after if status == 429 else None
            )
        reply = self._carry_out(command)
        return replace(reply, answered=False) if fault == "lost_reply" else reply

    def _carry_out(self, command: JsonDict) -> VintedReply:
        method = str(command.get("method", "")).upper()
        path = str(command.get("path"))
        target = urlsplit(path)
        query = parse_qs(target.query)
        payload = command.get("payload")
        match (method, *target.path.strip("/").split("/")):
            case ("POST", "api", "v2", "photos"):
                return self._upload_photo(payload)
            case ("POST", "api", "v2", "item_upload", "items"):
                return self._create_item(payload)
            case ("GET", "api", "v2", "item_upload", "items", item_id) if _is_id(item_id):
                return self._get_item(int(item_id))
            case ("PUT", "api", "v2", "item_upload", "items", item_id) if _is_id(item_id):
                return self._update_item(int(item_id), payload)
            case ("POST", "api", "v2", "items", item_id, "delete") if _is_id(item_id):
                return self._delete_item(int(item_id))
            case ("GET", "api", "v2", "wardrobe", user_id, "items"):
                return self._wardrobe(unquote(user_id), query)
            case ("GET", "api", "v2", "my_orders"):
                return self._my_orders(query)
            case ("POST", "api", "v2", "conversations", conversation_id, "replies") if _is_id(conversation_id):
                return self._reply(conversation_id, payload)
        return _refused(404, f"unsupported path {method} {path}")

    def _upload_photo(self, payload: Any) -> VintedReply:
        image_url = payload.get("image_url") if isinstance(payload, dict) else None
        if not isinstance(image_url, str) or not image_url:
            return _refused(400, "invalid payload for photo upload: missing image_url")
        return _ok({"id": self._store_photo(image_url), "url": image_url})

    def _store_photo(self, image_url: str) -> int:
        photo_id = next(self._photo_ids)
        self.photos[photo_id] = image_url
        return photo_id

    def _create_item(self, payload: Any) -> VintedReply:
        item = payload.get("item") if isinstance(payload, dict) else None
        if not isinstance(item, dict):
            return _refused(400, "invalid payload for item upload: missing item")
        photo_ids = self._assigned_photo_ids(item, "item upload")
        if isinstance(photo_ids, VintedReply):
            return photo_ids
        item_id = next(self._item_ids)
        url = ITEM_URL.format(id=item_id)
        self.items[item_id] = {
            **_uploaded(item),
            "id": item_id,
            "url": url,
            "photo_ids": photo_ids,
            "upload_session_id": payload.get("upload_session_id"),
            **ITEM_STATE,
        }
        return _ok({"item": {"id": item_id, "url": url}})

    def _get_item(self, item_id: int) -> VintedReply:
        item = self._editable(item_id)
        if item is None:
            return _item_not_found(item_id)
        colours = list(item.get("color_ids") or [])
        return _ok(
            {
                "item": {
                    "id": item_id,
                    "title": item.get("title"),
                    "description": item.get("description"),
                    "price": _amount(item.get("price")),
                    "currency": item.get("currency") or "EUR",
                    "brand_id": item.get("brand_id"),
                    "size_id": item.get("size_id"),
                    "catalog_id": item.get("catalog_id"),
                    "status_id": item.get("status_id"),
                    "package_size_id": item.get("package_size_id"),
                    "is_unisex": bool(item.get("is_unisex")),
                    "item_attributes": copy.deepcopy(item.get("item_attributes") or []),
                    "color1_id": colours[0] if colours else None,
                    "color2_id": colours[1] if len(colours) > 1 else None,
                    "photos": self._photos(item),
                    "url": item["url"],
                }
            }
        )

    def _update_item(self, item_id: int, payload: Any) -> VintedReply:
        item = self._editable(item_id)
        if item is None:
            return _item_not_found(item_id)
        fields = payload.get("item") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            return _refused(400, "invalid payload for item update: missing item")
        if _as_int(fields.get("id")) != item_id:
            return _refused(422, f"item.id {fields.get('id')!r} is not the id of item {item_id} being updated")
        photo_ids = self._assigned_photo_ids(fields, "item update")
        if isinstance(photo_ids, VintedReply):
            return photo_ids
        kept = {name: item[name] for name in ("id", "url", "upload_session_id", *ITEM_STATE)}
        self.items[item_id] = {**_uploaded(fields), **kept, "photo_ids": photo_ids}
        return _ok({"item": {"id": item_id, "url": item["url"]}})

    def _delete_item(self, item_id: int) -> VintedReply:
        if self.items.pop(item_id, None) is None:
            return _item_not_found(item_id)
        return _ok({"code": 0})

    def _wardrobe(self, user_id: str, query: dict[str, list[str]]) -> VintedReply:
        if user_id != self.vinted_user_id:
            # The only member this Vinted knows is its own account: a wrong id must not look like "no items".
            return _refused(404, f"no Vinted member {user_id!r}")
        newest = sorted(self.items.values(), key=lambda item: int(item["id"]), reverse=True)
        shown, pagination = _page(newest, query, WARDROBE_PER_PAGE, WARDROBE_MAX_PER_PAGE)
        return _ok({"items": [self._listing(item) for item in shown], "pagination": pagination})

    def _listing(self, item: JsonDict) -> JsonDict:
        """An item as the wardrobe shows it: no description (Vinted's has none), the brand, size and condition
        as text ("" when this fake does not know them: it has no catalogue to name brand_id or size_id)."""
        return {
            "id": item["id"],
            "title": item.get("title"),
            "price": _money(item.get("price"), item.get("currency")),
            "photos": [{**photo, "full_size_url": photo["url"]} for photo in self._photos(item)],
            "url": item["url"],
            "brand_title": item.get("brand_title") or "",
            "size_title": item.get("size_title") or "",
            "status": item.get("status") or STATUS_TITLES.get(_as_int(item.get("status_id")) or 0, ""),
            **{name: item[name] for name in ITEM_STATE},
        }

    def _my_orders(self, query: dict[str, list[str]]) -> VintedReply:
        kind = query.get("type", ["sold"])[0]
        status = query.get("status", ["all"])[0]
        # This account only sells, and every sale here is completed.
        sales = list(self.orders.values()) if kind == "sold" and status in ("all", "completed") else []
        newest = sorted(sales, key=lambda order: (order["date"], order["transaction_id"]), reverse=True)
        shown, pagination = _page(newest, query, ORDERS_PER_PAGE, ORDERS_MAX_PER_PAGE)
        return _ok({"my_orders": copy.deepcopy(shown), "pagination": pagination})

    def _reply(self, conversation_id: str, payload: Any) -> VintedReply:
        replies = self.conversations.get(conversation_id)
        if replies is None:
            return _refused(404, f"Vinted answered 404 Not Found: conversation {conversation_id} was not found")
        reply = payload.get("reply") if isinstance(payload, dict) else None
        if not isinstance(reply, dict):
            return _refused(400, "invalid payload for conversation reply: missing reply")
        body = reply.get("body")
        if not isinstance(body, str) or not body.strip():
            return _refused(422, "the message is empty: reply.body must not be blank")
        sent = {"id": next(self._reply_ids), "body": body, "conversation_id": conversation_id}
        replies.append(sent)
        return _ok({"reply": dict(sent)})

    def _editable(self, item_id: int) -> JsonDict | None:
        """The item, if it can still be read and changed: Vinted answers 404 for a sold, reserved,
        closed or deleted one."""
        item = self.items.get(item_id)
        if item is None or item["is_closed"] or item["is_reserved"]:
            return None
        return item

    def _assigned_photo_ids(self, item: JsonDict, action: str) -> list[int] | VintedReply:
        """The ids of an uploaded item's `assigned_photos`, or Vinted's refusal."""
        assigned = item.get("assigned_photos") or []
        if not isinstance(assigned, list) or not assigned:
            return _refused(422, f"invalid payload for {action}: item.assigned_photos is empty")
        photo_ids: list[int] = []
        for photo in assigned:
            raw_id = photo.get("id") if isinstance(photo, dict) else photo
            photo_id = _as_int(raw_id)
            if photo_id is None or photo_id not in self.photos:
                return _refused(422, f"unknown photo id {raw_id!r} in item.assigned_photos")
            photo_ids.append(photo_id)
        return photo_ids

    def _photos(self, item: JsonDict) -> list[JsonDict]:
        return [{"id": photo_id, "url": self.photos.get(photo_id)} for photo_id in item["photo_ids"]]


def _item_not_found(item_id: int) -> VintedReply:
    # The same answer whatever the reason (sold, reserved, closed, deleted), as on Vinted.
    return _refused(404, f"Vinted answered 404 Not Found: item {item_id} was not found")


def _uploaded(fields: JsonDict) -> JsonDict:
    """An item's fields as a create or an update sent them, colours always as `color_ids`: without what
    Vinted itself decides (id, url, photos, state)."""
    kept = {name: value for name, value in fields.items() if name not in _NOT_UPLOADED}
    kept["color_ids"] = _colour_ids(fields)
    return kept


_NOT_UPLOADED = frozenset({"id", "url", "photos", "photo_ids", "upload_session_id", "color1_id", "color2_id"})


def _colour_ids(fields: JsonDict) -> list[Any]:
    """`color_ids` as a create sends them, or color1_id/color2_id as an item read back shows them."""
    colours = fields.get("color_ids")
    if isinstance(colours, list):
        return list(colours)
    return [fields[name] for name in ("color1_id", "color2_id") if fields.get(name) is not None]


def _amount(price: Any) -> str:
    """A price as Vinted writes an amount: "27.90"."""
    try:
        amount = Decimal(str(price))
    except InvalidOperation:
        return str(price)
    return f"{amount:.2f}" if amount.is_finite() else str(price)


def _money(price: Any, currency: Any) -> JsonDict:
    return {"amount": _amount(price), "currency_code": currency or "EUR"}


def _page(
    entries: list[JsonDict], query: dict[str, list[str]], default: int, cap: int
) -> tuple[list[JsonDict], JsonDict]:
    """The query's page of `entries` (`page`, `per_page` up to `cap`) and Vinted's pagination for it."""
    page = _query_int(query, "page") or 1
    per_page = min(_query_int(query, "per_page") or default, cap)
    return entries[(page - 1) * per_page : page * per_page], {
        "current_page": page,
        "total_pages": -(-len(entries) // per_page),
        "total_entries": len(entries),
        "per_page": per_page,
    }


def _is_id(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _is_photo_upload(command: JsonDict) -> bool:
    return str(command.get("method", "")).upper() == "POST" and urlsplit(str(command.get("path"))).path == PHOTOS_PATH


async def _download_failure(payload: Any, fetch_image: ImageFetcher) -> VintedReply | None:
    """Why the extension could not download a photo's image (None: it could, or Vinted will refuse the
    payload itself). Vinted was not reached: no status."""
    image_url = payload.get("image_url") if isinstance(payload, dict) else None
    if not isinstance(image_url, str) or not image_url:
        return None
    try:
        image = await fetch_image(image_url)
    except Exception as exc:  # any download problem is the command's failure, not the simulator's
        return _image_failure(exc).reply(image_url, str(exc) or type(exc).__name__)
    if not image:
        return ImageFailure(error="not_an_image").reply(image_url, "the image is empty")
    return None


def _image_failure(error: Exception) -> ImageFailure:
    """How a download failed, in the protocol's terms (none known: the backend tries it again later)."""
    if isinstance(error, ImageDownloadError):
        return error.failure
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return ImageFailure(error="unknown_host")
    if isinstance(error, TimeoutError):
        return ImageFailure(error="timeout")
    if isinstance(error, aiohttp.ClientError | OSError):
        return ImageFailure(error="connection_failed")
    return ImageFailure()


def _query_int(query: dict[str, list[str]], name: str) -> int | None:
    value = _as_int(query.get(name, [""])[0])
    return value if value is not None and value > 0 else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _short(job_id: Any) -> str:
    return str(job_id)[:8]


# Marks a message handed to `on_event` that came inside a command (a job's progress), not as a frame.
CARRIED_BY = "carried_by_command"


def describe_event(message: JsonDict) -> str:
    """One readable line for a message from the backend that is not a command."""
    kind = message.get("type")
    job = _short(message.get("job_id"))
    if kind == "job.progress":
        return (
            f"job {job}: step {message.get('current_step')}/{message.get('total_steps')} {message.get('message', '')}"
        ).rstrip()
    if kind == "job.completed":
        result = message.get("result")
        url = result.get("url") if isinstance(result, dict) else None
        return f"job {job} completed: {url or json.dumps(result)}"
    if kind in ("job.failed", "job.retrying"):
        error = message.get("error")
        reason = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else error
        if kind == "job.retrying":
            return (
                f"job {job} retrying (attempt {message.get('attempt')} at {message.get('next_attempt_at')}): {reason}"
            )
        return f"job {job} failed: {reason}"
    if kind == "job.waiting":
        until = f" until {message['until']}" if message.get("until") else ""
        return f"job {job} waiting ({message.get('reason')}){until}"
    if kind == "jobs.active":
        jobs = message.get("jobs") or []
        running = ", ".join(f"{_short(j.get('job_id'))} {j.get('status')}" for j in jobs[:5])
        return f"active jobs: {len(jobs)}" + (f" ({running})" if running else "")
    if kind == "plugin.status":
        state = "ready: commands will come here" if message.get("ready") else "not ready: no command will come here"
        return f"backend recorded the extension as {state}"
    if kind == "error":  # e.g. rate_limited, invalid_message: the simulator goes on
        request = f" (request {message['request_id']})" if message.get("request_id") else ""
        return f"backend refused a message [{message.get('code')}]{request}: {message.get('message')}"
    return f"message: {json.dumps(message)}"


def describe_result(command: JsonDict, reply: JsonDict) -> str:
    """One readable line for a command the simulator answered."""
    what = f"job {_short(command.get('job_id'))}: {command.get('step')} {command.get('method')} {command.get('path')}"
    if reply["success"]:
        return f"{what} -> ok {json.dumps(reply['result'])}"
    status = f" ({reply['status']})" if reply.get("status") is not None else ""
    return f"{what} -> failed{status}: {reply['error']}"


def _print(line: str) -> None:
    print(line, flush=True)


def _public_url(ws_url: str) -> str:
    """The URL without its query: the token never goes to the terminal."""
    return str(URL(ws_url).with_query(None))


@dataclass(frozen=True)
class Backoff:
    """When to reconnect, as a web app does: `initial` seconds, doubling up to `maximum`, each delay
    randomly shortened by up to `jitter` (a fraction) so that clients cut off together do not all
    come back at the same instant. A connection that lasted `stable_after` seconds starts over."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 15.0
    jitter: float = 0.5
    stable_after: float = 10.0

    def delay(self, attempt: int, random: Random | None = None) -> float:
        """The pause before reconnection attempt `attempt` (0 for the first after a loss)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base * (1 - self.jitter * (random or _RANDOM).random())


_RANDOM = Random()
RECONNECT = Backoff()  # 0.5 s doubling to 15 s


async def run_plugin(
    ws_url: str,
    token: TokenSource,
    vinted: VintedSimulator,
    *,
    stop: asyncio.Event | None = None,
    on_event: Callable[[JsonDict], None] | None = None,
    on_result: Callable[[JsonDict, JsonDict], None] | None = None,
    on_connected: Callable[[], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    session: aiohttp.ClientSession | None = None,
    reconnect: Backoff | None = None,
    random: Random | None = None,
) -> None:
    """Connect to `ws_url?token=…` and answer plugin commands with `vinted` until `stop` is set.

    Right after connecting it sends `plugin_status` (ready), so that the backend sends it commands.
    Commands are executed one at a time in arrival order; each gets a `plugin_result`. Every other
    message (progress, `error` frames such as rate_limited…) goes to `on_event` (default: print a
    readable line). `on_result(command, reply)` sees each answer sent (default: print it);
    `on_connected()` runs on each connection (default: print); `on_notice(line)` tells of lost
    connections and reconnection attempts (default: print).

    When the socket closes, it returns, or with `reconnect` connects again after that backoff
    (`token` may be a function: called on each connection, for a fresh token). Raises
    PluginConnectionRefused when the backend refuses the token, PluginUnreachable when the first
    connection fails (the backend is not running), PluginConnectionError when it refuses otherwise.
    Images are downloaded with the same aiohttp session (http(s) only).
    """
    async with contextlib.AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(aiohttp.ClientSession())
        callbacks = _Callbacks(on_event, on_result, on_connected, on_notice or _print)
        await _serve(ws_url, token, vinted, session, stop=stop, callbacks=callbacks, reconnect=reconnect, random=random)


@dataclass(frozen=True)
class _Callbacks:
    on_event: Callable[[JsonDict], None] | None
    on_result: Callable[[JsonDict, JsonDict], None] | None
    on_connected: Callable[[], None] | None
    on_notice: Callable[[str], None]


async def _serve(
    ws_url: str,
    token: TokenSource,
    vinted: VintedSimulator,
    session: aiohttp.ClientSession,
    *,
    stop: asyncio.Event | None,
    callbacks: _Callbacks,
    reconnect: Backoff | None,
    random: Random | None,
) -> None:
    public = _public_url(ws_url)
    loop = asyncio.get_running_loop()
    attempt = 0
    connected_once = False
    while not (stop is not None and stop.is_set()):
        try:
            ws = await _connect(session, ws_url, token() if callable(token) else token, stop)
        except PluginConnectionRefused:
            raise  # a token the backend refuses will not do better next time
        except PluginConnectionError as exc:
            if reconnect is None or not connected_once:
                raise
            reason = str(exc)
        else:
            if ws is None:
                return  # stopped while connecting
            connected_once = True
            started = loop.time()
            lost = await _session(ws, public, vinted, session, stop=stop, callbacks=callbacks)
            if lost is None or reconnect is None:
                return
            if loop.time() - started >= reconnect.stable_after:
                attempt = 0
            reason = lost
        delay = reconnect.delay(attempt, random)
        attempt += 1
        callbacks.on_notice(f"{reason}; reconnecting in {delay:.1f} s (attempt {attempt})")
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


async def _connect(
    session: aiohttp.ClientSession, ws_url: str, token: str, stop: asyncio.Event | None
) -> aiohttp.ClientWebSocketResponse | None:
    """The open socket, or None when `stop` was set first."""
    public = _public_url(ws_url)
    connecting = asyncio.ensure_future(session.ws_connect(URL(ws_url).update_query(token=token)))
    if stop is not None:
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if connecting not in done:
            connecting.cancel()
            [late] = await asyncio.gather(connecting, return_exceptions=True)
            if isinstance(late, aiohttp.ClientWebSocketResponse):
                await late.close()
            return None
    try:
        return await connecting
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (401, 403):
            raise PluginConnectionRefused(
                f"the backend at {public} refused the token ({exc.status}): it is missing, invalid or expired"
            ) from None
        raise PluginConnectionError(f"the backend at {public} refused the WebSocket upgrade ({exc.status})") from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        refused = isinstance(getattr(exc, "os_error", exc), ConnectionRefusedError)
        why = "connection refused" if refused else str(exc) or type(exc).__name__
        raise PluginUnreachable(public, f"could not connect to {public}: {why}") from None


async def _session(
    ws: aiohttp.ClientWebSocketResponse,
    public: str,
    vinted: VintedSimulator,
    session: aiohttp.ClientSession,
    *,
    stop: asyncio.Event | None,
    callbacks: _Callbacks,
) -> str | None:
    """Say the extension is ready, then answer commands until the socket closes: why it closed, or
    None when `stop` closed it."""

    async def fetch_image(url: str) -> bytes:
        return await _download(session, url)

    events = callbacks.on_event or (lambda message: _print(describe_event(message)))
    results = callbacks.on_result or (lambda command, reply: _print(describe_result(command, reply)))
    async with ws:
        try:
            await ws.send_json(status_message(vinted))
        except (aiohttp.ClientError, ConnectionError) as exc:
            return f"lost the connection to {public}: {exc or type(exc).__name__}"
        (callbacks.on_connected or (lambda: _print(f"connected to {public}, extension ready")))()
        watcher = asyncio.create_task(_close_on(stop, ws)) if stop is not None else None
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    continue  # binary frames are not part of the protocol; close/error end the loop
                try:
                    message = json.loads(frame.data)
                except ValueError:
                    events({"type": "invalid", "data": str(frame.data)[:200]})
                    continue
                if not isinstance(message, dict):
                    events({"type": "invalid", "data": str(frame.data)[:200]})
                elif message.get("type") == "plugin.command":
                    await _answer(ws, vinted, message, fetch_image, results=results, events=events)
                else:
                    events(message)
                    if message.get("type") == "job.waiting" and message.get("reason") == "plugin_logged_out":
                        await _log_in_again(ws, vinted)
        finally:
            if watcher is not None:
                watcher.cancel()
    if stop is not None and stop.is_set():
        return None
    error = ws.exception()
    if error is not None:
        return f"lost the connection to {public}: {error or type(error).__name__}"
    return f"the backend closed the connection (code {ws.close_code})"


async def _close_on(stop: asyncio.Event, ws: aiohttp.ClientWebSocketResponse) -> None:
    await stop.wait()
    await ws.close()


async def _answer(
    ws: aiohttp.ClientWebSocketResponse,
    vinted: VintedSimulator,
    command: JsonDict,
    fetch_image: ImageFetcher,
    *,
    results: Callable[[JsonDict, JsonDict], None],
    events: Callable[[JsonDict], None],
) -> None:
    request_id = command.get("request_id")
    if isinstance(command.get("progress"), dict):  # its job's progress rides with the command
        events(command["progress"] | {CARRIED_BY: request_id})
    if not isinstance(request_id, str) or not request_id:
        return  # nothing to answer to
    reply = await vinted.execute(command, fetch_image)
    if not reply.answered or ws.closed:
        # A lost reply, or stopped (or the backend left) while executing: the backend times the command out.
        return
    message = reply.message(request_id)
    try:
        await ws.send_json(message)
    except (aiohttp.ClientError, ConnectionError):
        return
    results(command, message)


async def _log_in_again(ws: aiohttp.ClientWebSocketResponse, vinted: VintedSimulator) -> None:
    """The backend waits for this tab to log in to Vinted again (after a 401): the 'user' does, as the
    web app asks, and the extension says so. Without it a random 401 would stop the devstack's jobs."""
    await asyncio.sleep(vinted.relogin_ms / 1000)
    if ws.closed:
        return
    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        await ws.send_json(status_message(vinted))


def status_message(vinted: VintedSimulator) -> JsonDict:
    """The `plugin_status` the simulated extension sends: ready, logged in as the simulator's account."""
    return {
        "action": "plugin_status",
        "ready": True,
        "extension_version": EXTENSION_VERSION,
        "vinted_user_id": vinted.vinted_user_id,
    }


async def _download(session: aiohttp.ClientSession, url: str) -> bytes:
    if URL(url).scheme not in ("http", "https"):
        raise ImageDownloadError("only http(s) image URLs are supported", ImageFailure(error="unsupported_url"))
    timeout = aiohttp.ClientTimeout(total=IMAGE_TIMEOUT_SECONDS)
    too_large = ImageDownloadError(f"the image is larger than {MAX_IMAGE_BYTES} bytes", ImageFailure(error="too_large"))
    async with session.get(url, timeout=timeout) as response:
        if response.status != 200:
            raise ImageDownloadError(f"HTTP {response.status}", ImageFailure(status=response.status))
        if response.content_length is not None and response.content_length > MAX_IMAGE_BYTES:
            raise too_large
        data = await response.content.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise too_large
        return data


def seed_demo_account(vinted: VintedSimulator) -> str:
    """What a real account has before crosslist: listings made on the site (linkable), a sale, and a
    buyer's conversation, so that `make dev` shows sync, orders, link and message with something to do.
    Returns the conversation id."""
    for title, price in (("Denim jacket", "35.00"), ("Wool scarf", "12.00"), ("Leather boots", "48.00")):
        vinted.add_item(title, price, catalog_id=1839, status_id=2, package_size_id=2)
    vinted.sell(next(iter(vinted.items)), buyer="demo-buyer")
    conversation = "1001"
    vinted.open_conversation(conversation)
    return conversation


def _fake_vinted(latency_ms: int, failure_rate: float, account_file: Path | None) -> tuple[VintedSimulator, str]:
    """The plugin simulator's fake Vinted: the account `account_file` holds, else the demo account; and a
    line saying which."""
    vinted = VintedSimulator(latency_ms=latency_ms, failure_rate=failure_rate, unique_ids=True)
    saved = load_state(account_file) if account_file is not None else None
    if saved is not None:
        try:
            vinted.restore(saved)
        except (KeyError, TypeError, ValueError) as unreadable:  # a file of another shape: a new demo account
            print(f"plugin simulator: {account_file} cannot be restored ({unreadable!r})", file=sys.stderr)
            return _fake_vinted(latency_ms, failure_rate, None)
        sold = sum(1 for item in vinted.items.values() if item["item_closing_action"] == "sold")
        return vinted, (
            f"the fake Vinted account is back from {account_file}: {len(vinted.items)} listings ({sold} sold), "
            f"{len(vinted.orders)} sale(s)"
        )
    conversation = seed_demo_account(vinted)
    return vinted, (
        f"the fake Vinted account has {len(vinted.items)} listings of its own (one sold) and conversation "
        f"{conversation} with a buyer: try the sync, orders and message actions"
    )


def main_loop(
    ws_url: str,
    token: TokenSource,
    latency_ms: int,
    failure_rate: float,
    *,
    reconnect: Backoff = RECONNECT,
    account_file: Path | None = None,
    control: ControlServer | None = None,
) -> int:
    """Blocking entry for `crosslist dev plugin`: 0 when stopped with Ctrl-C (or SIGTERM), 1 when the
    first connection could not be opened or the token was refused. A connection lost later (the
    devstack restarted) is opened again with `reconnect`'s backoff, as the web app does.

    The fake Vinted account is loaded from `account_file` when there is one (else seeded with the demo
    account) and saved there on exit; its ids are never those of an earlier run. `control(vinted)` runs
    beside the connection (the local endpoint of `crosslist dev sell vinted`)."""
    try:
        vinted, account = _fake_vinted(latency_ms, failure_rate, account_file)
    except ValueError as exc:  # a latency or a failure rate out of range
        print(f"plugin simulator: {exc}", file=sys.stderr)
        return 1
    print(f"plugin simulator: {account}", flush=True)
    print(
        f"plugin simulator: connecting to {_public_url(ws_url)} "
        f"(latency {latency_ms} ms, failure rate {failure_rate:.0%}); Ctrl-C to stop",
        flush=True,
    )
    stop = asyncio.Event()
    started = time.monotonic()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows, or not the main thread
                loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as beside:
            if control is not None:
                await beside.enter_async_context(control(vinted))
            await run_plugin(ws_url, token, vinted, stop=stop, reconnect=reconnect)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        stop.set()
    except PluginUnreachable as exc:
        print(f"plugin simulator: the devstack is not running at {exc.url}: start it with `make dev`", file=sys.stderr)
        return 1
    except PluginConnectionError as exc:
        print(f"plugin simulator: {exc}", file=sys.stderr)
        return 1
    finally:
        if account_file is not None:
            save_state(account_file, vinted.state())
    summary = f"the account has {len(vinted.photos)} photo(s) and {len(vinted.items)} item(s)"
    if stop.is_set():
        print(f"plugin simulator: stopped after {time.monotonic() - started:.0f} s, {summary}", flush=True)
        return 0
    print(f"plugin simulator: the backend closed the connection ({summary})", file=sys.stderr)
    return 1
