"""`crosslist dev seed|plugin|fire|up|sell` for a newcomer: other ports, a devstack not running, seeding twice,
selling on the fakes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devstack import cli
from devstack.fake_ebay import FakeEbay
from devstack.plugin import VintedSimulator
from devstack.plugin_control import control_server
from tests.unit import test_fake_ebay as ebay_api


class FakeApi:
    """The products routes of the HTTP API and the devstack's health route, in memory."""

    def __init__(self) -> None:
        self.products: list[dict[str, Any]] = []
        self.fakes: dict[str, str] = {}  # the devstack's fake marketplaces: name -> base URL
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.calls.append(f"{method} {path}")
            if method == "GET" and path == "/__devstack/health":
                return 200, {"functions": ["ProductsFunction"], "schedules": [], "fakes": self.fakes}
            if method == "GET" and path.startswith("/products/"):
                found = [p for p in self.products if p["id"] == path.rsplit("/", 1)[1]]
                return (200, found[0]) if found else (404, {"message": "Not Found"})
            if method == "GET" and path == "/products":
                limit, offset = int(query["limit"][0]), int(query["offset"][0])
                page = self.products[offset : offset + limit]
                return 200, {"items": page, "total": len(self.products), "limit": limit, "offset": offset}
            if method == "POST" and path == "/products":
                now = datetime.now(UTC).isoformat()
                product = {"id": str(uuid.uuid4()), "sku": None, "created_at": now, "updated_at": now, **body}
                self.products.append(product)
                return 201, product
            if method == "PATCH" and path.startswith("/products/"):
                [product] = [p for p in self.products if p["id"] == path.rsplit("/", 1)[1]]
                product.update(body)
                return 200, product
            return 404, {"message": "Not Found"}


