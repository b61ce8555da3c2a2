"""API Gateway, locally: the HTTP API (payload v2) and the WebSocket API with its @connections API.

Routes come from template.yaml; each request becomes the event API Gateway would send, and the
handler's answer becomes the HTTP response or WebSocket frames.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from devstack.instances import FunctionPool, Invocation, InvocationError

logger = logging.getLogger("devstack")

MAX_WEBSOCKET_MESSAGE_BYTES = 128 * 1024  # API Gateway's limit per message
# AWS runs a connection's messages as parallel invocations; the devstack runs them in turn, so a flood would
# wait here instead. Past this backlog the connection gets throttled (429) at once, as ws_message would drop
# the excess anyway (its per-connection budget is lower).
MAX_QUEUED_MESSAGES_PER_CONNECTION = 128
# A closing tab's last messages (a result sent just before closing) still run, for this long at most.
CLOSING_DRAIN_SECONDS = 5.0
# Routes API Gateway runs when a socket opens and closes: never for a message, whatever its body says.
CONNECTION_ROUTES = frozenset({"$connect", "$disconnect"})
Invoke = Callable[[FunctionPool, dict[str, Any]], Awaitable[Invocation]]


def _request_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _multi(values: list[tuple[str, str]]) -> dict[str, str] | None:
    """API Gateway v2 joins repeated headers and query parameters with commas."""
    joined: dict[str, str] = {}
    for key, value in values:
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined or None


# HTTP API ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str  # API Gateway syntax, e.g. /jobs/{job_id} (aiohttp uses the same)
    pool: FunctionPool


async def http_event(request: web.Request, route: HttpRoute) -> dict[str, Any]:
    body = await request.read()
    try:
        text, is_base64 = body.decode(), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    now = time.time()
    route_key = f"{route.method} {route.path}"
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string,
        "cookies": [f"{k}={v}" for k, v in request.cookies.items()] or None,
        "headers": _multi([(k.lower(), v) for k, v in request.headers.items()]) or {},
        "queryStringParameters": _multi(list(request.query.items())),
        "pathParameters": dict(request.match_info) or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "sourceIp": request.remote or "127.0.0.1",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": _request_time(now),
            "timeEpoch": int(now * 1000),
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


def http_response(result: Any) -> web.Response:
    """Payload v2: a dict with statusCode is taken as is; anything else is JSON with status 200."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return web.json_response(result)
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    response = web.Response(status=int(result["statusCode"]), body=payload, headers=result.get("headers") or {})
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


@dataclass(frozen=True)
class Cors:
    """The HTTP API's CorsConfiguration, as template.yaml declares it (API Gateway answers preflights itself)."""

    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...]
    allow_methods: tuple[str, ...]
    max_age: int | None = None

    @classmethod
    def of(cls, configuration: dict[str, Any]) -> Cors:
        max_age = configuration.get("MaxAge")
        return cls(
            tuple(configuration.get("AllowOrigins", ())),
            tuple(configuration.get("AllowHeaders", ())),
            tuple(configuration.get("AllowMethods", ())),
            int(max_age) if max_age is not None else None,
        )

    def headers(self, origin: str | None) -> dict[str, str]:
        allowed = "*" if "*" in self.allow_origins else (origin if origin in self.allow_origins else None)
        if allowed is None:
            return {}
        headers = {
            "Access-Control-Allow-Origin": allowed,
            "Access-Control-Allow-Headers": ", ".join(self.allow_headers),
            "Access-Control-Allow-Methods": ", ".join(self.allow_methods),
        }
        if self.max_age is not None:
            headers["Access-Control-Max-Age"] = str(self.max_age)
        return headers


