"""The core loop through the devstack: real HTTP, real WebSockets, the SQS trigger, schedules."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from crosslist.realtime.connections import MESSAGES_PER_WINDOW
from devstack import cli
from devstack.plugin import Backoff, VintedSimulator, run_plugin, seed_demo_account
from devstack.stack import DevStack
from tests.e2e.conftest import Frontend, Tab, token

pytestmark = pytest.mark.integration

FLOOD = 2_000


async def open_tabs(stack: DevStack, session: aiohttp.ClientSession, *tabs: Tab) -> list[asyncio.Task[None]]:
    tasks = []
    for tab in tabs:  # one after the other: connection order decides which tab is "newest"
        tasks.append(asyncio.create_task(tab.run(stack, session)))
        # A liveness wait, not a latency check: on a loaded 2-core machine a cold WebSocket instance can take seconds.
        await asyncio.wait_for(tab.connected.wait(), 30)
        await asyncio.sleep(0.05)
    return tasks


async def close(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_a_publish_with_three_photos_completes_through_the_devstack(devstack: DevStack) -> None:
    async def scenario() -> tuple[dict[str, Any], Tab]:
        async with aiohttp.ClientSession() as session:
            tab = Tab("e2e-publisher")
            tasks = await open_tabs(devstack, session, tab)
            frontend = Frontend(devstack, session, "e2e-publisher")
            job = await frontend.publish_and_wait((await frontend.product(images=3))["id"])
            await asyncio.sleep(0.2)  # the completion message follows the commit
            await close(tasks)
            return job, tab

    job, tab = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    assert [c["step"] for c in tab.commands] == ["upload_photo_1", "upload_photo_2", "upload_photo_3", "create_item"]
    assert sorted(tab.vinted.photos) == job["result"]["photo_ids"]
    assert [p["current_step"] for p in tab.of_type("job.progress")] == [1, 2, 3]  # and job.completed
    assert [c["result"]["item_id"] for c in tab.of_type("job.completed")] == [job["result"]["item_id"]]


def test_every_vinted_action_runs_through_the_devstack_against_the_fake_account(devstack: DevStack) -> None:
    async def scenario() -> tuple[dict[str, dict[str, Any]], Tab]:
        async with aiohttp.ClientSession() as session:
            tab = Tab("e2e-actions")
            conversation = seed_demo_account(tab.vinted)
            tasks = await open_tabs(devstack, session, tab)
            frontend = Frontend(devstack, session, "e2e-actions")
            product = await frontend.product(images=1)
            jobs = {"publish": await frontend.publish_and_wait(product["id"])}
            for action in ("update", "relist", "delete"):
                jobs[action] = await frontend.run_job({"action": action, "product_id": product["id"]})
            jobs["sync"] = await frontend.run_job({"action": "sync"})
            jobs["orders"] = await frontend.run_job({"action": "orders"})
            body = {"conversation_id": conversation, "body": "Still available!"}
            jobs["message"] = await frontend.run_job({"action": "message", "params": body})
            linkable = jobs["sync"]["result"]["unlinked"][0]["item_id"]
            link = {"vinted_item_id": linkable, "create_product": True}
            jobs["link_product"] = await frontend.run_job({"action": "link_product", "params": link})
            await close(tasks)
            return jobs, tab

    jobs, tab = asyncio.run(scenario())
    assert {action: job["status"] for action, job in jobs.items()} == dict.fromkeys(jobs, "completed"), jobs
    assert jobs["sync"]["result"]["unlinked_total"] == 3  # the fake account's own listings
    assert jobs["orders"]["result"]["orders_new"] == 1
    assert jobs["link_product"]["result"]["created_product"] is True
    assert [reply["body"] for reply in tab.vinted.conversations["1001"]] == ["Still available!"]


def test_when_the_executing_tab_closes_mid_job_the_other_tab_takes_over(devstack: DevStack) -> None:
    async def scenario() -> tuple[dict[str, Any], Tab, Tab]:
        async with aiohttp.ClientSession() as session:
            other = Tab("e2e-two-tabs")
            executing = Tab("e2e-two-tabs", close_after=1)
            tasks = await open_tabs(devstack, session, other, executing)
            frontend = Frontend(devstack, session, "e2e-two-tabs")
            job = await frontend.publish_and_wait((await frontend.product(images=2))["id"])
            await close(tasks)
            return job, other, executing

    job, other, executing = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    assert [c["step"] for c in executing.commands] == ["upload_photo_1"]
    assert [c["step"] for c in other.commands] == ["upload_photo_2", "create_item"]


def test_a_tab_closing_before_it_answers_hands_the_step_to_the_other_tab_within_2_s(devstack: DevStack) -> None:
    async def scenario() -> tuple[dict[str, Any], float, Tab, Tab]:
        async with aiohttp.ClientSession() as session:
            other = Tab("e2e-tab-lost")
            closing = Tab("e2e-tab-lost", close_on="upload_photo_2")
            tasks = await open_tabs(devstack, session, other, closing)
            frontend = Frontend(devstack, session, "e2e-tab-lost")
            product_id = (await frontend.product(images=2))["id"]
            started = time.monotonic()
            job = await frontend.publish_and_wait(product_id)
            elapsed = time.monotonic() - started
            await close(tasks)
            return job, elapsed, other, closing

    job, elapsed, other, closing = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    assert job["attempts"] == 1
    assert [c["step"] for c in closing.commands] == ["upload_photo_1", "upload_photo_2"]
    assert [c["step"] for c in other.commands] == ["upload_photo_2", "create_item"]
    assert elapsed < 2 + 1  # the hand-over itself is within 2 s; the rest is the job's own steps


def test_a_stale_connection_answering_410_is_cleaned_up(devstack: DevStack) -> None:
    table = boto3.resource(
        "dynamodb",
        endpoint_url=devstack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="devstack",
        aws_secret_access_key="devstack",
    ).Table("ConnectionsTable")

    async def scenario() -> tuple[dict[str, Any], Tab]:
        async with aiohttp.ClientSession() as session:
            tab = Tab("e2e-stale")
            tasks = await open_tabs(devstack, session, tab)
            # A tab that vanished without $disconnect, registered after the live one: it is tried first.
            now = time.time()
            table.put_item(
                Item={
                    "connection_id": "vanished000000000000=",
                    "user_id": "e2e-stale",
                    "connected_at": int(now * 1000) + 1000,
                    "expires_at": int(now) + 7200,
                }
            )
            frontend = Frontend(devstack, session, "e2e-stale")
            job = await frontend.publish_and_wait((await frontend.product(images=1))["id"])
            await close(tasks)
            return job, tab

    job, tab = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    assert len(tab.commands) == 2
    assert "closed_at" in table.get_item(Key={"connection_id": "vanished000000000000="})["Item"]


def test_a_schedule_can_be_fired_now(devstack: DevStack) -> None:
    async def scenario() -> list[tuple[int, Any]]:
        replies = []
        async with aiohttp.ClientSession() as session:
            url = f"{devstack.http_url}/__devstack/schedules/"
            for name in ("OAuthRefreshFunction.RefreshSchedule", "SchedulerFunction.SyncSchedule", "NoSuchSchedule"):
                async with session.post(url + name) as fired:
                    replies.append((fired.status, await fired.json()))
        return replies

    refresh, sync, unknown = asyncio.run(scenario())
    assert refresh == (200, {"schedule": "OAuthRefreshFunction.RefreshSchedule", "result": {"due_for_refresh": 0}})
    # The sync rules' schedule reaches the scheduler with its Input (no tab is connected: nothing is due).
    assert sync[0] == 200
    assert sync[1]["schedule"] == "SchedulerFunction.SyncSchedule"
    assert (sync[1]["result"]["due_rules"], sync[1]["result"]["queued"]) == (0, 0)
    assert unknown[0] == 404
    assert "OAuthRefreshFunction.RefreshSchedule" in unknown[1]["message"]


def test_the_websocket_refuses_a_bad_token_and_http_unknown_routes(devstack: DevStack) -> None:
    async def scenario() -> tuple[int, int, int]:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"{devstack.ws_url}/?token=garbage"):
                    refused = 101
            except aiohttp.WSServerHandshakeError as error:
                refused = error.status
            async with session.get(f"{devstack.http_url}/nowhere") as missing:
                not_found = missing.status
            headers = {"Authorization": f"Bearer {token(devstack, 'e2e-http')}"}
            async with session.get(f"{devstack.http_url}/products", headers=headers) as listed:
                return refused, not_found, listed.status

    assert asyncio.run(scenario()) == (401, 404, 200)


def test_a_console_user_publishes_through_the_fake_vinted_over_http(devstack: DevStack) -> None:
    """What the console does without a browser: a token from POST /dev/token, and an "extension" that turns
    each command into a call to /dev/vinted/{user}/... and its answer into the plugin_result."""
    user = "e2e-console"

    async def extension(session: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in socket:
            command = json.loads(frame.data)
            if command.get("type") != "plugin.command":
                continue
            url = f"{devstack.http_url}/dev/vinted/{user}{command['path']}"
            async with session.request(command["method"], url, json=command["payload"]) as answer:
                text = await answer.text()
                result: dict[str, Any] = {"action": "plugin_result", "request_id": command["request_id"]}
                result |= {"success": answer.ok, "status": answer.status}
                result |= {"result": json.loads(text)} if answer.ok else {"error": text}
            await socket.send_str(json.dumps(result))

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            await session.put(f"{devstack.http_url}/dev/vinted/{user}/latency", json={"latency_ms": 0})
            async with session.post(f"{devstack.http_url}/dev/token", json={"user_id": user}) as minted:
                dev_token = (await minted.json())["token"]
            headers = {"Authorization": f"Bearer {dev_token}"}
            async with session.ws_connect(f"{devstack.ws_url}/?token={dev_token}") as socket:
                await socket.send_str(json.dumps({"action": "plugin_status", "ready": True}))
                running = asyncio.create_task(extension(session, socket))
                frontend = Frontend(devstack, session, user)
                frontend.headers = headers  # the console's token, not one the test minted
                job = await frontend.publish_and_wait((await frontend.product(images=3))["id"])
                running.cancel()
            async with session.get(f"{devstack.http_url}/dev/vinted/{user}") as account:
                return job, await account.json()

    job, account = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    [item] = [item for item in account["items"] if str(item["id"]) == job["result"]["item_id"]]
    assert (item["url"], item["photos"]) == (job["result"]["url"], 3)


def test_the_management_api_reaches_real_sockets_through_an_unchanged_boto3_client(devstack: DevStack) -> None:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"http://127.0.0.1:{devstack.config.ws_port}",
        region_name="us-east-1",
        aws_access_key_id="devstack",
        aws_secret_access_key="devstack",
    )

    async def scenario() -> tuple[list[str], str, str, str]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{devstack.ws_url}/?token={token(devstack, 'e2e-mgmt')}") as socket:
                await asyncio.sleep(0.1)
                assert devstack.websocket_api is not None
                [connection_id] = [c for c, s in devstack.websocket_api.sockets.items() if not s.websocket.closed]
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(
                    None, lambda: client.post_to_connection(ConnectionId=connection_id, Data=b"hi")
                )
                received: list[str] = []
                while not received:  # a new tab is also sent its active jobs (jobs.active): not ours
                    data = (await socket.receive()).data
                    if not data.startswith('{"type":"jobs.active"'):
                        received.append(data)

                def error_of(call: Any) -> str:
                    try:
                        call()
                    except ClientError as error:
                        return str(error.response["Error"]["Code"])
                    return "no error"

                too_large = await loop.run_in_executor(
                    None,
                    lambda: error_of(
                        lambda: client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (129 * 1024))
                    ),
                )
                source_ip = await loop.run_in_executor(
                    None, lambda: client.get_connection(ConnectionId=connection_id)["Identity"]["SourceIp"]
                )
            await asyncio.sleep(0.1)
            gone = await loop.run_in_executor(
                None, lambda: error_of(lambda: client.post_to_connection(ConnectionId=connection_id, Data=b"late"))
            )
            return received, too_large, source_ip, gone

    received, too_large, source_ip, gone = asyncio.run(scenario())
    assert received == ["hi"]
    assert too_large == "PayloadTooLargeException"
    assert source_ip == "127.0.0.1"
    assert gone == "GoneException"


def test_seeding_twice_through_the_devstack_leaves_three_demo_products(
    devstack: DevStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "STATE_DIR", tmp_path)
    monkeypatch.setenv("CROSSLIST_DEV_JWT_SECRET", devstack.jwt_secret)
    seed = ["dev", "seed", "--user", "e2e-seed", "--api", devstack.http_url]

    assert cli.main(seed) == 0
    assert cli.main(seed) == 0

    out = capsys.readouterr().out
    assert out.count(", created)") == 3
    assert out.count(", already there)") == 3  # what the API answers compares equal to what seed sends

    async def products() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            _, page = await Frontend(devstack, session, "e2e-seed").call("GET", "/products")
            return list(page["items"])

    assert sorted(p["sku"] for p in asyncio.run(products())) == [f"{cli.DEMO_SKU_PREFIX}{n}" for n in (1, 2, 3)]


def test_the_plugin_simulator_says_it_is_ready_and_reconnects_when_the_devstack_drops_it(devstack: DevStack) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], list[str], VintedSimulator]:
        vinted = VintedSimulator(latency_ms=0)
        stop = asyncio.Event()
        connected = asyncio.Event()
        notices: list[str] = []
        async with aiohttp.ClientSession() as session:
            simulator = asyncio.create_task(
                run_plugin(
                    devstack.ws_url,
                    lambda: token(devstack, "e2e-simulator"),
                    vinted,
                    stop=stop,
                    on_event=lambda message: None,
                    on_result=lambda command, reply: None,
                    on_connected=connected.set,
                    on_notice=notices.append,
                    session=session,
                    reconnect=Backoff(initial=0.05, maximum=0.2),
                )
            )
            frontend = Frontend(devstack, session, "e2e-simulator")
            jobs = []
            for _ in range(2):
                await asyncio.wait_for(connected.wait(), 10)
                await asyncio.sleep(0.2)  # plugin_status is applied
                jobs.append(await frontend.publish_and_wait((await frontend.product(images=1))["id"]))
                connected.clear()
                assert devstack.websocket_api is not None
                # What stopping the devstack does to every socket; the simulator comes back.
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(devstack.websocket_api.close_all(), devstack._loop)
                )
            await asyncio.wait_for(connected.wait(), 10)
            stop.set()
            await simulator
        return jobs, notices, vinted

    jobs, notices, vinted = asyncio.run(scenario())
    assert [job["status"] for job in jobs] == ["completed", "completed"], jobs
    assert len(vinted.items) == 2
    assert len(notices) == 2
    assert all("the backend closed the connection (code 1001)" in notice for notice in notices)


def test_a_flood_from_one_user_is_answered_with_errors_and_does_not_delay_another_users_job(
    devstack: DevStack,
) -> None:
    async def scenario() -> tuple[dict[str, Any], float, Tab]:
        async with aiohttp.ClientSession() as session:
            flooder, victim = Tab("e2e-flooder"), Tab("e2e-victim")
            tasks = [asyncio.create_task(tab.run(devstack, session)) for tab in (flooder, victim)]
            await asyncio.wait_for(asyncio.gather(flooder.connected.wait(), victim.connected.wait()), 10)
            await asyncio.sleep(0.2)
            frontend = Frontend(devstack, session, "e2e-victim")
            product_id = (await frontend.product(images=2))["id"]
            assert flooder.socket is not None
            for n in range(FLOOD):
                message = {"action": "plugin_result", "request_id": f"flood-{n}", "success": True, "result": {}}
                await flooder.socket.send_str(json.dumps(message))
            started = time.monotonic()
            job = await frontend.publish_and_wait(product_id, timeout=60)
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 20
            while not any(e.get("code") == "rate_limited" for e in flooder.events) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return job, elapsed, flooder

    job, elapsed, flooder = asyncio.run(scenario())
    assert job["status"] == "completed", job["error"]
    # 41 s before (13.6 s on this test's smaller job): the victim's results queued behind the flood.
    assert elapsed < 10, f"the victim's job took {elapsed:.1f} s"
    answers = Counter(event.get("code") or event.get("message") for event in flooder.events)
    # The gateway throttled most of the flood at once; ws_message answered only up to the connection's
    # budget, told it once that it was over, and dropped the rest.
    assert answers["Too Many Requests"] > FLOOD / 2
    # The budget counts in fixed windows: a flood that straddles two gets two budgets.
    assert answers["rate_limited"] in (1, 2)
    assert answers["unknown_request"] <= 2 * MESSAGES_PER_WINDOW
