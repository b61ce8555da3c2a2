"""The devstack's routes for the console (devstack.console): the dev sign-in, the fake Vinted a browser extension
calls over HTTP, and the console's own files."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devstack.console import BrowserVinted, browser_vinted_file, console_routes

SECRET = "console-test-secret-with-enough-bytes"
Scenario = Callable[[TestClient[web.Request, web.Application]], Awaitable[None]]


def serve(root: Path, vinted: BrowserVinted, scenario: Scenario) -> None:
    async def run() -> None:
        app = web.Application()
        app.router.add_routes(
            console_routes(root=root, jwt_secret=lambda: SECRET, ws_url=lambda: "ws://127.0.0.1:9101", vinted=vinted)
        )
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(run())


@pytest.fixture
def vinted(tmp_path: Path) -> BrowserVinted:
    return BrowserVinted(tmp_path / "fakes", latency_ms=0)


def test_a_dev_user_signs_in_with_a_token_the_devstack_accepts(tmp_path: Path, vinted: BrowserVinted) -> None:
    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        answer = await client.post("/dev/token", json={"user_id": "alice@example.com"})
        assert answer.status == 200
        body = await answer.json()
        claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
        assert claims["sub"] == "alice@example.com"
        assert claims["exp"] == body["expires_at"]

        for refused in ({"user_id": ""}, {"user_id": "a/b"}, {"user": "alice"}, ["alice"], None):
            answer = await client.post("/dev/token", json=refused)
            assert answer.status == 400
            error = await answer.json()
            assert (error["statusCode"], error["code"]) == (400, "invalid_user_id")
            assert "user_id" in error["message"]

        config = await (await client.get("/dev/config")).json()
        assert config["websocket_port"] == 9101
        assert config["demo_image_paths"][0] == "/__devstack/images/1.png"

    serve(tmp_path, vinted, scenario)


def test_the_fake_vinted_answers_over_http_as_vinted_would(tmp_path: Path, vinted: BrowserVinted) -> None:
    async def scenario(client: TestClient[web.Request, web.Application]) -> None:
        base = "/dev/vinted/alice/api/v2"
        photo = await client.post(f"{base}/photos", json={"image_url": "http://127.0.0.1/1.png", "photo": {}})
        assert photo.status == 200
        photo_id = (await photo.json())["id"]
        item = {"title": "Levi's 501", "price": "27.90", "assigned_photos": [{"id": photo_id, "orientation": 0}]}
        created = await client.post(f"{base}/item_upload/items", json={"item": item, "upload_session_id": "u1"})
        assert created.status == 200
        item_id = (await created.json())["item"]["id"]
        read = await (await client.get(f"{base}/item_upload/items/{item_id}")).json()
        assert read["item"]["title"] == "Levi's 501"
        wardrobe = await client.get(f"{base}/wardrobe/devstack-1/items?per_page=2")
        assert (await wardrobe.json())["pagination"]["per_page"] == 2

        missing = await client.get(f"{base}/item_upload/items/1")
        assert missing.status == 404
        assert await missing.text() == "Vinted answered 404 Not Found: item 1 was not found"
        refused = await client.post(f"{base}/item_upload/items", json={"item": {"title": "no photos"}})
        assert refused.status == 422

        faults = await client.post("/dev/vinted/alice/faults", json={"faults": ["throttled", "challenge"]})
        assert (await faults.json())["faults"] == ["throttled", "challenge"]
        throttled = await client.get(f"{base}/my_orders")
        assert (throttled.status, throttled.headers["Retry-After"]) == (429, "60")
        challenge = await client.get(f"{base}/my_orders")
        assert challenge.status == 403
        assert challenge.content_type == "application/json"
        assert "captcha-delivery" in await challenge.text()
        assert (await client.get(f"{base}/my_orders")).status == 200  # the faults are used up

        account = await (await client.get("/dev/vinted/alice")).json()
        assert account["items"][0] == {
            "id": item_id,
            "title": "Levi's 501",
            "price": "27.90",
            "currency": None,
            "url": f"https://www.vinted.fr/items/{item_id}",
            "is_closed": False,
            "photos": 1,
        }
        assert len(account["items"]) == 4  # and the demo account's own three listings

        answer = await client.post("/dev/vinted/alice/faults", json={"faults": ["network"]})
        assert (answer.status, (await answer.json())["code"]) == (400, "invalid_faults")
        assert (await client.get("/dev/vinted/a%20b")).status == 400

        slower = await client.put("/dev/vinted/alice/latency", json={"latency_ms": 1500})
        assert (await slower.json()) == {"latency_ms": 1500}
        assert vinted.latency_of("alice") == 1500
        assert vinted.latency_of("bob") == 0
        wrong: list[dict[str, object]] = [{"latency_ms": -1}, {"latency_ms": True}, {"latency_ms": "1"}, {}]
        for body in wrong:
            answer = await client.put("/dev/vinted/alice/latency", json=body)
            assert (answer.status, (await answer.json())["code"]) == (400, "invalid_latency")

    serve(tmp_path, vinted, scenario)

    vinted.save()
    again = BrowserVinted(tmp_path / "fakes", latency_ms=0)
    assert again.account("alice").items == vinted.account("alice").items
    assert browser_vinted_file(tmp_path / "fakes", "alice").exists()


def test_the_console_is_served_from_its_build_or_says_how_to_build_it(tmp_path: Path, vinted: BrowserVinted) -> None:
    async def not_built(client: TestClient[web.Request, web.Application]) -> None:
        answer = await client.get("/console/")
        assert answer.status == 503
        assert "make console" in await answer.text()

    serve(tmp_path, vinted, not_built)

    console = tmp_path / "clients/ts/dist/console"
    client_dir = tmp_path / "clients/ts/dist/src"
    console.mkdir(parents=True)
    client_dir.mkdir(parents=True)
    (console / "index.html").write_text("<!doctype html><title>console</title>")
    (console / "console.js").write_text("import '@crosslist/client';")
    (console / "console.css").write_text("body {}")
    (client_dir / "index.js").write_text("export {};")
    (tmp_path / "clients/ts/dist/secret.txt").write_text("not served")

    async def built(client: TestClient[web.Request, web.Application]) -> None:
        moved = await client.get("/console?code=1&state=2", allow_redirects=False)
        assert (moved.status, moved.headers["Location"]) == (302, "/console/?code=1&state=2")
        for path, content_type in [
            ("/console/", "text/html"),
            ("/console/index.html", "text/html"),
            ("/console/console.js", "text/javascript"),
            ("/console/console.css", "text/css"),
            ("/console/client/index.js", "text/javascript"),
        ]:
            answer = await client.get(path)
            assert (answer.status, answer.content_type) == (200, content_type), path
        for path in ("/console/client/../secret.txt", "/console/%2e%2e/secret.txt", "/console/nothing.js"):
            assert (await client.get(path)).status == 404, path

    serve(tmp_path, vinted, built)
