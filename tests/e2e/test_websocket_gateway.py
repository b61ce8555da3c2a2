"""The devstack's WebSocket gateway, over real sockets, does what API Gateway does where a client notices:
a message no route selection can read goes to `$default`, a message body never runs `$connect` or
`$disconnect`, and whatever a client sends, its socket stays open and is answered with errors at most."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crosslist.realtime.connections import MAX_CONNECTIONS_PER_USER
from devstack.gateway import MAX_WEBSOCKET_MESSAGE_BYTES
from devstack.stack import DevStack
from tests.e2e.conftest import token

pytestmark = pytest.mark.integration

ANSWER_TIMEOUT_S = 30.0  # a loaded machine, and the first messages start the function instances
# The codes of ws_message's `error` frames (docs/websocket-protocol.md).
ERROR_CODES = {
    "invalid_message",
    "rate_limited",
    "unknown_request",
    "forbidden",
    "already_resolved",
    "expired",
    "unavailable",
}


@dataclass
class Answers:
    """What the backend sent a tab after its messages, up to the answer to a plugin_status probe."""

    frames: list[Any] = field(default_factory=list)  # every frame but the probe's answer, parsed (or raw)
    probe: dict[str, Any] | None = None  # the probe's plugin.status; None: never came
    closed: bool = False  # the socket closed before it came
    close_code: int | None = None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if isinstance(f, dict) and f.get("type") == "error"]


async def exchange(stack: DevStack, messages: list[str]) -> Answers:
    """Open a tab of a user of its own (whose budgets no other test spends), send `messages`, then a
    plugin_status probe; collect the frames until the probe is answered. A connection's messages run in
    turn, so the answers to `messages` have all arrived by then."""
    marker = f"probe-{uuid.uuid4().hex[:8]}"
    answers = Answers()
    url = f"{stack.ws_url}/?token={token(stack, f'e2e-gateway-{uuid.uuid4().hex[:8]}')}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
        for message in messages:
            await socket.send_str(message)
        await socket.send_json({"action": "plugin_status", "ready": True, "extension_version": marker})
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT_S):
                async for frame in socket:
                    if frame.type is not aiohttp.WSMsgType.TEXT:
                        break
                    try:
                        parsed = json.loads(frame.data)
                    except ValueError:
                        parsed = frame.data
                    if isinstance(parsed, dict) and parsed.get("extension_version") == marker:
                        answers.probe = parsed
                        break
                    answers.frames.append(parsed)
        except TimeoutError:
            pass
        answers.closed, answers.close_code = socket.closed, socket.close_code
    return answers


def assert_answered_with_errors_at_most(answers: Answers, sent: int) -> None:
    assert not answers.closed, f"the socket closed (code {answers.close_code}): {answers.frames}"
    assert answers.probe is not None, f"the plugin_status after them was not answered: {answers.frames}"
    assert answers.probe["takes_commands"] is True, answers.probe
    for frame in answers.frames:
        assert isinstance(frame, dict), frame
        if frame.get("type") == "jobs.active":  # every new tab is sent its user's jobs
            assert isinstance(frame["jobs"], list), frame
        elif frame.get("type") == "plugin.status":  # a generated plugin_status that was valid
            assert isinstance(frame["ready"], bool), frame
        else:  # not API Gateway's "Internal server error", "Forbidden" or "Too Many Requests"
            assert frame.get("type") == "error", frame
            assert frame["code"] in ERROR_CODES, frame
            assert isinstance(frame["message"], str), frame
            assert frame["message"], frame
            assert frame["request_id"] is None or isinstance(frame["request_id"], str), frame
    assert len(answers.errors) <= sent, answers.errors  # one error at most per message


def failed_invocations(stack: DevStack) -> list[str]:
    assert stack.websocket_api is not None
    return list(stack.websocket_api.failed_invocations)


# Route selection -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deep",
    [
        '{"action":' * 1000 + '"resume"' + "}" * 1000,
        "[" * 1000 + "]" * 1000,
        '{"action": "plugin_status", "ready": true, "payload": ' + '{"a":' * 1000 + "1" + "}" * 1001,
    ],
    ids=["object", "array", "deep-field"],
)
def test_a_message_nested_1000_levels_deep_reaches_default_and_is_refused_there(devstack: DevStack, deep: str) -> None:
    before = failed_invocations(devstack)

    answers = asyncio.run(exchange(devstack, [deep]))

    assert_answered_with_errors_at_most(answers, 1)
    [error] = answers.errors
    assert error["code"] == "invalid_message"
    assert error["message"] == "the message is not usable JSON: JSON nested deeper than 32 levels"
    assert failed_invocations(devstack) == before


@pytest.mark.parametrize("route", ["$disconnect", "$connect"])
def test_a_message_naming_a_connection_route_is_an_unknown_action_and_the_tab_stays_connected(
    devstack: DevStack, route: str
) -> None:
    before = failed_invocations(devstack)

    answers = asyncio.run(exchange(devstack, [json.dumps({"action": route, "request_id": "r1"})]))

    # $default ran it (ws_message): the connection is still registered, so the plugin_status after it is
    # recorded rather than refused as coming from a closed connection.
    assert_answered_with_errors_at_most(answers, 1)
    [error] = answers.errors
    assert (error["code"], error["request_id"]) == ("invalid_message", "r1")
    assert error["message"].startswith(f"unknown action {route!r}")
    assert failed_invocations(devstack) == before


# A user's connections ------------------------------------------------------------------------------------


def test_a_21st_socket_of_a_user_closes_the_oldest_through_the_management_api(devstack: DevStack) -> None:
    """The real adapter (DeleteConnection through boto3) against the devstack's @connections API."""

    async def scenario() -> tuple[list[list[Any]], list[bool]]:
        url = f"{devstack.ws_url}/?token={token(devstack, f'e2e-tabs-{uuid.uuid4().hex[:8]}')}"
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(url) for _ in range(MAX_CONNECTIONS_PER_USER)]
            received: list[list[Any]] = [[] for _ in range(MAX_CONNECTIONS_PER_USER + 1)]

            async def read(index: int, socket: aiohttp.ClientWebSocketResponse) -> None:
                async for frame in socket:  # a tab reads all the time (and answers a close at once)
                    if frame.type is aiohttp.WSMsgType.TEXT:
                        received[index].append(json.loads(frame.data))

            readers = [asyncio.create_task(read(n, socket)) for n, socket in enumerate(sockets)]
            sockets.append(await session.ws_connect(url))
            readers.append(asyncio.create_task(read(MAX_CONNECTIONS_PER_USER, sockets[-1])))
            await asyncio.wait_for(readers[0], ANSWER_TIMEOUT_S)  # ends when the oldest is closed
            await asyncio.sleep(0.5)  # time for a wrong second close to show
            closed = [socket.closed for socket in sockets]
            for socket in sockets:
                await socket.close()
            await asyncio.gather(*readers, return_exceptions=True)
        return received, closed

    before = failed_invocations(devstack)

    received, closed = asyncio.run(scenario())

    assert closed == [True] + [False] * MAX_CONNECTIONS_PER_USER
    assert [m["code"] for m in received[0] if m.get("type") == "error"] == ["too_many_connections"]
    assert failed_invocations(devstack) == before