def http_api(
    routes: list[HttpRoute], invoke: Invoke, cors: Cors | None, extra: Iterable[web.AbstractRouteDef] | None = None
) -> web.Application:
    app = web.Application(middlewares=[_cors_middleware(cors)] if cors is not None else [])
    for route in routes:

        async def handle(request: web.Request, route: HttpRoute = route) -> web.StreamResponse:
            event = await http_event(request, route)
            try:
                invocation = await invoke(route.pool, event)
            except InvocationError as failed:
                logger.error(
                    "%-13s %s %s → 500 (%s)", route.pool.spec.name, request.method, request.path, failed.summary
                )
                logger.debug("%s", failed)
                return web.json_response({"message": "Internal Server Error"}, status=500)
            response = http_response(invocation.result)
            logger.info(
                "%-13s %s %s → %d (%.0f ms)",
                route.pool.spec.name,
                request.method,
                request.path_qs,
                response.status,
                invocation.duration_ms,
            )
            return response

        app.router.add_route(route.method, route.path, handle)
    if extra is not None:
        app.router.add_routes(extra)
    return app


def _cors_middleware(cors: Cors) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def answer_with_cors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as error:
                response = web.json_response({"message": error.reason}, status=error.status)
        response.headers.update(cors.headers(request.headers.get("Origin")))
        return response

    return answer_with_cors


# WebSocket API -------------------------------------------------------------------------------------


class TokenBucket:
    """API Gateway's throttle: `rate` requests a second on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass(frozen=True)
class StageThrottling:
    """The stage's DefaultRouteSettings and RouteSettings throttles, as template.yaml declares them."""

    default: tuple[float, int] | None  # (rate, burst)
    routes: dict[str, tuple[float, int]]

    def buckets(self) -> tuple[TokenBucket | None, dict[str, TokenBucket]]:
        default = TokenBucket(*self.default) if self.default else None
        return default, {route: TokenBucket(*limits) for route, limits in self.routes.items()}


def stage_throttling(stage: dict[str, Any], parameters: dict[str, Any]) -> StageThrottling:
    """Read an AWS::ApiGatewayV2::Stage's throttles; `!Ref` to a parameter takes its default."""

    def value(raw: Any) -> float:
        if isinstance(raw, dict) and "Ref" in raw:
            raw = parameters[raw["Ref"]]["Default"]
        return float(raw)

    def limits(settings: dict[str, Any] | None) -> tuple[float, int] | None:
        if not settings or "ThrottlingRateLimit" not in settings:
            return None
        return value(settings["ThrottlingRateLimit"]), int(value(settings["ThrottlingBurstLimit"]))

    properties = stage.get("Properties", {})
    routes = {key: limits(settings) for key, settings in (properties.get("RouteSettings") or {}).items()}
    return StageThrottling(
        limits(properties.get("DefaultRouteSettings")), {k: v for k, v in routes.items() if v is not None}
    )


@dataclass
class Socket:
    connection_id: str
    websocket: web.WebSocketResponse
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)
    # Messages wait here and run one at a time per connection: in AWS every message is its own Lambda
    # invocation, so one connection's flood never waits in front of another's message. The devstack has a
    # few instances, not thousands: taking turns per connection keeps that property.
    inbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    draining: bool = False


