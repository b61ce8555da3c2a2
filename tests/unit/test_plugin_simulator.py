"""The plugin simulator answers plugin commands from a fake backend WebSocket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from devstack.plugin import (
    EXTENSION_VERSION,
    FIRST_ITEM_ID,
    VINTED_USER_ID,
    Backoff,
    ImageFailure,
    PluginConnectionRefused,
    PluginUnreachable,
    VintedReply,
    VintedSimulator,
    describe_event,
    describe_result,
    main_loop,
    run_plugin,
)
from tests.conftest import REPO
from tests.support.fakes import FakeVinted

TOKEN = "token-for-user-42"
JOB_ID = "1234abcd-0000-4000-8000-000000000000"
IMAGE = b"\xff\xd8\xff\xe0 not really a jpeg"
READY = {
    "action": "plugin_status",
    "ready": True,
    "extension_version": EXTENSION_VERSION,
    "vinted_user_id": VINTED_USER_ID,
}
WARDROBE = f"/api/v2/wardrobe/{VINTED_USER_ID}/items?page=1&per_page=96&order=newest_first"

Json = dict[str, Any]


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout=5)

    return asyncio.run(bounded())


class Backend:
    """A fake backend: checks the token, runs `script` on each WebSocket, serves images under /images/."""

    def __init__(self, script: Callable[[Backend, web.WebSocketResponse], Awaitable[None]]) -> None:
        self.script = script
        self.base = ""
        self.results: list[Json] = []
        self.image_requests: list[str] = []
        self.elapsed: list[float] = []
        self.statuses: list[Json] = []  # the first message of each connection
        self.connections = 0

    async def ask(
        self, ws: web.WebSocketResponse, step: str, path: str, payload: Json | None, method: str = "POST"
    ) -> Json:
        request_id = f"req-{len(self.results) + 1}"
        started = time.monotonic()
        await ws.send_json(command(request_id, step, method, path, payload))
        result: Json = await ws.receive_json(timeout=3)
        self.elapsed.append(time.monotonic() - started)
        self.results.append(result)
        return result

    def photo(self, name: str) -> Json:
        return {"image_url": f"{self.base}/images/{name}", "photo": {"type": "item", "temp_uuid": JOB_ID}}

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        if request.query.get("token") != TOKEN:
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self.statuses.append(await ws.receive_json(timeout=3))  # the web app says its extension is ready
        await self.script(self, ws)
        await ws.close()
        return ws

    async def image(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.image_requests.append(name)
        if name.startswith("missing"):
            raise web.HTTPNotFound()
        return web.Response(body=IMAGE, content_type="image/jpeg")


@asynccontextmanager
async def serving(backend: Backend, port: int | None = 0) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", backend.websocket)
    app.router.add_get("/images/{name}", backend.image)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port or 0, reuse_address=True)
    await site.start()
    host, port = runner.addresses[0][:2]
    backend.base = f"http://{host}:{port}"
    try:
        yield f"ws://{host}:{port}/"
    finally:
        await runner.cleanup()


def command(request_id: str, step: str, method: str, path: str, payload: Json | None) -> Json:
    return {
        "type": "plugin.command",
        "request_id": request_id,
        "job_id": JOB_ID,
        "step": step,
        "method": method,
        "path": path,
        "payload": payload,
        "timeout_ms": 5000,
    }


def item_payload(*photo_ids: Any) -> Json:
    return {
        "item": {
            "title": "Levi's 501",
            "price": "25.00",
            "assigned_photos": [{"id": photo_id, "orientation": 0} for photo_id in photo_ids],
        },
        "upload_session_id": JOB_ID,
    }


async def publish(backend: Backend, ws: web.WebSocketResponse) -> None:
    """Two photos, then the item with the returned photo ids, a progress message and the completion."""
    first = await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
    await ws.send_json(
        {
            "type": "job.progress",
            "job_id": JOB_ID,
            "step": "upload_photo_1",
            "current_step": 1,
            "total_steps": 3,
            "message": "Uploading photo 1 of 2",
        }
    )
    second = await backend.ask(ws, "upload_photo_2", "/api/v2/photos", backend.photo("2.jpg"))
    ids = [reply.get("result", {}).get("id") for reply in (first, second)]
    item = await backend.ask(ws, "create_item", "/api/v2/item_upload/items", item_payload(*ids))
    url = item.get("result", {}).get("item", {}).get("url")
    await ws.send_json({"type": "job.completed", "job_id": JOB_ID, "result": {"url": url}})


async def simulate(
    script: Callable[[Backend, web.WebSocketResponse], Awaitable[None]],
    vinted: VintedSimulator,
    token: str = TOKEN,
) -> tuple[Backend, list[Json]]:
    backend = Backend(script)
    events: list[Json] = []
    async with serving(backend) as url:
        await run_plugin(url, token, vinted, on_event=events.append, on_result=lambda c, r: None)
    return backend, events


def test_publish_round_trip_follows_the_protocol() -> None:
    vinted = VintedSimulator(latency_ms=0)
    backend, events = run(simulate(publish, vinted))

    assert backend.statuses == [READY]
    assert backend.results == [
        {
            "action": "plugin_result",
            "request_id": "req-1",
            "success": True,
            "result": {"id": 9001, "url": backend.photo("1.jpg")["image_url"]},
            "status": 200,
        },
        {
            "action": "plugin_result",
            "request_id": "req-2",
            "success": True,
            "result": {"id": 9002, "url": backend.photo("2.jpg")["image_url"]},
            "status": 200,
        },
        {
            "action": "plugin_result",
            "request_id": "req-3",
            "success": True,
            "result": {"item": {"id": 4242, "url": "https://www.vinted.fr/items/4242"}},
            "status": 200,
        },
    ]
    assert backend.image_requests == ["1.jpg", "2.jpg"]
    assert set(vinted.photos) == {9001, 9002}
    item = vinted.items[4242]
    assert (item["title"], item["price"], item["photo_ids"], item["upload_session_id"]) == (
        "Levi's 501",
        "25.00",
        [9001, 9002],
        JOB_ID,
    )
    assert [event["type"] for event in events] == ["job.progress", "job.completed"]
    assert [describe_event(event) for event in events] == [
        "job 1234abcd: step 1/3 Uploading photo 1 of 2",
        "job 1234abcd completed: https://www.vinted.fr/items/4242",
    ]


def test_latency_is_honoured() -> None:
    async def one_photo(backend: Backend, ws: web.WebSocketResponse) -> None:
        await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))

    backend, _ = run(simulate(one_photo, VintedSimulator(latency_ms=120)))

    assert backend.results[0]["success"] is True
    assert 0.11 <= backend.elapsed[0] < 1.0


def test_failure_rate_one_fails_every_call_with_a_message() -> None:
    vinted = VintedSimulator(latency_ms=0, failure_rate=1.0, random=Random(7))
    backend, events = run(simulate(publish, vinted))

    assert [reply["request_id"] for reply in backend.results] == ["req-1", "req-2", "req-3"]
    for reply in backend.results:
        assert reply["success"] is False
        assert "result" not in reply
        assert "Vinted" in reply["error"] or "network" in reply["error"]
        # As the extension reports them: Vinted's status, none when Vinted was never reached.
        assert reply.get("status") in (503, 429, 500, 401, None)
        assert ("retry_after" in reply) == (reply.get("status") == 429)
    assert vinted.photos == {}
    assert vinted.items == {}
    assert backend.image_requests == []
    assert [event["type"] for event in events] == ["job.progress", "job.completed"]


def test_failure_rate_is_a_probability() -> None:
    async def image(url: str) -> bytes:
        return IMAGE

    vinted = VintedSimulator(latency_ms=0, failure_rate=0.5, random=Random(3))
    command = {"method": "POST", "path": "/api/v2/photos", "payload": {"image_url": "https://img.example/1.jpg"}}

    async def many() -> list[bool]:
        return [(await vinted.execute(command, image)).success for _ in range(40)]

    outcomes = asyncio.run(many())
    assert 5 < outcomes.count(True) < 35
    with pytest.raises(ValueError, match="failure_rate"):
        VintedSimulator(failure_rate=1.5)


def test_image_download_failures_fail_the_photo() -> None:
    async def bad_images(backend: Backend, ws: web.WebSocketResponse) -> None:
        await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("missing.jpg"))
        await backend.ask(ws, "upload_photo_2", "/api/v2/photos", {"image_url": "file:///etc/passwd"})

    vinted = VintedSimulator(latency_ms=0)
    backend, _ = run(simulate(bad_images, vinted))

    missing, local = backend.results
    assert missing["request_id"] == "req-1"
    assert missing["success"] is False
    assert missing["error"].startswith(f"could not download image {backend.base}/images/missing.jpg")
    assert "404" in missing["error"]
    # The photo failed, not Vinted: said so, with the URL and what the image host answered.
    assert (missing["error_kind"], missing["image_url"], missing["image_status"]) == (
        "image",
        f"{backend.base}/images/missing.jpg",
        404,
    )
    assert "status" not in missing  # Vinted was never called
    assert local["success"] is False
    assert "could not download image file:///etc/passwd" in local["error"]
    assert (local["error_kind"], local["image_url"], local["image_error"]) == (
        "image",
        "file:///etc/passwd",
        "unsupported_url",
    )
    assert backend.image_requests == ["missing.jpg"]
    assert vinted.photos == {}


@pytest.mark.parametrize("answer", ["perform", "execute"])
def test_photos_a_test_says_are_broken_fail_without_being_downloaded(answer: str) -> None:
    broken, fine = "https://img.example/gone.jpg", "https://img.example/fine.jpg"
    vinted = VintedSimulator(latency_ms=0, broken_images={broken: ImageFailure(status=410)})

    async def image(url: str) -> bytes:
        assert url == fine, "a broken photo is not downloaded"
        return IMAGE

    def upload(url: str) -> VintedReply:
        photo = command("r", "upload_photo_1", "POST", "/api/v2/photos", {"image_url": url})
        return vinted.perform(photo) if answer == "perform" else asyncio.run(vinted.execute(photo, image))

    failed = upload(broken).message("r")
    assert (failed["success"], failed["error_kind"], failed["image_url"], failed["image_status"]) == (
        False,
        "image",
        broken,
        410,
    )
    assert upload(fine).success
    assert list(vinted.photos.values()) == [fine]


def test_unknown_photo_id_fails_the_item() -> None:
    async def stray_photo(backend: Backend, ws: web.WebSocketResponse) -> None:
        photo = await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
        await backend.ask(ws, "create_item", "/api/v2/item_upload/items", item_payload(photo["result"]["id"], 123))

    vinted = VintedSimulator(latency_ms=0)
    backend, _ = run(simulate(stray_photo, vinted))

    assert backend.results[0]["success"] is True
    item = backend.results[1]
    assert item["request_id"] == "req-2"
    assert item["success"] is False
    assert "unknown photo id 123" in item["error"]
    assert vinted.items == {}


def test_unsupported_path_fails() -> None:
    async def no_image(url: str) -> bytes:
        raise AssertionError("no download expected")

    vinted = VintedSimulator(latency_ms=0)
    reply = asyncio.run(vinted.execute({"method": "DELETE", "path": "/api/v2/items/1", "payload": None}, no_image))
    assert (reply.success, reply.result, reply.status) == (False, None, 404)
    assert reply.error == "unsupported path DELETE /api/v2/items/1"


def test_wrong_token_is_refused() -> None:
    async def never(backend: Backend, ws: web.WebSocketResponse) -> None:
        raise AssertionError("the upgrade must be refused")

    with pytest.raises(PluginConnectionRefused, match="refused the token"):
        run(simulate(never, VintedSimulator(latency_ms=0), token="wrong"))


def test_returns_when_stop_is_set() -> None:
    async def stay_open(backend: Backend, ws: web.WebSocketResponse) -> None:
        await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
        await ws.send_json(
            {
                "type": "job.retrying",
                "job_id": JOB_ID,
                "attempt": 2,
                "next_attempt_at": "2026-11-24T16:00:00+00:00",
                "error": {"code": "plugin_error", "message": "boom"},
            }
        )
        await ws.receive()  # until the simulator closes

    async def scenario() -> tuple[Backend, list[Json]]:
        backend = Backend(stay_open)
        events: list[Json] = []
        stop = asyncio.Event()

        def on_event(event: Json) -> None:
            events.append(event)
            stop.set()

        async with serving(backend) as url:
            await run_plugin(url, TOKEN, VintedSimulator(latency_ms=0), stop=stop, on_event=on_event)
        return backend, events

    backend, events = run(scenario())
    assert backend.results[0]["success"] is True
    assert describe_event(events[0]) == (
        "job 1234abcd retrying (attempt 2 at 2026-11-24T16:00:00+00:00): plugin_error: boom"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_main_loop_reports_an_unreachable_backend(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()

    assert main_loop(f"ws://127.0.0.1:{port}", "secret-token", 0, 0.0) == 1
    err = capsys.readouterr().err
    assert err == f"plugin simulator: the devstack is not running at ws://127.0.0.1:{port}: start it with `make dev`\n"


FAST = Backoff(initial=0.01, maximum=0.05)


def test_the_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, maximum=15.0, jitter=0.5)
    always_max, always_min = Random(), Random()
    always_max.random = lambda: 0.0  # type: ignore[method-assign]
    always_min.random = lambda: 0.999999  # type: ignore[method-assign]

    assert [backoff.delay(n, always_max) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert backoff.delay(2, always_min) == pytest.approx(1.0, abs=1e-5)  # at most halved
    assert backoff.delay(10_000, always_max) == 15.0
    jittered = {round(backoff.delay(3, Random(seed)), 6) for seed in range(20)}
    assert len(jittered) > 10
    assert all(2.0 <= delay <= 4.0 for delay in jittered)


def test_reconnects_after_the_backend_closes_and_resumes_executing_commands() -> None:
    async def one_command_then_close(backend: Backend, ws: web.WebSocketResponse) -> None:
        step = f"upload_photo_{backend.connections}"
        await backend.ask(ws, step, "/api/v2/photos", backend.photo(f"{backend.connections}.jpg"))

    async def scenario() -> tuple[Backend, list[str], int]:
        backend = Backend(one_command_then_close)
        stop = asyncio.Event()
        notices: list[str] = []
        tokens = 0

        def fresh_token() -> str:
            nonlocal tokens
            tokens += 1
            return TOKEN

        def on_result(command: Json, reply: Json) -> None:
            if command["step"] == "upload_photo_3":
                stop.set()

        async with serving(backend) as url:
            await run_plugin(
                url,
                fresh_token,
                VintedSimulator(latency_ms=0),
                stop=stop,
                on_result=on_result,
                on_connected=lambda: None,
                on_notice=notices.append,
                reconnect=FAST,
            )
        return backend, notices, tokens

    backend, notices, tokens = run(scenario())
    assert backend.connections == 3
    assert tokens == 3  # a fresh token for each connection
    assert [status["action"] for status in backend.statuses] == ["plugin_status"] * 3
    assert [reply["success"] for reply in backend.results] == [True, True, True]
    assert backend.image_requests == ["1.jpg", "2.jpg", "3.jpg"]
    assert len(notices) == 2
    assert all(n.startswith("the backend closed the connection (code 1000); reconnecting in") for n in notices)


def test_reconnects_when_the_backend_comes_back_after_a_restart() -> None:
    """`make dev` stopped and started again: connecting fails for a while, then works."""

    async def scenario() -> tuple[Backend, list[str]]:
        stop = asyncio.Event()
        notices: list[str] = []
        first_gone = asyncio.Event()

        async def first(backend: Backend, ws: web.WebSocketResponse) -> None:
            first_gone.set()  # then the socket closes and the server goes away

        async def second(backend: Backend, ws: web.WebSocketResponse) -> None:
            await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
            stop.set()

        before, after = Backend(first), Backend(second)
        async with serving(before) as url:
            simulator = asyncio.create_task(
                run_plugin(
                    url,
                    TOKEN,
                    VintedSimulator(latency_ms=0),
                    stop=stop,
                    on_result=lambda c, r: None,
                    on_connected=lambda: None,
                    on_notice=notices.append,
                    reconnect=FAST,
                )
            )
            await first_gone.wait()
        while sum("could not connect" in notice for notice in notices) < 3:
            await asyncio.sleep(0.01)
        async with serving(after, port=URL(url).port):
            await simulator
        return after, notices

    after, notices = run(scenario())
    assert after.statuses == [READY]
    assert after.results[0]["success"] is True
    assert notices[0].startswith("the backend closed the connection")
    assert "could not connect to ws://127.0.0.1:" in notices[1]
    assert [int(notice.rsplit("attempt ", 1)[1].rstrip(")")) for notice in notices[:4]] == [1, 2, 3, 4]


def test_the_first_connection_is_not_retried() -> None:
    async def scenario() -> None:
        await run_plugin(f"ws://127.0.0.1:{free_port()}/", TOKEN, VintedSimulator(latency_ms=0), reconnect=FAST)

    with pytest.raises(PluginUnreachable, match="could not connect"):
        run(scenario())


def test_stop_ends_a_backoff_at_once() -> None:
    async def close_at_once(backend: Backend, ws: web.WebSocketResponse) -> None:
        pass

    async def scenario() -> float:
        stop = asyncio.Event()
        async with serving(Backend(close_at_once)) as url:
            started = time.monotonic()
            await run_plugin(
                url,
                TOKEN,
                VintedSimulator(latency_ms=0),
                stop=stop,
                on_connected=lambda: None,
                on_notice=lambda notice: stop.set(),  # Ctrl-C while waiting to reconnect
                reconnect=Backoff(initial=30, jitter=0),
            )
            return time.monotonic() - started

    assert run(scenario()) < 1


def test_error_frames_are_shown_and_commands_still_run() -> None:
    async def refuses_then_asks(backend: Backend, ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "error", "code": "rate_limited", "message": "slow down", "request_id": None})
        await ws.send_json(
            {"type": "error", "code": "invalid_message", "message": "unknown action", "request_id": "req-0"}
        )
        await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))

    backend, events = run(simulate(refuses_then_asks, VintedSimulator(latency_ms=0)))

    assert backend.results[0]["success"] is True
    assert [describe_event(event) for event in events] == [
        "backend refused a message [rate_limited]: slow down",
        "backend refused a message [invalid_message] (request req-0): unknown action",
    ]


def test_the_wardrobe_lists_the_created_items_newest_first() -> None:
    async def publish_then_look(backend: Backend, ws: web.WebSocketResponse) -> None:
        photo = await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
        await backend.ask(ws, "create_item", "/api/v2/item_upload/items", item_payload(photo["result"]["id"]))
        await backend.ask(ws, "create_item", "/api/v2/item_upload/items", item_payload(photo["result"]["id"]))
        await backend.ask(ws, "create_item", WARDROBE, None, method="GET")
        await backend.ask(ws, "create_item", "/api/v2/wardrobe/someone-else/items?page=1", None, method="GET")

    backend, _ = run(simulate(publish_then_look, VintedSimulator(latency_ms=0)))

    wardrobe, stranger = backend.results[3:]
    assert wardrobe["success"] is True
    assert [item["id"] for item in wardrobe["result"]["items"]] == [4243, 4242]
    assert wardrobe["result"]["items"][1] == {
        "id": 4242,
        "title": "Levi's 501",
        "price": {"amount": "25.00", "currency_code": "EUR"},
        "photos": [
            {
                "id": 9001,
                "url": backend.photo("1.jpg")["image_url"],
                "full_size_url": backend.photo("1.jpg")["image_url"],
            }
        ],
        "url": "https://www.vinted.fr/items/4242",
        "brand_title": "",
        "size_title": "",
        "status": "",
        "is_closed": False,
        "item_closing_action": None,
        "is_hidden": False,
        "is_draft": False,
        "is_reserved": False,
        "view_count": 0,
        "favourite_count": 0,
    }
    assert wardrobe["result"]["pagination"] == {
        "current_page": 1,
        "total_pages": 1,
        "total_entries": 2,
        "per_page": 96,
    }
    # Another member's wardrobe is not an empty one: a wrong account id must not look like "not created".
    assert (stranger["success"], stranger["status"]) == (False, 404)


def test_the_wardrobe_pages_at_most_96_items() -> None:
    vinted = VintedSimulator(latency_ms=0)
    photo = vinted.perform(command("r", "upload_photo_1", "POST", "/api/v2/photos", {"image_url": "x"})).result
    assert photo is not None
    for _ in range(100):
        vinted.perform(command("r", "create_item", "POST", "/api/v2/item_upload/items", item_payload(photo["id"])))

    first = vinted.perform(command("r", "create_item", "GET", WARDROBE, None))
    second = vinted.perform(command("r", "create_item", "GET", WARDROBE.replace("page=1&", "page=2&"), None))

    assert first.result is not None
    assert second.result is not None
    assert len(first.result["items"]) == 96
    assert [item["id"] for item in second.result["items"]] == [4245, 4244, 4243, 4242]
    assert second.result["pagination"]["total_pages"] == 2


def test_injected_failures_carry_vinted_status_as_the_extension_reports_it() -> None:
    async def five_tries(backend: Backend, ws: web.WebSocketResponse) -> None:
        for _ in range(5):
            await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))

    faults: dict[str, list[Any]] = {
        "upload_photo_1": ["throttled", "challenge", "logged_out", "unavailable", "network"]
    }
    vinted = VintedSimulator(latency_ms=0, retry_after=30.0, faults=faults)
    backend, _ = run(simulate(five_tries, vinted))

    assert [(reply.get("status"), reply.get("retry_after")) for reply in backend.results] == [
        (429, 30.0),
        (403, None),
        (401, None),
        (503, None),
        (None, None),
    ]
    assert "geo.captcha-delivery.com" in backend.results[1]["error"]
    assert all(reply["success"] is False for reply in backend.results)
    assert backend.image_requests == []  # failed before the extension fetched anything
    assert vinted.photos == {}
    assert describe_result(command("req-1", "upload_photo_1", "POST", "/api/v2/photos", None), backend.results[0]) == (
        "job 1234abcd: upload_photo_1 POST /api/v2/photos -> failed (429): "
        "Vinted answered 429 Too Many Requests: slow down"
    )


def test_a_lost_reply_lands_on_vinted_but_is_never_answered() -> None:
    async def lose_the_create(backend: Backend, ws: web.WebSocketResponse) -> None:
        photo = await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
        payload = item_payload(photo["result"]["id"])
        await ws.send_json(command("req-lost", "create_item", "POST", "/api/v2/item_upload/items", payload))
        await backend.ask(ws, "create_item", WARDROBE, None, method="GET")  # the backend looks first

    vinted = VintedSimulator(latency_ms=0, faults={"create_item": ["lost_reply"]})
    backend, _ = run(simulate(lose_the_create, vinted))

    assert [reply["request_id"] for reply in backend.results] == ["req-1", "req-2"]  # nothing for req-lost
    assert list(vinted.items) == [4242]
    assert [item["id"] for item in backend.results[1]["result"]["items"]] == [4242]


def test_a_logged_out_tab_logs_in_again_when_the_backend_waits_for_it() -> None:
    async def log_out(backend: Backend, ws: web.WebSocketResponse) -> None:
        await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
        await ws.send_json({"type": "job.waiting", "job_id": JOB_ID, "reason": "plugin_logged_out", "until": None})
        backend.statuses.append(await ws.receive_json(timeout=3))

    vinted = VintedSimulator(latency_ms=0, relogin_ms=0, faults={"upload_photo_1": ["logged_out"]})
    backend, events = run(simulate(log_out, vinted))

    assert backend.results[0]["status"] == 401
    assert backend.statuses == [READY, READY]  # on connecting, then logged in again
    assert [describe_event(event) for event in events] == ["job 1234abcd waiting (plugin_logged_out)"]


# Every Vinted action against the simulator, as a client (the extension's caller) sees it.

ITEM = "/api/v2/item_upload/items/{id}"


def call(
    vinted: VintedSimulator, method: str, path: str, payload: Json | None = None, step: str = "step"
) -> VintedReply:
    return vinted.perform(command("r", step, method, path, payload))


def ok(reply: VintedReply) -> Json:
    assert (reply.success, reply.status) == (True, 200), reply.error
    assert reply.result is not None
    return reply.result


def refused(reply: VintedReply) -> tuple[int | None, str]:
    assert reply.success is False
    assert reply.result is None
    return reply.status, reply.error or ""


def seeded_jeans(vinted: VintedSimulator) -> int:
    return vinted.add_item(
        "Levi's 501",
        "27.9",
        photo_urls=["https://img.example/1.jpg", "https://img.example/2.jpg"],
        description="Worn twice",
        brand_id=53,
        size_id=207,
        catalog_id=1839,
        status_id=2,
        color_ids=[9, 12],
        package_size_id=2,
        item_attributes=[{"code": "condition", "ids": [2]}, {"code": "size", "ids": [207]}],
    )


def test_a_seeded_item_is_stored_as_a_create_would_store_it() -> None:
    vinted = VintedSimulator(latency_ms=0)
    item_id = seeded_jeans(vinted)
    plain = vinted.add_item("Scarf", is_draft=True, view_count=12)

    assert (item_id, plain) == (4242, 4243)
    assert vinted.photos == {
        9001: "https://img.example/1.jpg",
        9002: "https://img.example/2.jpg",
        9003: "https://images.vinted.test/seed/Scarf.jpg",  # one photo unless told
    }
    item = vinted.items[item_id]
    assert {name: item[name] for name in ("title", "price", "currency", "description", "color_ids", "photo_ids")} == {
        "title": "Levi's 501",
        "price": "27.9",
        "currency": "EUR",
        "description": "Worn twice",
        "color_ids": [9, 12],
        "photo_ids": [9001, 9002],
    }
    state = ("is_closed", "item_closing_action", "is_hidden", "is_reserved", "is_draft")
    assert [item[name] for name in state] == [False, None, False, False, False]
    assert [vinted.items[plain][name] for name in ("price", "is_draft", "view_count")] == ["20.00", True, 12]
    with pytest.raises(ValueError, match="assigned_photos is empty"):
        vinted.add_item("No photo", photo_urls=[])


def test_reading_an_item_shows_the_full_editable_item() -> None:
    vinted = VintedSimulator(latency_ms=0)
    item_id = seeded_jeans(vinted)

    assert ok(call(vinted, "GET", ITEM.format(id=item_id))) == {
        "item": {
            "id": 4242,
            "title": "Levi's 501",
            "description": "Worn twice",
            "price": "27.90",
            "currency": "EUR",
            "brand_id": 53,
            "size_id": 207,
            "catalog_id": 1839,
            "status_id": 2,
            "package_size_id": 2,
            "is_unisex": False,
            "item_attributes": [{"code": "condition", "ids": [2]}, {"code": "size", "ids": [207]}],
            "color1_id": 9,
            "color2_id": 12,
            "photos": [
                {"id": 9001, "url": "https://img.example/1.jpg"},
                {"id": 9002, "url": "https://img.example/2.jpg"},
            ],
            "url": "https://www.vinted.fr/items/4242",
        }
    }
    single = vinted.add_item("Scarf", color_ids=[3])
    shown = ok(call(vinted, "GET", ITEM.format(id=single) + "?with=query"))["item"]
    assert (shown["color1_id"], shown["color2_id"], shown["item_attributes"]) == (3, None, [])


def test_reading_a_sold_reserved_closed_or_gone_item_is_a_404() -> None:
    vinted = VintedSimulator(latency_ms=0)
    sold, reserved, closed, gone, hidden = (vinted.add_item(title) for title in ("A", "B", "C", "D", "E"))
    vinted.sell(sold)
    vinted.reserve(reserved)
    vinted.items[closed]["is_closed"] = True
    vinted.remove(gone)
    vinted.hide(hidden)

    for item_id in (sold, reserved, closed, gone, 999):
        assert refused(call(vinted, "GET", ITEM.format(id=item_id))) == (
            404,
            f"Vinted answered 404 Not Found: item {item_id} was not found",
        )
    assert ok(call(vinted, "GET", ITEM.format(id=hidden)))["item"]["id"] == hidden  # a hidden item is editable
    assert refused(call(vinted, "GET", ITEM.format(id="abc")))[0] == 404  # not an id: no such path


def test_an_update_replaces_the_items_fields_and_photos() -> None:
    vinted = VintedSimulator(latency_ms=0)
    item_id = seeded_jeans(vinted)
    vinted.hide(item_id)
    current = ok(call(vinted, "GET", ITEM.format(id=item_id)))["item"]
    new_photo = ok(call(vinted, "POST", "/api/v2/photos", {"image_url": "https://img.example/3.jpg"}))["id"]

    # What an update sends: the item read back, changed, with its photos as assigned_photos.
    changed = {**current, "title": "Levi's 501 W32", "price": "24.50", "color1_id": 1, "color2_id": None}
    changed["assigned_photos"] = [{"id": 9002, "orientation": 0}, {"id": new_photo, "orientation": 0}]
    reply = ok(call(vinted, "PUT", ITEM.format(id=item_id), {"item": changed}))

    assert reply == {"item": {"id": item_id, "url": "https://www.vinted.fr/items/4242"}}
    after = ok(call(vinted, "GET", ITEM.format(id=item_id)))["item"]
    assert after == {
        **current,
        "title": "Levi's 501 W32",
        "price": "24.50",
        "color1_id": 1,
        "color2_id": None,
        "photos": [{"id": 9002, "url": "https://img.example/2.jpg"}, {"id": 9003, "url": "https://img.example/3.jpg"}],
    }
    assert vinted.items[item_id]["is_hidden"] is True  # the state is Vinted's, not the update's
    # Colours may also be sent as a create sends them.
    ok(call(vinted, "PUT", ITEM.format(id=item_id), {"item": {**changed, "color_ids": [4, 5]}}))
    after = ok(call(vinted, "GET", ITEM.format(id=item_id)))["item"]
    assert (after["color1_id"], after["color2_id"]) == (4, 5)
    # The whole object is replaced: a field the update leaves out is gone.
    del changed["description"]
    ok(call(vinted, "PUT", ITEM.format(id=item_id), {"item": changed}))
    assert ok(call(vinted, "GET", ITEM.format(id=item_id)))["item"]["description"] is None


def test_an_invalid_update_is_refused_and_changes_nothing() -> None:
    vinted = VintedSimulator(latency_ms=0)
    item_id = seeded_jeans(vinted)
    before = dict(vinted.items[item_id])
    item = {**ok(call(vinted, "GET", ITEM.format(id=item_id)))["item"], "title": "changed"}
    photos = [{"id": 9001, "orientation": 0}]

    def put(body: Json, target: int = item_id) -> tuple[int | None, str]:
        return refused(call(vinted, "PUT", ITEM.format(id=target), body))

    assert put({"item": item})[0] == 422  # no assigned_photos
    assert put({"item": {**item, "assigned_photos": []}})[0] == 422
    assert put({"item": {**item, "assigned_photos": [{"id": 123, "orientation": 0}]}}) == (
        422,
        "unknown photo id 123 in item.assigned_photos",
    )
    assert put({"item": {**item, "id": item_id + 1, "assigned_photos": photos}})[0] == 422
    without_id = {key: value for key, value in item.items() if key != "id"}
    assert put({"item": {**without_id, "assigned_photos": photos}})[0] == 422
    assert put({"title": "no item"})[0] == 400
    assert put({"item": {**item, "id": 999, "assigned_photos": photos}}, target=999)[0] == 404
    assert vinted.items[item_id] == before
    vinted.sell(item_id)
    assert put({"item": {**item, "assigned_photos": photos}})[0] == 404
    assert vinted.items[item_id]["title"] == "Levi's 501"


def test_a_deleted_item_leaves_the_wardrobe_and_deleting_it_again_is_a_404() -> None:
    vinted = VintedSimulator(latency_ms=0)
    kept, deleted = vinted.add_item("Kept"), vinted.add_item("Deleted")

    assert ok(call(vinted, "POST", f"/api/v2/items/{deleted}/delete")) == {"code": 0}
    assert refused(call(vinted, "POST", f"/api/v2/items/{deleted}/delete")) == (
        404,
        f"Vinted answered 404 Not Found: item {deleted} was not found",
    )
    assert refused(call(vinted, "GET", ITEM.format(id=deleted)))[0] == 404
    assert [item["id"] for item in ok(call(vinted, "GET", WARDROBE))["items"]] == [kept]
    assert list(vinted.items) == [kept]


def test_the_wardrobe_shows_each_items_state() -> None:
    vinted = VintedSimulator(latency_ms=0)
    listed = vinted.add_item("Listed", "12.5", currency="GBP", view_count=40, favourite_count=3)
    sold, hidden, reserved = vinted.add_item("Sold"), vinted.add_item("Hidden"), vinted.add_item("Reserved")
    draft = vinted.add_item("Draft", is_draft=True)
    vinted.sell(sold)
    vinted.hide(hidden)
    vinted.reserve(reserved)

    path = f"/api/v2/wardrobe/{VINTED_USER_ID}/items?page=1&per_page=96&order=relevance"
    items = ok(call(vinted, "GET", path))["items"]
    state = ("is_closed", "item_closing_action", "is_hidden", "is_reserved", "is_draft")
    assert {item["title"]: [item[name] for name in state] for item in items} == {
        "Draft": [False, None, False, False, True],
        "Reserved": [False, None, False, True, False],
        "Hidden": [False, None, True, False, False],
        "Sold": [True, "sold", False, False, False],
        "Listed": [False, None, False, False, False],
    }
    assert [item["id"] for item in items] == [draft, reserved, hidden, sold, listed]  # newest first, whatever `order`
    assert {name: items[-1][name] for name in ("price", "view_count", "favourite_count")} == {
        "price": {"amount": "12.50", "currency_code": "GBP"},
        "view_count": 40,
        "favourite_count": 3,
    }


def test_the_wardrobe_pages_250_items_over_pages_of_96() -> None:
    vinted = VintedSimulator(latency_ms=0)
    ids = [vinted.add_item(f"Item {n}") for n in range(250)]

    def page(number: int, per_page: int = 96) -> Json:
        path = f"/api/v2/wardrobe/{VINTED_USER_ID}/items?page={number}&per_page={per_page}&order=relevance"
        return ok(call(vinted, "GET", path))

    pages = [page(number) for number in (1, 2, 3, 4)]
    assert [len(one["items"]) for one in pages] == [96, 96, 58, 0]
    assert [item["id"] for one in pages for item in one["items"]] == ids[::-1]
    assert [one["pagination"] for one in pages] == [
        {"current_page": n, "total_pages": 3, "total_entries": 250, "per_page": 96} for n in (1, 2, 3, 4)
    ]
    assert page(1, per_page=500)["pagination"]["per_page"] == 96  # Vinted's cap
    assert len(page(1, per_page=500)["items"]) == 96
    no_query = ok(call(vinted, "GET", f"/api/v2/wardrobe/{VINTED_USER_ID}/items"))
    assert (len(no_query["items"]), no_query["pagination"]["current_page"]) == (20, 1)


def test_my_orders_lists_the_sales_newest_first() -> None:
    vinted = VintedSimulator(latency_ms=0)
    jeans, scarf = vinted.add_item("Jeans", "30.00"), vinted.add_item("Scarf", "8.00", currency="GBP")
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    first = vinted.sell(scarf, buyer="marie", at=noon)
    second = vinted.sell(jeans, price="27.5", at=noon + timedelta(hours=2))

    reply = ok(call(vinted, "GET", "/api/v2/my_orders?type=sold&status=all&page=1&per_page=100"))

    assert reply == {
        "my_orders": [
            {
                "transaction_id": second,
                "item_id": jeans,
                "title": "Jeans",
                "price": {"amount": "27.50", "currency_code": "EUR"},
                "status": "completed",
                "date": "2026-11-24T14:00:00+00:00",
                "buyer": {"login": "buyer-1"},
            },
            {
                "transaction_id": first,
                "item_id": scarf,
                "title": "Scarf",
                "price": {"amount": "8.00", "currency_code": "GBP"},
                "status": "completed",
                "date": "2026-11-24T12:00:00+00:00",
                "buyer": {"login": "marie"},
            },
        ],
        "pagination": {"current_page": 1, "total_pages": 1, "total_entries": 2, "per_page": 100},
    }
    assert vinted.orders[first] == reply["my_orders"][1]
    assert second > first
    assert ok(call(vinted, "GET", "/api/v2/my_orders?type=bought&status=all"))["my_orders"] == []
    with pytest.raises(ValueError, match="already closed"):
        vinted.sell(jeans)


def test_my_orders_pages_at_most_100_sales() -> None:
    vinted = VintedSimulator(latency_ms=0)
    sales = [vinted.sell(vinted.add_item(f"Item {n}")) for n in range(150)]

    def page(number: int) -> Json:
        return ok(call(vinted, "GET", f"/api/v2/my_orders?type=sold&status=all&page={number}&per_page=250"))

    pages = [page(number) for number in (1, 2, 3)]
    assert [len(one["my_orders"]) for one in pages] == [100, 50, 0]
    assert [order["transaction_id"] for one in pages for order in one["my_orders"]] == sales[::-1]
    assert pages[1]["pagination"] == {"current_page": 2, "total_pages": 2, "total_entries": 150, "per_page": 100}
    # The date is now, in UTC, ISO 8601.
    assert datetime.fromisoformat(vinted.orders[sales[0]]["date"]).utcoffset() == timedelta(0)


def test_a_reply_is_posted_to_an_open_conversation() -> None:
    vinted = VintedSimulator(latency_ms=0)
    vinted.open_conversation("1776")

    def reply(body: Any, conversation: str = "1776") -> VintedReply:
        payload = {"reply": {"body": body, "photo_temp_uuids": None, "is_personal_data_sharing_check_skipped": False}}
        return call(vinted, "POST", f"/api/v2/conversations/{conversation}/replies", payload)

    first, second = ok(reply("Hello! Still available.")), ok(reply("Sent today."))

    assert first == {"reply": {"id": 50001, "body": "Hello! Still available.", "conversation_id": "1776"}}
    assert second["reply"]["id"] == 50002
    assert vinted.conversations == {"1776": [first["reply"], second["reply"]]}
    assert refused(reply("Hello?", conversation="404")) == (
        404,
        "Vinted answered 404 Not Found: conversation 404 was not found",
    )
    assert refused(reply(""))[0] == 422
    assert refused(reply("   "))[0] == 422
    assert refused(reply(None))[0] == 422
    assert refused(call(vinted, "POST", "/api/v2/conversations/1776/replies", {"body": "no reply"}))[0] == 400
    assert len(vinted.conversations["1776"]) == 2
    with pytest.raises(ValueError, match="digits"):
        vinted.open_conversation("abc")


def test_faults_keyed_by_step_apply_to_every_endpoint() -> None:
    vinted = VintedSimulator(
        latency_ms=0, faults={"delete_item": ["throttled", "lost_reply"], "read_item": ["challenge"]}
    )
    item_id = vinted.add_item("Jeans")
    delete = f"/api/v2/items/{item_id}/delete"

    throttled = call(vinted, "POST", delete, step="delete_item")
    assert (throttled.status, throttled.retry_after) == (429, 60.0)
    assert item_id in vinted.items  # failed before it landed
    assert refused(call(vinted, "GET", ITEM.format(id=item_id), step="read_item"))[0] == 403
    lost = call(vinted, "POST", delete, step="delete_item")
    assert (lost.success, lost.answered) == (True, False)
    assert item_id not in vinted.items  # it landed, the backend never heard
    assert refused(call(vinted, "POST", delete, step="delete_item"))[0] == 404  # already gone


def test_a_relist_runs_through_the_extension() -> None:
    """Read the item, upload its photo again, create the new listing, see it in the wardrobe, delete the old."""
    vinted = VintedSimulator(latency_ms=0)
    old = vinted.add_item("Levi's 501", "25.00")

    async def relist(backend: Backend, ws: web.WebSocketResponse) -> None:
        read = await backend.ask(ws, "read_item", ITEM.format(id=old), None, method="GET")
        photo = await backend.ask(ws, "upload_photo_1", "/api/v2/photos", backend.photo("1.jpg"))
        await backend.ask(ws, "create_item", "/api/v2/item_upload/items", item_payload(photo["result"]["id"]))
        await backend.ask(ws, "check_wardrobe", WARDROBE, None, method="GET")
        await backend.ask(ws, "delete_item", f"/api/v2/items/{read['result']['item']['id']}/delete", None)

    backend, _ = run(simulate(relist, vinted))

    assert [reply["success"] for reply in backend.results] == [True] * 5
    assert [item["id"] for item in backend.results[3]["result"]["items"]] == [4243, old]
    assert backend.results[4]["result"] == {"code": 0}
    assert list(vinted.items) == [4243]


def test_fake_vinted_shows_the_sales_and_replies_of_its_simulator() -> None:
    answers: list[Json] = []
    vinted = FakeVinted(send=answers.append)
    sold = vinted.simulator.sell(vinted.simulator.add_item("Jeans"))
    vinted.simulator.open_conversation("77")
    payload = {"reply": {"body": "Thanks!", "photo_temp_uuids": None, "is_personal_data_sharing_check_skipped": False}}
    vinted(command("req-1", "reply", "POST", "/api/v2/conversations/77/replies", payload))

    assert [order["transaction_id"] for order in vinted.orders] == [sold]
    assert vinted.conversations == {"77": [answers[0]["result"]["reply"]]}


# The fake Vinted of `crosslist dev plugin` across runs: never an id of an earlier run, the account kept.


def account_ids(vinted: VintedSimulator) -> set[tuple[str, int]]:
    """A photo, an item, its sale and a reply to a buyer on `vinted`: the ids it handed out, by kind."""
    photo = ok(call(vinted, "POST", "/api/v2/photos", {"image_url": "https://img.example/1.jpg"}))["id"]
    item = ok(call(vinted, "POST", "/api/v2/item_upload/items", item_payload(photo)))["item"]["id"]
    vinted.open_conversation("1001")
    reply = ok(call(vinted, "POST", "/api/v2/conversations/1001/replies", {"reply": {"body": "Still there"}}))
    return {("photo", photo), ("item", item), ("transaction", vinted.sell(item)), ("reply", reply["reply"]["id"])}


def test_a_devstack_simulator_started_after_another_never_hands_out_an_id_the_other_did() -> None:
    first = account_ids(VintedSimulator(latency_ms=0, unique_ids=True))
    second = account_ids(VintedSimulator(latency_ms=0, unique_ids=True))

    assert first.isdisjoint(second)
    # Tests keep their pinned ids.
    assert ("item", FIRST_ITEM_ID) in account_ids(VintedSimulator(latency_ms=0))


def test_crosslist_dev_plugin_started_again_without_its_saved_account_never_reuses_an_id(tmp_path: Path) -> None:
    # What restarting `crosslist dev plugin` does when its account file is gone (e.g. it was killed): a new
    # process seeds the demo account again. Its ids must not be those of the earlier run, which the database
    # may still hold as listings.
    accounts = [tmp_path / "first.json", tmp_path / "second.json"]
    for account in accounts:
        started = subprocess.run(
            [sys.executable, "-c", PLUGIN_RUN, f"ws://127.0.0.1:{free_port()}", str(account)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert started.returncode == 1, started.stderr  # nothing listens: it stops after seeding and saving
    first, second = (json.loads(account.read_text()) for account in accounts)

    for kind in ("items", "orders"):
        assert len(first[kind]) == len(second[kind]) > 0
    assert {item["id"] for item in first["items"]}.isdisjoint(item["id"] for item in second["items"])
    assert set(first["photos"]).isdisjoint(second["photos"])
    assert {o["transaction_id"] for o in first["orders"]}.isdisjoint(o["transaction_id"] for o in second["orders"])


PLUGIN_RUN = """
import sys
from pathlib import Path
from devstack.plugin import main_loop
sys.exit(main_loop(sys.argv[1], "token", 0, 0.0, account_file=Path(sys.argv[2])))
"""


def test_crosslist_dev_plugin_gets_its_fake_vinted_account_back_on_its_next_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account = tmp_path / "fakes" / "vinted-demo.json"
    unreachable = f"ws://127.0.0.1:{free_port()}"

    assert main_loop(unreachable, "token", 0, 0.0, account_file=account) == 1
    seeded = json.loads(account.read_text())
    assert main_loop(unreachable, "token", 0, 0.0, account_file=account) == 1

    assert "is back from" in capsys.readouterr().out
    assert json.loads(account.read_text()) == seeded  # loaded, not seeded again
    assert len(seeded["items"]) == 3


def test_a_saved_account_comes_back_whole_and_its_ids_go_on_above_the_saved_ones() -> None:
    earlier = VintedSimulator(latency_ms=0)
    handed_out = account_ids(earlier)
    jeans = seeded_jeans(earlier)
    saved = json.loads(json.dumps(earlier.state()))  # as `crosslist dev plugin` writes it

    later = VintedSimulator(latency_ms=0)  # ids from FIRST_ITEM_ID etc. but for what it takes back
    later.restore(saved)

    assert (later.photos, later.items, later.orders, later.conversations) == (
        earlier.photos,
        earlier.items,
        earlier.orders,
        earlier.conversations,
    )
    assert ok(call(later, "GET", ITEM.format(id=jeans)))["item"]["title"] == "Levi's 501"
    assert account_ids(later).isdisjoint(handed_out | {("item", jeans)})
