"""`crosslist dev …`: run the system locally and poke at it like the frontend would."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack.console import CONSOLE_PREFIX, mint_dev_token
from devstack.fake_ebay import DELETE_ACCOUNT_PATH
from devstack.fake_http import SEED_SHOP_PATH, SELL_PATH
from devstack.postgres import free_port
from devstack.stack import REPO, DevStack, StackConfig, dev_jwt_secret

if TYPE_CHECKING:
    from devstack.plugin import VintedSimulator

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_WS = "ws://127.0.0.1:8001"
STATE_DIR = REPO / ".devstack"
ENDPOINTS_FILE = "endpoints.json"  # in STATE_DIR while a devstack runs: where `seed`, `plugin`, `fire`, `sell` go
# In STATE_DIR while a plugin simulator runs: plugins/<user>.json, where `sell vinted` reaches its fake Vinted.
PLUGINS_DIR = "plugins"
# In STATE_DIR: shops/<account>-<seed>.json, what `seed-shops` seeded and the truth of which listings are one item.
SHOPS_DIR = "shops"


class DevstackUnavailable(Exception):
    """The devstack does not answer at the URL (or something else does)."""


# Where the running devstack listens ----------------------------------------------------------------


def write_endpoints(state_dir: Path, http_url: str, ws_url: str) -> Path:
    """Tell the other commands where this devstack listens (until `remove_endpoints`)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / ENDPOINTS_FILE
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"http_url": http_url, "ws_url": ws_url, "pid": os.getpid()}) + "\n")
    partial.replace(path)
    return path


def remove_endpoints(state_dir: Path) -> None:
    """Forget the endpoints this process wrote (not those of another devstack started since)."""
    path = state_dir / ENDPOINTS_FILE
    if _read_json(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def read_endpoints(state_dir: Path) -> dict[str, str]:
    """{"http_url", "ws_url"} of the devstack running from this checkout; {} when none is (no file, or
    the file of a devstack that did not stop cleanly)."""
    endpoints = _read_json(state_dir / ENDPOINTS_FILE)
    pid = endpoints.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return {}
    return {key: value for key in ("http_url", "ws_url") if isinstance(value := endpoints.get(key), str)}


def write_plugin_endpoint(state_dir: Path, user: str, control_url: str) -> Path:
    """Tell `crosslist dev sell vinted` where this process's fake Vinted (the user's plugin simulator) listens."""
    path = _plugin_endpoint_file(state_dir, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"control_url": control_url, "user": user, "pid": os.getpid()}) + "\n")
    partial.replace(path)
    return path