# Fuzzing through the gateway ----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["", "\u0000", "\ud800", "\udfff", "r1", "1.4.2", "vinted"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=15,
)
actions = st.one_of(
    st.sampled_from(["plugin_result", "plugin_status", "resume"]),  # then with fields of any type
    st.sampled_from(["$connect", "$disconnect", "$default", "$", "$request.body.action"]),
    st.text(st.characters(codec="utf-8"), max_size=12).map(lambda text: "$" + text),
    st.text(st.characters(codec="utf-8"), max_size=30),  # unknown actions
    json_values,  # not even a string
)
# Every field of plugin_result, plugin_status and resume, with values of any type (the right one too).
MESSAGE_FIELDS = (
    "request_id",
    "success",
    "result",
    "error",
    "status",
    "retry_after",
    "ready",
    "extension_version",
    "vinted_logged_in",
    "challenge",
    "vinted_user_id",
)
messages = st.fixed_dictionaries({"action": actions}, optional=dict.fromkeys(MESSAGE_FIELDS, json_values))


def dumps(value: Any) -> str:
    # NaN and Infinity as some clients send them; NUL and lone surrogates escaped (a text frame is UTF-8).
    return json.dumps(value, allow_nan=True)


# How a filler character is written in the JSON text of a message: raw (multi-byte in UTF-8) or escaped.
FILLERS = {"x": "x", "é": "é", "NUL": "\\u0000", "lone surrogate": "\\ud800", "backslash": "\\\\"}