@pytest.fixture
def api() -> Iterator[tuple[str, FakeApi]]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = fake.handle(self.command, url.path, parse_qs(url.query), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's .devstack folder (its JWT key, the endpoints file): a temporary one."""
    monkeypatch.setattr(cli, "STATE_DIR", tmp_path / ".devstack")
    return tmp_path / ".devstack"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_seeding_twice_leaves_the_three_demo_products(
    api: tuple[str, FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = api

    assert cli.main(["dev", "seed", "--api", url]) == 0
    first = capsys.readouterr().out
    assert cli.main(["dev", "seed", "--api", url]) == 0
    second = capsys.readouterr().out

    assert len(fake.products) == 3
    assert sorted(p["title"] for p in fake.products) == ["Leather ankle boots", "Levi's 501 jeans", "Wool winter coat"]
    assert first.count(", created)") == 3
    assert second.count(", already there)") == 3
    for product in fake.products:  # both runs show the same products
        assert product["id"] in first
        assert product["id"] in second
    assert f"curl -s -X POST {url}/jobs" in second


def test_seeding_again_keeps_what_the_user_changed_in_the_demo_products(
    api: tuple[str, FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = api
    assert cli.main(["dev", "seed", "--api", url]) == 0
    fake.products[0].update(title="My own title", price="12.00", quantity=0)

    assert cli.main(["dev", "seed", "--api", url]) == 0

    assert capsys.readouterr().out.count(", already there)") == 3
    assert (fake.products[0]["title"], fake.products[0]["price"], fake.products[0]["quantity"]) == (
        "My own title",
        "12.00",
        0,
    )


def test_seeding_through_another_url_updates_the_demo_products_image_urls(
    api: tuple[str, FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = api
    assert cli.main(["dev", "seed", "--api", url]) == 0
    other = url.replace("127.0.0.1", "localhost")  # as if the devstack now ran elsewhere

    assert cli.main(["dev", "seed", "--api", other]) == 0

    assert len(fake.products) == 3
    assert capsys.readouterr().out.count(", updated)") == 3
    assert all(image.startswith(f"{other}/__devstack/images/") for p in fake.products for image in p["image_urls"])


@pytest.mark.parametrize(
    ("command", "url"),
    [
        (["seed"], "http://127.0.0.1:{port}"),
        (["fire", "OAuthRefreshFunction.RefreshSchedule"], "http://127.0.0.1:{port}"),
        (["plugin", "--user", "demo"], "ws://127.0.0.1:{port}"),
    ],
)
def test_a_devstack_that_is_not_running_is_one_line_not_a_traceback(
    command: list[str], url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = url.format(port=free_port())
    flag = "--url" if command[0] == "plugin" else "--api"

    assert cli.main(["dev", *command, flag, url]) == 1

    out, err = capsys.readouterr()
    assert err.endswith(f"the devstack is not running at {url}: start it with `make dev`\n")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in out + err


def test_something_else_on_the_port_is_not_taken_for_the_devstack(capsys: pytest.CaptureFixture[str]) -> None:
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert cli.main(["dev", "seed", "--api", f"http://127.0.0.1:{server.server_address[1]}"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "is it the devstack?" in err


def test_the_commands_go_where_the_running_devstack_listens(
    api: tuple[str, FakeApi], state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = api
    ws = f"ws://127.0.0.1:{free_port()}"
    cli.write_endpoints(state_dir, url, ws)

    assert cli.main(["dev", "seed"]) == 0
    assert len(fake.products) == 3
    out = capsys.readouterr().out
    assert f"curl -s -X POST {url}/jobs" in out
    assert all(image.startswith(f"{url}/__devstack/images/") for p in fake.products for image in p["image_urls"])

    assert cli.main(["dev", "plugin", "--user", "demo"]) == 1  # nothing listens on that WebSocket port
    assert f"the devstack is not running at {ws}:" in capsys.readouterr().err

    cli.remove_endpoints(state_dir)
    assert not (state_dir / cli.ENDPOINTS_FILE).exists()
    assert cli.read_endpoints(state_dir) == {}


def test_the_endpoints_of_a_devstack_that_died_are_ignored(state_dir: Path) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    state_dir.mkdir()
    (state_dir / cli.ENDPOINTS_FILE).write_text(
        json.dumps({"http_url": "http://127.0.0.1:9000", "ws_url": "ws://127.0.0.1:9001", "pid": ended.pid})
    )

    assert cli.read_endpoints(state_dir) == {}
    cli.remove_endpoints(state_dir)  # not ours: left alone
    assert (state_dir / cli.ENDPOINTS_FILE).exists()


class FakeStack:
    """Stands in for DevStack in `up`: checks the endpoints file while 'running', then asks `up` to stop."""

    seen: dict[str, Any] = {}
    stopped_with_file: bool | None = None

    def __init__(self, config: Any) -> None:
        self.config = config

    def start(self) -> None:
        def look_then_stop() -> None:
            try:
                FakeStack.seen = json.loads((self.config.state_dir / cli.ENDPOINTS_FILE).read_text())
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # what `up` stops on, besides Ctrl-C

        threading.Timer(0.2, look_then_stop).start()

    def stop(self) -> None:
        FakeStack.stopped_with_file = (self.config.state_dir / cli.ENDPOINTS_FILE).exists()


def test_up_publishes_its_endpoints_while_running_and_removes_them_on_stop(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "DevStack", FakeStack)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        args = ["dev", "up", "--host", "0.0.0.0", "--http-port", "9000", "--ws-port", "9001"]
        assert cli.main([*args, "--database-url", "postgresql://unused"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert FakeStack.seen == {"http_url": "http://127.0.0.1:9000", "ws_url": "ws://127.0.0.1:9001", "pid": os.getpid()}
    assert FakeStack.stopped_with_file is False


def test_up_on_port_0_takes_free_ports_and_keeps_its_data_where_told(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test's own devstack (the TypeScript and browser tests): free ports, its own data directory."""
    monkeypatch.setattr(cli, "DevStack", FakeStack)
    previous = signal.getsignal(signal.SIGTERM)
    data_dir = tmp_path / "throwaway"
    try:
        args = ["dev", "up", "--http-port", "0", "--ws-port", "0", "--data-dir", str(data_dir)]
        assert cli.main([*args, "--database-url", "postgresql://unused"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)

    http_port, ws_port = (int(FakeStack.seen[key].rsplit(":", 1)[1]) for key in ("http_url", "ws_url"))
    assert min(http_port, ws_port) > 0
    assert http_port != ws_port
    assert not (state_dir / cli.ENDPOINTS_FILE).exists()  # the checkout's .devstack is left alone


# `crosslist dev sell`: a buyer buys on a fake marketplace, by the listing's id or the product's.


@pytest.fixture
def ebay_listing(fake_ebay: FakeEbay) -> str:
    """A listing of 2 on the fake eBay: its id."""
    token = fake_ebay.issue_tokens("dev")["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Language": "en-GB"}
    with httpx.Client(base_url=fake_ebay.base_url, headers=headers) as seller:
        _, listing_id = ebay_api.published(fake_ebay, seller)
    return listing_id


def a_product(api: FakeApi, **fields: Any) -> str:
    product_id = str(uuid.uuid4())
    api.products.append({"id": product_id, "title": "Levi's 501 jeans", **fields})
    return product_id


def test_sell_ebay_sells_the_products_live_listing_and_says_how_to_import_the_order(
    api: tuple[str, FakeApi], fake_ebay: FakeEbay, ebay_listing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = api
    fake.fakes = {"ebay": fake_ebay.base_url}
    listings = [
        {"marketplace": "vinted", "status": "active", "external_id": "4242"},
        {"marketplace": "ebay", "status": "active", "external_id": ebay_listing},
    ]
    product_id = a_product(fake, listings=listings)

    assert cli.main(["dev", "sell", "ebay", product_id, "--quantity", "2", "--buyer", "jane", "--api", url]) == 0

    [order] = fake_ebay.orders("dev")
    assert (order["lineItems"][0]["legacyItemId"], order["lineItems"][0]["quantity"]) == (ebay_listing, 2)
    assert order["buyer"]["username"] == "jane"
    out = capsys.readouterr().out
    assert out.startswith(f"sold 2 of eBay listing {ebay_listing} to jane: order {order['orderId']}\n")
    assert '{"marketplace": "ebay", "action": "sync_orders"}' in out
    assert f"{url}/products/{product_id}/sales" in out


@pytest.mark.parametrize(
    "listings",
    [
        [{"marketplace": "ebay", "status": "deleted", "external_id": "110"}],
        [{"marketplace": "etsy", "status": "active", "external_id": "111"}],
        [],
    ],
)
def test_sell_refuses_a_product_no_longer_listed_there(
    api: tuple[str, FakeApi], listings: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = api
    fake.fakes = {"ebay": "http://127.0.0.1:9"}  # never reached
    product_id = a_product(fake, listings=listings)

    assert cli.main(["dev", "sell", "ebay", product_id, "--api", url]) == 1

    assert capsys.readouterr().err == f"product {product_id} has no live listing on eBay: publish it there first\n"


def test_sell_vinted_reaches_the_users_plugin_simulator(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vinted = VintedSimulator(latency_ms=0)
    item = vinted.add_item("Levi's 501", "27.90")

    async def sell_while_the_plugin_runs() -> list[int]:
        async with control_server(vinted) as control_url:
            cli.write_plugin_endpoint(state_dir, "demo", control_url)
            loop = asyncio.get_running_loop()
            selling = ["dev", "sell", "vinted", str(item), "--buyer", "jane"]
            return [await loop.run_in_executor(None, cli.main, selling) for _ in range(2)]

    first, again = asyncio.run(sell_while_the_plugin_runs())

    assert (first, again) == (0, 1)  # one of a kind: sold once
    [order] = vinted.orders.values()
    assert (order["item_id"], order["buyer"]) == (item, {"login": "jane"})
    assert vinted.items[item]["item_closing_action"] == "sold"
    out, err = capsys.readouterr()
    assert out.startswith(f"sold Vinted listing {item} to jane: order {order['transaction_id']}\n")
    assert '{"marketplace": "vinted", "action": "orders"}' in out
    assert err == f"the fake Vinted did not sell {item}: item {item} is already closed (sold)\n"


def test_sell_vinted_without_a_plugin_simulator_says_how_to_start_one(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    cli.write_plugin_endpoint(state_dir, "demo", f"http://127.0.0.1:{free_port()}")
    endpoint = state_dir / cli.PLUGINS_DIR / "demo.json"
    endpoint.write_text(json.dumps({**json.loads(endpoint.read_text()), "pid": ended.pid}))  # a plugin that died

    assert cli.main(["dev", "sell", "vinted", "4242"]) == 1

    assert capsys.readouterr().err == (
        "no plugin simulator runs for user demo, and the fake Vinted lives in it: "
        "start it with `crosslist dev plugin --user demo`\n"
    )