def remove_plugin_endpoint(state_dir: Path, user: str) -> None:
    """Forget the endpoint this process wrote (not that of a plugin simulator started since)."""
    path = _plugin_endpoint_file(state_dir, user)
    if _read_json(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def read_plugin_endpoint(state_dir: Path, user: str) -> str | None:
    """The control URL of the user's running plugin simulator; None when none runs."""
    endpoint = _read_json(_plugin_endpoint_file(state_dir, user))
    pid, url = endpoint.get("pid"), endpoint.get("control_url")
    return url if isinstance(pid, int) and _alive(pid) and isinstance(url, str) else None


def _plugin_endpoint_file(state_dir: Path, user: str) -> Path:
    return state_dir / PLUGINS_DIR / f"{urllib.parse.quote(user, safe='')}.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _api(args: argparse.Namespace) -> str:
    given: str | None = args.api
    return (given or read_endpoints(STATE_DIR).get("http_url") or DEFAULT_API).rstrip("/")


def _ws(args: argparse.Namespace) -> str:
    given: str | None = args.url
    return given or read_endpoints(STATE_DIR).get("ws_url") or DEFAULT_WS


def _client_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on `host`, as a URL's host."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    host = "::1" if host == "::" else host
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def mint_token(user: str, expires_in: int = 12 * 3600) -> str:
    return mint_dev_token(dev_jwt_secret(STATE_DIR), user, expires_in)


DEMO_SKU_PREFIX = "devstack-demo-"  # how `seed` recognises the demo products it created before
DEMO_IMAGES_PATH = "/__devstack/images/"  # the devstack's demo photos


def demo_products(api: str) -> list[dict[str, Any]]:
    vinted = {
        "brand_id": 53,
        "size_id": 207,
        "catalog_id": 1839,
        "status_id": 2,
        "color_ids": [12],
        "package_size_id": 2,
    }
    return [
        {
            "sku": f"{DEMO_SKU_PREFIX}1",
            "title": "Levi's 501 jeans",
            "description": "Straight fit, barely worn.",
            "price": "27.90",
            "currency": "GBP",
            "brand": "Levi's",
            "size": "W32 L32",
            "condition": "very good",
            "color": "blue",
            "image_urls": [f"{api}{DEMO_IMAGES_PATH}{n}.png" for n in (1, 2, 3)],
            "marketplace_attributes": {"vinted": vinted, **_rest_attributes(11483, 429)},
        },
        {
            "sku": f"{DEMO_SKU_PREFIX}2",
            "title": "Wool winter coat",
            "description": "Warm, one button replaced.",
            "price": "45.00",
            "currency": "GBP",
            "brand": "Zara",
            "size": "M",
            "condition": "good",
            "image_urls": [f"{api}{DEMO_IMAGES_PATH}{n}.png" for n in (4, 5)],
            "marketplace_attributes": {
                "vinted": {**vinted, "brand_id": 12, "catalog_id": 1907, "size_id": 4},
                **_rest_attributes(63862, 448),
            },
        },
        {
            "sku": f"{DEMO_SKU_PREFIX}3",
            "title": "Leather ankle boots",
            "description": "Size 39, resoled last year.",
            "price": "35.50",
            "currency": "GBP",
            "image_urls": [f"{api}{DEMO_IMAGES_PATH}6.png"],
            "marketplace_attributes": {
                "vinted": {**vinted, "brand_id": 304, "catalog_id": 1242, "size_id": 58},
                **_rest_attributes(53557, 1176),
            },
        },
    ]


def _rest_attributes(ebay_category: int, etsy_taxonomy: int) -> dict[str, Any]:
    """What eBay and Etsy need of a demo product (their category ids for such an item)."""
    return {
        "ebay": {"category_id": str(ebay_category), "condition": "USED_GOOD"},
        "etsy": {"taxonomy_id": etsy_taxonomy, "who_made": "someone_else", "when_made": "2010_2019"},
    }


def _request(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    """(status, JSON body); raises DevstackUnavailable when nothing (or not JSON) answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise DevstackUnavailable(_not_running(url)) from error
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        raise DevstackUnavailable(
            f"{url} answered {status} with something that is not JSON: is it the devstack?"
        ) from None


def _not_running(url: str) -> str:
    base = urllib.parse.urlsplit(url)
    return f"the devstack is not running at {base.scheme}://{base.netloc}: start it with `make dev`"


def _check_devstack(api: str) -> dict[str, Any]:
    """What the devstack at `api` says of itself (its functions, schedules and fakes); raise
    DevstackUnavailable unless a devstack answers there."""
    status, body = _request("GET", f"{api}/__devstack/health")
    if status != 200 or not isinstance(body, dict) or "functions" not in body:
        raise DevstackUnavailable(
            f"{api} answers, but it is not the devstack ({status} from /__devstack/health): "
            "start it with `make dev`, or give its URL with --api"
        )
    return body


def up(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("devstack").setLevel(logging.INFO)
    # Port 0: any free one (the endpoints file says which), e.g. for a test's own devstack.
    http_port, ws_port = args.http_port or free_port(), args.ws_port or free_port()
    config = StackConfig(
        host=args.host,
        http_port=http_port,
        ws_port=ws_port,
        aws_port=args.aws_port,
        ebay_port=args.ebay_port,
        etsy_port=args.etsy_port,
        database_url=args.database_url,
        data_dir=args.data_dir or STATE_DIR,
        concurrency=args.concurrency,
        pacing=args.pacing,
        function_log_level=args.function_log_level,
        schedules=not args.no_schedules,
    )
    stack = DevStack(config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    http_url = f"http://{_client_host(args.host)}:{http_port}"
    ws_url = f"ws://{_client_host(args.host)}:{ws_port}"
    try:
        stack.start()
        write_endpoints(stack.config.state_dir, http_url, ws_url)
        print(
            f"\ncrosslist devstack is up at {http_url} and {ws_url}. "
            "Try:  crosslist dev seed  |  crosslist dev plugin --user demo\n"
            f"The console (sign in, products, jobs, the browser extension): {http_url}{CONSOLE_PREFIX}/\n",
            flush=True,
        )
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping…", flush=True)
        remove_endpoints(stack.config.state_dir)
        stack.stop()
    return 0


def token(args: argparse.Namespace) -> int:
    print(mint_token(args.user, args.expires_in))
    return 0


def seed(args: argparse.Namespace) -> int:
    """Create the demo user's 3 demo products, or bring back those a previous `seed` created."""
    api = _api(args)
    user_token = mint_token(args.user)
    try:
        _check_devstack(api)
        existing = _demo_products_of(api, user_token)
        products = []
        for wanted in demo_products(api):
            product, done = _ensure(api, user_token, wanted, existing.get(wanted["sku"]))
            if product is None:
                return 1
            products.append(product)
            photos = len(product["image_urls"])
            print(f"product {product['id']}  {product['title']}  ({photos} photo{'s' if photos > 1 else ''}, {done})")
    except DevstackUnavailable as unavailable:
        print(unavailable, file=sys.stderr)
        return 1
    first = products[0]["id"]
    print(
        f"\nPublish the first one on Vinted (with `crosslist dev plugin --user {args.user}` running):\n"
        f"  curl -s -X POST {api}/jobs -H 'Authorization: Bearer {user_token}' \\\n"
        f"       -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"marketplace": "vinted", "action": "publish", "product_id": "{first}"}}\'\n'
        f"Then follow it:\n"
        f"  curl -s {api}/jobs/<job id> -H 'Authorization: Bearer {user_token}'"
    )
    return 0


def _ensure(
    api: str, user_token: str, wanted: dict[str, Any], current: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, str]:
    """The demo product, and what was done: created, updated (only its demo photos' URLs, when the devstack
    now runs elsewhere) or already there. What the user changed in it stays as they left it."""
    if current is None:
        status, body = _request("POST", f"{api}/products", user_token, wanted)
        done, expected = "created", 201
    elif (moved := _demo_photos_here(api, current["image_urls"])) != current["image_urls"]:
        status, body = _request("PATCH", f"{api}/products/{current['id']}", user_token, {"image_urls": moved})
        done, expected = "updated", 200
    else:
        return current, "already there"
    if status != expected or not isinstance(body, dict):
        print(f"could not {done[:-1]} {wanted['title']!r}: {status} {body}", file=sys.stderr)
        return None, done
    return body, done


def _demo_photos_here(api: str, image_urls: list[str]) -> list[str]:
    """The image URLs, the devstack's demo photos pointing at this devstack (seeded while it ran elsewhere)."""
    return [
        f"{api}{DEMO_IMAGES_PATH}{url.split(DEMO_IMAGES_PATH, 1)[1]}" if DEMO_IMAGES_PATH in url else url
        for url in image_urls
    ]


def _demo_products_of(api: str, user_token: str) -> dict[str, dict[str, Any]]:
    """The user's demo products by sku (the oldest, if there are several)."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        status, page = _request("GET", f"{api}/products?limit=100&offset={offset}", user_token)
        if status != 200 or not isinstance(page, dict):
            raise DevstackUnavailable(f"could not list the products at {api}: {status} {page}")
        for product in page["items"]:
            sku = product.get("sku")
            demo = isinstance(sku, str) and sku.startswith(DEMO_SKU_PREFIX)
            if demo and (sku not in found or product["created_at"] < found[sku]["created_at"]):
                found[sku] = product
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return found


def connect(args: argparse.Namespace) -> int:
    """Connect the user's account on the devstack's fake eBay or Etsy, as the browser and web app would."""
    from devstack.accounts import ConnectFailed, connect_account

    api = _api(args)
    try:
        _check_devstack(api)
        connect_account(api, mint_token(args.user), args.marketplace, account=args.account)
    except (DevstackUnavailable, ConnectFailed) as failed:
        print(failed, file=sys.stderr)
        return 1
    print(
        f"{args.marketplace} connected for {args.user}. Choose the seller settings:\n"
        f"  curl -s {api}/marketplaces/{args.marketplace}/settings -H 'Authorization: Bearer <token>'"
    )
    return 0


def plugin(args: argparse.Namespace) -> int:
    from devstack.plugin import main_loop
    from devstack.plugin_control import control_server

    mint_token(args.user)  # a key that cannot be read fails here, not at each (re)connection

    @contextlib.asynccontextmanager
    async def control(vinted: VintedSimulator) -> AsyncIterator[None]:
        async with control_server(vinted) as url:
            write_plugin_endpoint(STATE_DIR, args.user, url)
            selling = f"crosslist dev sell vinted <item id> --user {args.user}"
            print(f"plugin simulator: a buyer buys one of the account's items with `{selling}`", flush=True)
            try:
                yield
            finally:
                remove_plugin_endpoint(STATE_DIR, args.user)

    return main_loop(
        _ws(args),
        lambda: mint_token(args.user),
        args.latency_ms,
        args.failure_rate,
        account_file=vinted_account_file(STATE_DIR, args.user),
        control=control,
    )


def vinted_account_file(state_dir: Path, user: str) -> Path:
    """Where the user's plugin simulator keeps its fake Vinted account between runs."""
    return StackConfig(data_dir=state_dir).fakes_dir / f"vinted-{urllib.parse.quote(user, safe='')}.json"


# Selling on a fake marketplace ---------------------------------------------------------------------

MARKETPLACE_NAMES = {"vinted": "Vinted", "ebay": "eBay", "etsy": "Etsy"}
LIVE_LISTING_STATUSES = ("active", "hidden", "reserved")  # a buyer can still buy these
ORDERS_ACTIONS = {"vinted": "orders", "ebay": "sync_orders", "etsy": "sync_orders"}


class SaleRefused(Exception):
    """The sale could not be made; the message says why, in one line."""


def sell(args: argparse.Namespace) -> int:
    """A buyer buys a listing on a fake marketplace, as on the site: the next orders import finds the sale."""
    api = _api(args)
    user_token = mint_token(args.user)
    marketplace, name = args.marketplace, MARKETPLACE_NAMES[args.marketplace]
    try:
        if marketplace == "vinted" and args.quantity != 1:
            raise SaleRefused("a Vinted item is one of a kind: --quantity must be 1")
        product_id = _product_id(args.listing)
        health = _check_devstack(api) if product_id is not None or marketplace != "vinted" else {}
        listing_id = (
            args.listing if product_id is None else listing_of_product(api, user_token, product_id, marketplace)
        )
        control = _control_url(marketplace, health, args.user)
        body = {"listing_id": listing_id, "quantity": args.quantity, "buyer": args.buyer}
        try:
            status, answer = _request("POST", control + SELL_PATH, body=body)
        except DevstackUnavailable:
            hint = _start_hint(marketplace, args.user)
            raise SaleRefused(f"the fake {name} does not answer at {control}: {hint}") from None
    except (DevstackUnavailable, SaleRefused) as refused:
        print(refused, file=sys.stderr)
        return 1
    if status != 200 or not isinstance(answer, dict):
        message = answer.get("message") if isinstance(answer, dict) else answer
        print(f"the fake {name} did not sell {listing_id}: {message}", file=sys.stderr)
        return 1
    quantity = f"{args.quantity} of " if args.quantity != 1 else ""
    job = json.dumps({"marketplace": marketplace, "action": ORDERS_ACTIONS[marketplace]})
    pushed = (
        f"The fake {name} pushes the sale to the devstack, which imports the orders at once (a priority-1 sync_orders"
        " job, when the account is connected: see GET /jobs).\n"
        if marketplace in ("ebay", "etsy")
        else ""
    )
    print(
        f"sold {quantity}{name} listing {listing_id} to {args.buyer}: order {answer['order_id']}\n"
        f"{pushed}"
        f"The next orders import finds it (the user's orders rule, every 15 minutes), or import it now:\n"
        f"  curl -s -X POST {api}/jobs -H 'Authorization: Bearer {user_token}' \\\n"
        f"       -H 'Content-Type: application/json' -d '{job}'\n"
        f"Then see the sale and what auto-delist did on the other marketplaces:\n"
        f"  curl -s {api}/products/{product_id or '<product id>'}/sales -H 'Authorization: Bearer {user_token}'"
    )
    return 0


def _product_id(given: str) -> str | None:
    """The crosslist product id `given` is, or None when it is a marketplace's listing id (digits)."""
    if given.isascii() and given.isdigit():
        return None
    try:
        return str(uuid.UUID(given))
    except ValueError:
        raise SaleRefused(
            f"{given!r} is neither a listing id (digits) nor a product id (a UUID, as GET /products shows it)"
        ) from None


def listing_of_product(api: str, user_token: str, product_id: str, marketplace: str) -> str:
    """The id of the product's live listing on `marketplace`, from the product's `listings`."""
    name = MARKETPLACE_NAMES[marketplace]
    status, product = _request("GET", f"{api}/products/{product_id}", user_token)
    if status == 404:
        raise SaleRefused(f"the user has no product {product_id}")
    if status != 200 or not isinstance(product, dict):
        raise DevstackUnavailable(f"could not read product {product_id} at {api}: {status} {product}")
    for listing in product["listings"]:
        if listing["marketplace"] == marketplace and listing["status"] in LIVE_LISTING_STATUSES:
            return str(listing["external_id"])
    raise SaleRefused(f"product {product_id} has no live listing on {name}: publish it there first")


def _control_url(marketplace: str, health: dict[str, Any], user: str) -> str:
    """Where the fake marketplace takes sales: the devstack's fake eBay or Etsy, or the user's plugin simulator."""
    if marketplace == "vinted":
        url = read_plugin_endpoint(STATE_DIR, user)
        if url is None:
            raise SaleRefused(
                f"no plugin simulator runs for user {user}, and the fake Vinted lives in it: "
                + _start_hint(marketplace, user)
            )
        return url
    url = health.get("fakes", {}).get(marketplace)
    if not isinstance(url, str):
        raise SaleRefused(
            f"the devstack does not say where its fake {MARKETPLACE_NAMES[marketplace]} is: "
            + _start_hint(marketplace, user)
        )
    return url


def _start_hint(marketplace: str, user: str) -> str:
    if marketplace == "vinted":
        return f"start it with `crosslist dev plugin --user {user}`"
    return "restart the devstack (`make dev`)"


def ebay_delete_account(args: argparse.Namespace) -> int:
    """The seller closes their account on the fake eBay: it sends crosslist a signed MARKETPLACE_ACCOUNT_DELETION."""
    api = _api(args)
    try:
        control = _control_url("ebay", _check_devstack(api), "")
        status, answer = _request("POST", control + DELETE_ACCOUNT_PATH, body={"account": args.account})
    except (DevstackUnavailable, SaleRefused) as refused:
        print(refused, file=sys.stderr)
        return 1
    if status != 202 or not isinstance(answer, dict):
        message = answer.get("message") if isinstance(answer, dict) else answer
        print(f"the fake eBay did not delete {args.account}: {message}", file=sys.stderr)
        return 1
    print(
        f"the fake eBay account {args.account} (eBay user {answer['user_id']}) asked for its data to be deleted:"
        f" a signed MARKETPLACE_ACCOUNT_DELETION went to {answer['sent_to']}.\n"
        "Every crosslist user connected to it loses their eBay credential, seller settings, listings' ids and eBay"
        " jobs; their eBay orders are kept without the buyer's name (GET /marketplaces, GET /orders)."
    )
    return 0


def seed_shops(args: argparse.Namespace) -> int:
    """The seller's whole shop (devstack.shops) on the running devstack's fake eBay and Etsy, as `--account`, and on
    the user's plugin simulator's fake Vinted; the truth (which listings are one item, in the marketplaces' ids)
    is written in .devstack/shops/. Seeding again adds nothing."""
    from devstack.shops import ShopRequest, external

    api = _api(args)
    asked = ShopRequest(args.account, args.seed, args.small, f"{api}{DEMO_IMAGES_PATH}".rstrip("/"))
    ids: dict[str, dict[str, str]] = {}
    lines: list[str] = []
    try:
        health = _check_devstack(api)
        for marketplace in ("ebay", "etsy"):
            answer = _seed_fake(marketplace, _control_url(marketplace, health, args.user), asked.body())
            ids[marketplace] = answer["ids"]
            more = f", {answer['outside']} of them made on ebay.com" if marketplace == "ebay" else ""
            states = _states(answer)
            lines.append(f"{MARKETPLACE_NAMES[marketplace]}: {answer['listings']} listings{more}{states}")
        try:
            answer = _seed_fake("vinted", _control_url("vinted", health, args.user), asked.body())
        except (SaleRefused, DevstackUnavailable) as no_vinted:
            lines.append(f"Vinted: not seeded ({no_vinted}; then run this again: what is seeded stays as it is)")
        else:
            ids["vinted"] = answer["ids"]
            lines.append(f"Vinted: {answer['listings']} items in the wardrobe of {args.user}'s plugin{_states(answer)}")
    except (DevstackUnavailable, SaleRefused) as refused:
        print(refused, file=sys.stderr)
        return 1
    shops = asked.shops()
    truth, distractors = external(shops.truth, ids), external(shops.distractors, ids)
    path = STATE_DIR / SHOPS_DIR / f"{urllib.parse.quote(args.account, safe='')}-{args.seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = {name: external(groups, ids) for name, groups in shops.notes.items()}  # the harder pairs, by kind
    record = {**asked.body(), "ids": ids, "truth": truth, "distractors": distractors, "notes": notes}
    path.write_text(json.dumps(record, indent=1) + "\n")
    on_three = sum(len(group) == 3 for group in truth)
    print(
        "\n".join(lines) + f"\nthe same item on several marketplaces: {len(truth) - on_three} on two, {on_three} on all"
        f" three; {len(distractors)} look-alike pairs that are not (the truth is in {path})\n"
        f"Connect the account (`crosslist dev connect ebay --account {args.account} --user {args.user}`, and etsy),"
        " then import the shops."
    )
    return 0


def _seed_fake(marketplace: str, control: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the fake's seed route answered; SaleRefused (its message) when it refused."""
    status, answer = _request("POST", control + SEED_SHOP_PATH, body=body)
    if status != 200 or not isinstance(answer, dict):
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise SaleRefused(f"the fake {MARKETPLACE_NAMES[marketplace]} did not seed the shop: {message}")
    return answer


def _states(answer: dict[str, Any]) -> str:
    states = answer.get("states")
    if not isinstance(states, dict):
        return ""
    return " (" + ", ".join(f"{count} {state}" for state, count in sorted(states.items())) + ")"


def fire(args: argparse.Namespace) -> int:
    try:
        status, body = _request("POST", f"{_api(args)}/__devstack/schedules/{args.schedule}")
    except DevstackUnavailable as unavailable:
        print(unavailable, file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0 if status == 200 else 1


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="crosslist")
    commands = root.add_subparsers(dest="group", required=True)
    dev = commands.add_parser("dev", help="run and use the system locally").add_subparsers(
        dest="command", required=True
    )

    _up_parser(dev.add_parser("up", help="run the whole system (what `make dev` does)"))

    p = dev.add_parser("token", help="mint a JWT the devstack accepts")
    p.add_argument("--user", required=True)
    p.add_argument("--expires-in", type=int, default=12 * 3600, help="seconds")
    p.set_defaults(run=token)

    running = f"default: the running devstack's, from .devstack/{ENDPOINTS_FILE}, else"
    p = dev.add_parser("seed", help="create a demo user's 3 products (again: finds them, creates none)")
    p.add_argument("--user", default="demo")
    p.add_argument("--api", help=f"the HTTP API ({running} {DEFAULT_API})")
    p.set_defaults(run=seed)

    p = dev.add_parser("connect", help="connect a user's account on the fake eBay or Etsy (the OAuth steps)")
    p.add_argument("marketplace", choices=["ebay", "etsy"])
    p.add_argument("--user", default="demo")
    p.add_argument("--account", help="the seller on the fake marketplace (default: its demo seller)")
    p.add_argument("--api", help=f"the HTTP API ({running} {DEFAULT_API})")
    p.set_defaults(run=connect)

    p = dev.add_parser("plugin", help="connect like the web app + extension and execute commands on a fake Vinted")
    p.add_argument("--user", required=True)
    p.add_argument("--url", help=f"the WebSocket API ({running} {DEFAULT_WS})")
    p.add_argument("--latency-ms", type=int, default=300)
    p.add_argument("--failure-rate", type=float, default=0.0)
    p.set_defaults(run=plugin)

    p = dev.add_parser(
        "sell",
        help="a buyer buys a listing on the fake eBay, Etsy or Vinted (the next orders import finds the sale)",
    )
    p.add_argument("marketplace", choices=sorted(MARKETPLACE_NAMES))
    p.add_argument(
        "listing",
        help="the marketplace's listing id (Vinted: the item id), or the crosslist product id listed there",
    )
    p.add_argument("--quantity", type=int, default=1, help="how many the buyer buys (eBay, Etsy; default: 1)")
    p.add_argument("--buyer", default="buyer1", help="the buyer's name on the marketplace")
    p.add_argument("--user", default="demo", help="whose product it is, and whose plugin simulator has the Vinted item")
    p.add_argument("--api", help=f"the HTTP API ({running} {DEFAULT_API})")
    p.set_defaults(run=sell)

    p = dev.add_parser(
        "ebay-delete-account",
        help="a seller closes their fake eBay account: eBay's signed account deletion notification reaches crosslist",
    )
    p.add_argument("account", help="the seller on the fake eBay (`crosslist dev connect ebay --account`; default dev)")
    p.add_argument("--api", help=f"the HTTP API ({running} {DEFAULT_API})")
    p.set_defaults(run=ebay_delete_account)

    p = dev.add_parser(
        "seed-shops",
        help="a seller's whole shop on the fake eBay, Etsy and Vinted (for imports), and which listings are one item",
    )
    p.add_argument("--account", default="dev", help="the seller on the fake eBay and Etsy (default: dev)")
    p.add_argument("--seed", type=int, default=7, help="which shops (the same seed, the same shops; default: 7)")
    p.add_argument("--small", action="store_true", help="50 eBay, 20 Etsy and 30 Vinted listings instead of 10 times")
    p.add_argument("--user", default="demo", help="whose plugin simulator's fake Vinted gets the wardrobe")
    p.add_argument("--api", help=f"the HTTP API ({running} {DEFAULT_API})")
    p.set_defaults(run=seed_shops)

    p = dev.add_parser("fire", help="fire a schedule now (e.g. OAuthRefreshFunction.RefreshSchedule)")
    p.add_argument("schedule")
    p.add_argument("--api", help=f"the HTTP API ({running} {DEFAULT_API})")
    p.set_defaults(run=fire)
    return root


def _up_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    where = f"seed, plugin, fire and sell find it in .devstack/{ENDPOINTS_FILE}"
    p.add_argument("--http-port", type=int, default=8000, help=f"the HTTP API's (default: 8000; 0: any free; {where})")
    p.add_argument("--ws-port", type=int, default=8001, help=f"the WebSocket API's (default: 8001; 0: any; {where})")
    p.add_argument("--aws-port", type=int, default=0, help="moto's port (default: any free one)")
    p.add_argument("--ebay-port", type=int, default=8010, help="the fake eBay's (default: 8010; 0: any free one)")
    p.add_argument("--etsy-port", type=int, default=8011, help="the fake Etsy's (default: 8011; 0: any free one)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="use this PostgreSQL (default: $DATABASE_URL, else a cluster kept in .devstack/postgres)",
    )
    p.add_argument("--concurrency", type=int, default=2, help="instances per function")
    p.add_argument("--function-log-level", default="WARNING", help="Powertools log level inside the functions")
    p.add_argument("--no-schedules", action="store_true", help="only fire schedules on demand")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="keep PostgreSQL, the JWT key, the fakes' state and the endpoints file here instead of .devstack/"
        " (a test's throwaway devstack; the other commands look in .devstack/ only)",
    )
    p.add_argument(
        "--pacing",
        action="store_true",
        help="space Vinted calls like a person (seconds apart, as in AWS); ranges from CROSSLIST_PACING_* variables",
    )
    p.set_defaults(run=up)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
