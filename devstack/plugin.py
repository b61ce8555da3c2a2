"""The plugin simulator: connects to the backend's WebSocket like the web app + browser extension,
says its extension is ready (`plugin_status`) and answers plugin commands against an in-memory fake
Vinted, so a publish completes without a browser. Like the web app, it reconnects (with backoff)
when the connection is lost, e.g. when the devstack restarts.

See docs/websocket-protocol.md for the messages. Started by `crosslist dev plugin`, which calls
`main_loop`; tests drive `run_plugin` and `VintedSimulator` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any

import aiohttp
from yarl import URL

JsonDict = dict[str, Any]
ImageFetcher = Callable[[str], Awaitable[bytes]]
Outcome = tuple[bool, JsonDict | None, str | None]  # (success, result, error)
TokenSource = str | Callable[[], str]  # a token, or what mints a fresh one for each connection

PHOTOS_PATH = "/api/v2/photos"
ITEMS_PATH = "/api/v2/item_upload/items"
ITEM_URL = "https://www.vinted.fr/items/{id}"
FIRST_PHOTO_ID = 9001  # as tests/support/fakes.py's FakeVinted
FIRST_ITEM_ID = 4242
MAX_ERROR_LENGTH = 2000  # the backend refuses a longer `error`
EXTENSION_VERSION = "devstack-simulator/1"  # what plugin_status says the "extension" is
MAX_IMAGE_BYTES = 20 * 1024 * 1024
IMAGE_TIMEOUT_SECONDS = 30.0

# What Vinted (or the extension) answers when a call fails for no fault of the request.
RANDOM_FAILURES = (
    "Vinted answered 503 Service Unavailable: please try again later",
    "Vinted answered 429 Too Many Requests: slow down",
    "Vinted answered 500 Internal Server Error",
    "Vinted answered 401 Unauthorized: the Vinted session has expired",
    "network error: the connection to Vinted was reset",
)


class ImageDownloadError(Exception):
    """An image of a photo command could not be downloaded."""


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
    """In-memory Vinted: photos and items it has 'created'."""

    latency_ms: int = 200  # how long each call 'takes'
    failure_rate: float = 0.0  # 0..1 probability a call fails with a Vinted-like error message
    random: Random = field(default_factory=Random)  # injectable for deterministic tests
    photos: dict[int, str] = field(default_factory=dict)  # photo id -> image url
    items: dict[int, JsonDict] = field(default_factory=dict)  # item id -> the item as uploaded, plus id and url
    _photo_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_PHOTO_ID), repr=False)
    _item_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_ITEM_ID), repr=False)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms}")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be between 0 and 1, not {self.failure_rate}")

    async def execute(self, command: JsonDict, fetch_image: ImageFetcher) -> Outcome:
        """Perform one `plugin.command` (its method, path and payload): (success, result, error)."""
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        method = str(command.get("method", "")).upper()
        path = command.get("path")
        payload = command.get("payload")
        if method != "POST" or path not in (PHOTOS_PATH, ITEMS_PATH):
            return False, None, f"unsupported path {method} {path}"
        if self.failure_rate and self.random.random() < self.failure_rate:
            return False, None, self.random.choice(RANDOM_FAILURES)
        if not isinstance(payload, dict):
            return False, None, f"invalid payload for {path}: expected a JSON object"
        if path == PHOTOS_PATH:
            return await self._upload_photo(payload, fetch_image)
        return self._create_item(payload)

    async def _upload_photo(self, payload: JsonDict, fetch_image: ImageFetcher) -> Outcome:
        image_url = payload.get("image_url")
        if not isinstance(image_url, str) or not image_url:
            return False, None, "invalid payload for photo upload: missing image_url"
        try:
            image = await fetch_image(image_url)
        except Exception as exc:  # any download problem is the command's failure, not the simulator's
            return False, None, f"could not download image {image_url}: {exc or type(exc).__name__}"
        if not image:
            return False, None, f"could not download image {image_url}: the image is empty"
        photo_id = next(self._photo_ids)
        self.photos[photo_id] = image_url
        return True, {"id": photo_id, "url": image_url}, None

    def _create_item(self, payload: JsonDict) -> Outcome:
        item = payload.get("item")
        if not isinstance(item, dict):
            return False, None, "invalid payload for item upload: missing item"
        assigned = item.get("assigned_photos") or []
        if not isinstance(assigned, list) or not assigned:
            return False, None, "invalid payload for item upload: item.assigned_photos is empty"
        for photo in assigned:
            raw_id = photo.get("id") if isinstance(photo, dict) else photo
            if _as_int(raw_id) not in self.photos:
                return False, None, f"unknown photo id {raw_id!r} in item.assigned_photos"
        item_id = next(self._item_ids)
        url = ITEM_URL.format(id=item_id)
        self.items[item_id] = {**item, "id": item_id, "url": url}
        return True, {"item": {"id": item_id, "url": url}}, None


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
    if kind == "job.failed":
        retry = "will be retried" if message.get("retryable") else "final"
        error = message.get("error")
        reason = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else error
        return f"job {job} failed ({retry}): {reason}"
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
    return f"{what} -> failed: {reply['error']}"


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
            await ws.send_json({"action": "plugin_status", "ready": True, "extension_version": EXTENSION_VERSION})
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
                    await _answer(ws, vinted, message, fetch_image, results)
                else:
                    events(message)
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
    results: Callable[[JsonDict, JsonDict], None],
) -> None:
    request_id = command.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return  # nothing to answer to
    success, result, error = await vinted.execute(command, fetch_image)
    reply: JsonDict = {"action": "plugin_result", "request_id": request_id, "success": success}
    if success:
        reply["result"] = result
    else:
        reply["error"] = (error or "the browser extension reported a failure")[:MAX_ERROR_LENGTH]
    if ws.closed:
        return  # stopped (or the backend left) while executing: the backend will time the command out
    try:
        await ws.send_json(reply)
    except (aiohttp.ClientError, ConnectionError):
        return
    results(command, reply)


async def _download(session: aiohttp.ClientSession, url: str) -> bytes:
    if URL(url).scheme not in ("http", "https"):
        raise ImageDownloadError("only http(s) image URLs are supported")
    timeout = aiohttp.ClientTimeout(total=IMAGE_TIMEOUT_SECONDS)
    async with session.get(url, timeout=timeout) as response:
        if response.status != 200:
            raise ImageDownloadError(f"HTTP {response.status}")
        if response.content_length is not None and response.content_length > MAX_IMAGE_BYTES:
            raise ImageDownloadError(f"the image is larger than {MAX_IMAGE_BYTES} bytes")
        data = await response.content.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise ImageDownloadError(f"the image is larger than {MAX_IMAGE_BYTES} bytes")
        return data


def main_loop(
    ws_url: str, token: TokenSource, latency_ms: int, failure_rate: float, *, reconnect: Backoff = RECONNECT
) -> int:
    """Blocking entry for `crosslist dev plugin`: 0 when stopped with Ctrl-C (or SIGTERM), 1 when the
    first connection could not be opened or the token was refused. A connection lost later (the
    devstack restarted) is opened again with `reconnect`'s backoff, as the web app does."""
    try:
        vinted = VintedSimulator(latency_ms=latency_ms, failure_rate=failure_rate)
    except ValueError as exc:
        print(f"plugin simulator: {exc}", file=sys.stderr)
        return 1
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
    summary = f"{len(vinted.photos)} photo(s) and {len(vinted.items)} item(s) created"
    if stop.is_set():
        print(f"plugin simulator: stopped after {time.monotonic() - started:.0f} s, {summary}", flush=True)
        return 0
    print(f"plugin simulator: the backend closed the connection ({summary})", file=sys.stderr)
    return 1