class WebSocketApi:
    """Sockets keyed by connection id, the route selection expression, and the @connections API."""

    def __init__(
        self,
        routes: dict[str, FunctionPool],
        selection_expression: str,
        invoke: Invoke,
        stage: str,
        throttling: StageThrottling | None = None,
    ) -> None:
        self.routes = routes
        self.selection_path = selection_expression.removeprefix("$request.body.").split(".")
        self.invoke = invoke
        self.stage = stage
        self.sockets: dict[str, Socket] = {}
        self._default_bucket, self._route_buckets = (throttling or StageThrottling(None, {})).buckets()
        self._in_flight: set[asyncio.Task[None]] = set()  # one reader task per connection with messages
        # "route: why" of every handler invocation that failed (raised, timed out, its instance died): what
        # AWS would show as a Lambda error; the devstack only logs them, tests look here.
        self.failed_invocations: list[str] = []

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_WEBSOCKET_MESSAGE_BYTES * 2)
        app.router.add_get("/", self._connect)
        for prefix in ("", "/{stage}"):  # the management endpoint may carry the stage, as in AWS
            app.router.add_post(prefix + "/@connections/{connection_id}", self._post)
            app.router.add_get(prefix + "/@connections/{connection_id}", self._get)
            app.router.add_delete(prefix + "/@connections/{connection_id}", self._delete)
        return app

    def _event(self, route_key: str, socket: Socket, request: web.Request | None, body: str | None) -> dict[str, Any]:
        now = time.time()
        event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
        event: dict[str, Any] = {
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "extendedRequestId": str(uuid.uuid4()),
                "requestTime": _request_time(now),
                "messageDirection": "IN",
                "stage": self.stage,
                "connectedAt": int(socket.connected_at * 1000),
                "requestTimeEpoch": int(now * 1000),
                "identity": {"sourceIp": socket.source_ip, "userAgent": socket.user_agent},
                "requestId": str(uuid.uuid4()),
                "domainName": "127.0.0.1",
                "connectionId": socket.connection_id,
                "apiId": "local",
            },
            "isBase64Encoded": False,
        }
        if event_type == "MESSAGE":
            event["requestContext"]["messageId"] = str(uuid.uuid4())
            event["body"] = body
        if request is not None:
            event["headers"] = dict(request.headers)
            event["multiValueHeaders"] = {k: request.headers.getall(k) for k in request.headers}
            event["queryStringParameters"] = dict(request.query) or None
            event["multiValueQueryStringParameters"] = {k: request.query.getall(k) for k in request.query} or None
        return event

    def select_route(self, body: str) -> str | None:
        """The route a message goes to, as API Gateway picks it: the selection expression's value when a
        route has that key, else `$default` (also when the expression cannot be evaluated: not JSON, nested
        too deep to parse, no such field). A message never selects `$connect` or `$disconnect`."""
        try:
            value: Any = json.loads(body)
            for key in self.selection_path:
                value = value[key]
        except (ValueError, KeyError, TypeError, RecursionError):
            value = None
        if isinstance(value, str) and value in self.routes and value not in CONNECTION_ROUTES:
            return value
        return "$default" if "$default" in self.routes else None

    async def _run(self, route_key: str, socket: Socket, request: web.Request | None, body: str | None) -> Any:
        pool = self.routes[route_key]
        try:
            invocation = await self.invoke(pool, self._event(route_key, socket, request, body))
        except InvocationError as failed:
            self.failed_invocations.append(f"{route_key}: {failed.summary}")
            raise
        status = invocation.result.get("statusCode") if isinstance(invocation.result, dict) else None
        logger.info(
            "%-13s ws %s %s → %s (%.0f ms)",
            pool.spec.name,
            route_key,
            socket.connection_id,
            status,
            invocation.duration_ms,
        )
        return invocation.result

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        # aiohttp refuses a message of max_msg_size bytes or more; API Gateway takes one of 128 KB exactly.
        websocket = web.WebSocketResponse(max_msg_size=MAX_WEBSOCKET_MESSAGE_BYTES + 1, autoping=True)
        if not websocket.can_prepare(request).ok:
            return web.Response(status=426, text="this endpoint speaks WebSocket")
        socket = Socket(
            connection_id=base64.b64encode(secrets.token_bytes(10)).decode(),  # API Gateway's "L0SM9cOFvHcCIhw="
            websocket=websocket,
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
        )
        if "$connect" in self.routes:
            try:
                result = await self._run("$connect", socket, request, None)
            except InvocationError as failed:
                logger.error("$connect failed: %s", failed.summary)
                return web.Response(status=500, text="Internal Server Error")
            status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
            if status >= 300:  # API Gateway refuses the upgrade with the handler's status
                return web.Response(status=status, text=str(result.get("body") or "Forbidden"))
        await websocket.prepare(request)
        self.sockets[socket.connection_id] = socket
        try:
            async for message in websocket:
                socket.last_active_at = time.time()
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = message.data if message.type is WSMsgType.TEXT else message.data.decode(errors="replace")
                    await self._accept(socket, data)
        finally:
            self.sockets.pop(socket.connection_id, None)
            try:  # its last messages (e.g. a result) are handled before $disconnect
                await asyncio.wait_for(socket.inbox.join(), CLOSING_DRAIN_SECONDS)
            except TimeoutError:
                logger.warning("%s closed with %d messages unhandled", socket.connection_id, socket.inbox.qsize())
            if "$disconnect" in self.routes:
                try:
                    await self._run("$disconnect", socket, None, None)
                except InvocationError as failed:
                    logger.error("$disconnect failed: %s", failed.summary)
        return websocket

    async def _accept(self, socket: Socket, body: str) -> None:
        """Throttle as the stage does (every connection shares its buckets), then queue for the connection."""
        route_key = self.select_route(body)
        if route_key is None:
            await self._send(socket, json.dumps({"message": "Forbidden", "connectionId": socket.connection_id}))
            return
        bucket = self._route_buckets.get(route_key, self._default_bucket)
        backlog_full = socket.inbox.qsize() >= MAX_QUEUED_MESSAGES_PER_CONNECTION
        if backlog_full or (bucket is not None and not bucket.take()):
            logger.debug("ws %s %s → throttled (429)", route_key, socket.connection_id)
            await self._send(
                socket,
                json.dumps(
                    {
                        "message": "Too Many Requests",
                        "connectionId": socket.connection_id,
                        "requestId": str(uuid.uuid4()),
                    }
                ),
            )
            return
        socket.inbox.put_nowait(body)
        if not socket.draining:
            socket.draining = True
            task = asyncio.create_task(self._drain(socket))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _drain(self, socket: Socket) -> None:
        try:
            while not socket.inbox.empty():
                body = socket.inbox.get_nowait()
                try:
                    await self._message(socket, body)
                finally:
                    socket.inbox.task_done()
        finally:
            socket.draining = False

    async def _message(self, socket: Socket, body: str) -> None:
        route_key = self.select_route(body)
        if route_key is None:
            return
        try:
            await self._run(route_key, socket, None, body)
        except InvocationError as failed:
            logger.error("%s %s failed: %s", route_key, socket.connection_id, failed.summary)
            await self._send(
                socket, json.dumps({"message": "Internal server error", "connectionId": socket.connection_id})
            )

    @staticmethod
    async def _send(socket: Socket, data: str) -> None:
        if not socket.websocket.closed:
            await socket.websocket.send_str(data)

    def _gone(self, connection_id: str) -> web.Response:
        return web.json_response(
            {"message": f"connection {connection_id} is gone"},
            status=410,
            headers={"x-amzn-ErrorType": "GoneException"},
        )

    async def _post(self, request: web.Request) -> web.Response:
        connection_id = request.match_info["connection_id"]
        socket = self.sockets.get(connection_id)
        if socket is None or socket.websocket.closed:
            return self._gone(connection_id)
        data = await request.read()
        if len(data) > MAX_WEBSOCKET_MESSAGE_BYTES:
            return web.json_response(
                {"message": f"message of {len(data)} bytes exceeds 128 KB"},
                status=413,
                headers={"x-amzn-ErrorType": "PayloadTooLargeException"},
            )
        try:
            await socket.websocket.send_str(data.decode())
        except UnicodeDecodeError:
            await socket.websocket.send_bytes(data)
        except ConnectionResetError:
            return self._gone(connection_id)
        return web.Response(status=200)

    async def _get(self, request: web.Request) -> web.Response:
        socket = self.sockets.get(request.match_info["connection_id"])
        if socket is None:
            return self._gone(request.match_info["connection_id"])

        def iso(moment: float) -> str:
            return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")

        return web.json_response(
            {  # the wire names; boto3 shows them as ConnectedAt, Identity.SourceIp…
                "connectedAt": iso(socket.connected_at),
                "lastActiveAt": iso(socket.last_active_at),
                "identity": {"sourceIp": socket.source_ip, "userAgent": socket.user_agent},
            }
        )

    async def _delete(self, request: web.Request) -> web.Response:
        socket = self.sockets.get(request.match_info["connection_id"])
        if socket is None:
            return self._gone(request.match_info["connection_id"])
        await socket.websocket.close()
        return web.Response(status=204)

    async def close_all(self) -> None:
        for socket in list(self.sockets.values()):
            await socket.websocket.close(code=1001, message=b"devstack stopping")
