"""`crosslist dev …`: run the system locally and poke at it like the frontend would."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import jwt

from devstack.stack import REPO, DevStack, StackConfig, dev_jwt_secret

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_WS = "ws://127.0.0.1:8001"
STATE_DIR = REPO / ".devstack"
ENDPOINTS_FILE = "endpoints.json"  # in STATE_DIR while a devstack runs: where `seed`, `plugin`, `fire` go


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
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + expires_in}, dev_jwt_secret(STATE_DIR), algorithm="HS256")


DEMO_SKU_PREFIX = "devstack-demo-"  # how `seed` recognises the demo products it created before


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
            "image_urls": [f"{api}/__devstack/images/{n}.png" for n in (1, 2, 3)],
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
            "image_urls": [f"{api}/__devstack/images/{n}.png" for n in (4, 5)],
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
            "image_urls": [f"{api}/__devstack/images/6.png"],
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


def _check_devstack(api: str) -> None:
    """Raise DevstackUnavailable unless a devstack answers at `api`."""
    status, body = _request("GET", f"{api}/__devstack/health")
    if status != 200 or not isinstance(body, dict) or "functions" not in body:
        raise DevstackUnavailable(
            f"{api} answers, but it is not the devstack ({status} from /__devstack/health): "
            "start it with `make dev`, or give its URL with --api"
        )


def up(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("devstack").setLevel(logging.INFO)
    config = StackConfig(
        host=args.host,
        http_port=args.http_port,
        ws_port=args.ws_port,
        aws_port=args.aws_port,
        ebay_port=args.ebay_port,
        etsy_port=args.etsy_port,
        database_url=args.database_url,
        data_dir=STATE_DIR,
        concurrency=args.concurrency,
        pacing=args.pacing,
        function_log_level=args.function_log_level,
        schedules=not args.no_schedules,
    )
    stack = DevStack(config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    http_url = f"http://{_client_host(args.host)}:{args.http_port}"
    ws_url = f"ws://{_client_host(args.host)}:{args.ws_port}"
    try:
        stack.start()
        write_endpoints(stack.config.state_dir, http_url, ws_url)
        print(
            f"\ncrosslist devstack is up at {http_url} and {ws_url}. "
            "Try:  crosslist dev seed  |  crosslist dev plugin --user demo\n",
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
    """The demo product as `wanted`, and what was done: created, updated or already there."""
    if current is None:
        status, body = _request("POST", f"{api}/products", user_token, wanted)
        done, expected = "created", 201
    elif any(current.get(key) != value for key, value in wanted.items()):
        # e.g. seeded while the devstack ran on other ports: its image URLs name the old port
        changes = {key: value for key, value in wanted.items() if key != "sku"}
        status, body = _request("PATCH", f"{api}/products/{current['id']}", user_token, changes)
        done, expected = "updated", 200
    else:
        return current, "already there"
    if status != expected or not isinstance(body, dict):
        print(f"could not {done[:-1]} {wanted['title']!r}: {status} {body}", file=sys.stderr)
        return None, done
    return body, done


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

    mint_token(args.user)  # a key that cannot be read fails here, not at each (re)connection
    return main_loop(_ws(args), lambda: mint_token(args.user), args.latency_ms, args.failure_rate)


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

    p = dev.add_parser("up", help="run the whole system (what `make dev` does)")
    p.add_argument("--host", default="127.0.0.1")
    where = f"seed, plugin and fire find it in .devstack/{ENDPOINTS_FILE}"
    p.add_argument("--http-port", type=int, default=8000, help=f"the HTTP API's (default: 8000; {where})")
    p.add_argument("--ws-port", type=int, default=8001, help=f"the WebSocket API's (default: 8001; {where})")
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
        "--pacing",
        action="store_true",
        help="space Vinted calls like a person (seconds apart, as in AWS); ranges from CROSSLIST_PACING_* variables",
    )
    p.set_defaults(run=up)

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

    p = dev.add_parser("fire", help="fire a schedule now (e.g. OAuthRefreshFunction.RefreshSchedule)")
    p.add_argument("schedule")
    p.add_argument("--api", help=f"the HTTP API ({running} {DEFAULT_API})")
    p.set_defaults(run=fire)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