def near_the_size_limit(size: int, filler: str, field_name: str, action: str = "plugin_result") -> str:
    """A message of at most `size` bytes (and within one filler of it), one field full of `filler`."""
    template = dumps({"action": action, "request_id": "r-big", "success": False, field_name: "@"})
    unit = FILLERS[filler]
    count = (size - (len(template.encode()) - 1)) // len(unit.encode())
    return template.replace("@", unit * count)


huge_messages = st.builds(
    near_the_size_limit,
    st.integers(min_value=MAX_WEBSOCKET_MESSAGE_BYTES - 4096, max_value=MAX_WEBSOCKET_MESSAGE_BYTES),
    st.sampled_from(sorted(FILLERS)),
    st.sampled_from(["error", "request_id", "result", "extension_version"]),
    st.sampled_from(["plugin_result", "plugin_status", "resume"]),
)
deep_messages = st.builds(  # at most 6 000 x 11 bytes: within the size limit (a larger one closes the socket)
    lambda depth, brackets: brackets[0] * depth + "1" + brackets[1] * depth,
    st.integers(min_value=30, max_value=6000),
    st.sampled_from([("[", "]"), ('{"action":', "}"), ('{"x":', "}")]),
)
frames = st.one_of(
    messages.map(dumps),
    json_values.map(dumps),
    deep_messages,
    huge_messages,
    st.text(st.characters(codec="utf-8"), max_size=100),  # not JSON (raw NUL and control characters too)
)


@settings(
    max_examples=40,
    derandomize=True,  # the same messages on every run: a failure here is this code's, not the draw's
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(sent=st.lists(frames, min_size=1, max_size=3))
# Always tried, whatever the draw: what broke the gateway, and messages at the size limit.
@example(sent=['{"action":' * 1000 + "1" + "}" * 1000, json.dumps({"action": "$disconnect"})])
@example(sent=[near_the_size_limit(MAX_WEBSOCKET_MESSAGE_BYTES, "x", "request_id")])
@example(sent=[near_the_size_limit(MAX_WEBSOCKET_MESSAGE_BYTES, "NUL", "error")])
@example(sent=[near_the_size_limit(MAX_WEBSOCKET_MESSAGE_BYTES, "é", "extension_version", "plugin_status")])
def test_whatever_a_client_sends_its_socket_stays_open_and_gets_errors_at_most(
    devstack: DevStack, sent: list[str]
) -> None:
    answers = asyncio.run(exchange(devstack, sent))

    assert_answered_with_errors_at_most(answers, len(sent))
    assert failed_invocations(devstack) == []  # no handler raised (in AWS: a Lambda error, a 500 frame)


@pytest.mark.parametrize("filler", sorted(FILLERS))
def test_the_huge_messages_are_as_large_as_the_gateway_takes(filler: str) -> None:
    """Guard against a fuzz that quietly stops reaching the size limit (or passes it: the socket would close)."""
    message = near_the_size_limit(MAX_WEBSOCKET_MESSAGE_BYTES, filler, "error")
    unit = len(FILLERS[filler].encode())
    assert MAX_WEBSOCKET_MESSAGE_BYTES - unit < len(message.encode()) <= MAX_WEBSOCKET_MESSAGE_BYTES
    assert json.loads(message)["error"][0] == json.loads(f'"{FILLERS[filler]}"')
