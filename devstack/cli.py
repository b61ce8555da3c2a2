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
import urllib.request
from typing import Any

import jwt

from devstack.stack import REPO, DevStack, StackConfig, dev_jwt_secret

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_WS = "ws://127.0.0.1:8001"


def mint_token(user: str, expires_in: int = 12 * 3600) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": user, "iat": now, "exp": now + expires_in}, dev_jwt_secret(REPO / ".devstack"), algorithm="HS256"
    )


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
            "title": "Levi's 501 jeans",
            "description": "Straight fit, barely worn.",
            "price": "27.90",
            "brand": "Levi's",
            "size": "W32 L32",
            "condition": "very good",
            "color": "blue",
            "image_urls": [f"{api}/__devstack/images/{n}.png" for n in (1, 2, 3)],
            "marketplace_attributes": {"vinted": vinted},
        },
        {
            "title": "Wool winter coat",
            "description": "Warm, one button replaced.",
            "price": "45.00",
            "brand": "Zara",
            "size": "M",
            "condition": "good",
            "image_urls": [f"{api}/__devstack/images/{n}.png" for n in (4, 5)],
            "marketplace_attributes": {"vinted": {**vinted, "brand_id": 12, "catalog_id": 1907, "size_id": 4}},
        },
        {
            "title": "Leather ankle boots",
            "description": "Size 39, resoled last year.",
            "price": "35.50",
            "image_urls": [f"{api}/__devstack/images/6.png"],
            "marketplace_attributes": {"vinted": {**vinted, "brand_id": 304, "catalog_id": 1242, "size_id": 58}},
        },
    ]


def _request(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def up(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("devstack").setLevel(logging.INFO)
    config = StackConfig(
        host=args.host,
        http_port=args.http_port,
        ws_port=args.ws_port,
        aws_port=args.aws_port,
        database_url=args.database_url,
        concurrency=args.concurrency,
        function_log_level=args.function_log_level,
        schedules=not args.no_schedules,
    )
    stack = DevStack(config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        print("\ncrosslist devstack is up. Try:  crosslist dev seed  |  crosslist dev plugin --user demo\n", flush=True)
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping…", flush=True)
        stack.stop()
    return 0


def token(args: argparse.Namespace) -> int:
    print(mint_token(args.user, args.expires_in))
    return 0


def seed(args: argparse.Namespace) -> int:
    user_token = mint_token(args.user)
    created = []
    for product in demo_products(args.api):
        status, body = _request("POST", f"{args.api}/products", user_token, product)
        if status != 201:
            print(f"could not create {product['title']!r}: {status} {body}", file=sys.stderr)
            return 1
        created.append(body)
        photos = len(body["image_urls"])
        print(f"product {body['id']}  {body['title']}  ({photos} photo{'s' if photos > 1 else ''})")
    first = created[0]["id"]
    print(
        f"\nPublish the first one on Vinted (with `crosslist dev plugin --user {args.user}` running):\n"
        f"  curl -s -X POST {args.api}/jobs -H 'Authorization: Bearer {user_token}' \\\n"
        f"       -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"marketplace": "vinted", "action": "publish", "product_id": "{first}"}}\''
    )
    return 0


def plugin(args: argparse.Namespace) -> int:
    from devstack.plugin import main_loop

    return main_loop(args.url, mint_token(args.user), args.latency_ms, args.failure_rate)


def fire(args: argparse.Namespace) -> int:
    status, body = _request("POST", f"{args.api}/__devstack/schedules/{args.schedule}")
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
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--ws-port", type=int, default=8001)
    p.add_argument("--aws-port", type=int, default=0, help="moto's port (default: any free one)")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="use this PostgreSQL (default: $DATABASE_URL, else a cluster kept in .devstack/postgres)",
    )
    p.add_argument("--concurrency", type=int, default=2, help="instances per function")
    p.add_argument("--function-log-level", default="WARNING", help="Powertools log level inside the functions")
    p.add_argument("--no-schedules", action="store_true", help="only fire schedules on demand")
    p.set_defaults(run=up)

    p = dev.add_parser("token", help="mint a JWT the devstack accepts")
    p.add_argument("--user", required=True)
    p.add_argument("--expires-in", type=int, default=12 * 3600, help="seconds")
    p.set_defaults(run=token)

    p = dev.add_parser("seed", help="create a demo user's products")
    p.add_argument("--user", default="demo")
    p.add_argument("--api", default=DEFAULT_API)
    p.set_defaults(run=seed)

    p = dev.add_parser("plugin", help="connect like the web app + extension and execute commands on a fake Vinted")
    p.add_argument("--user", required=True)
    p.add_argument("--url", default=DEFAULT_WS)
    p.add_argument("--latency-ms", type=int, default=300)
    p.add_argument("--failure-rate", type=float, default=0.0)
    p.set_defaults(run=plugin)

    p = dev.add_parser("fire", help="fire a schedule now (e.g. OAuthRefreshFunction.RefreshSchedule)")
    p.add_argument("schedule")
    p.add_argument("--api", default=DEFAULT_API)
    p.set_defaults(run=fire)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
