"""The core loop through the devstack: real HTTP, real WebSockets, the SQS trigger, schedules."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.stack import DevStack
from tests.e2e.conftest import Frontend, Tab, token

pytestmark = pytest.mark.integration


async def open_tabs(stack: DevStack, session: aiohttp.ClientSession, *tabs: Tab) -> list[asyncio.Task[None]]:
    tasks = []
    for tab in tabs:  # one after the other: connection order decides which tab is "newest"
        tasks.append(asyncio.create_task(tab.run(stack, session)))
        await asyncio.wait_for(tab.connected.wait(), 10)
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
    assert job["status"] == "completed", job
    assert [c["step"] for c in tab.commands] == ["upload_photo_1", "upload_photo_2", "upload_photo_3", "create_item"]
    assert sorted(tab.vinted.photos) == job["result"]["photo_ids"]
    assert [p["current_step"] for p in tab.of_type("job.progress")] == [1, 2, 3, 4]
    assert [c["result"]["item_id"] for c in tab.of_type("job.completed")] == [job["result"]["item_id"]]


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
    assert job["status"] == "completed", job
    assert [c["step"] for c in executing.commands] == ["upload_photo_1"]
    assert [c["step"] for c in other.commands] == ["upload_photo_2", "create_item"]


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
    assert job["status"] == "completed", job
    assert len(tab.commands) == 2
    assert "closed_at" in table.get_item(Key={"connection_id": "vanished000000000000="})["Item"]


def test_a_schedule_can_be_fired_now(devstack: DevStack) -> None:
    async def scenario() -> list[tuple[int, Any]]:
        replies = []
        async with aiohttp.ClientSession() as session:
            url = f"{devstack.http_url}/__devstack/schedules/"
            for name in ("OAuthRefreshFunction.RefreshSchedule", "CreateJobFunction.SyncSchedule", "NoSuchSchedule"):
                async with session.post(url + name) as fired:
                    replies.append((fired.status, await fired.json()))
        return replies

    refresh, sync, unknown = asyncio.run(scenario())
    assert refresh == (200, {"schedule": "OAuthRefreshFunction.RefreshSchedule", "result": {"due_for_refresh": 0}})
    # The sync schedule reaches create_job with its Input, not the HTTP router.
    assert sync == (200, {"schedule": "CreateJobFunction.SyncSchedule", "result": {"scheduled_jobs": 0}})
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
                received = [(await socket.receive()).data]

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
