"""What the developer console (clients/ts/console) needs of the devstack; development only, never deployed
(none of it is in template.yaml):

- `POST /dev/token {"user_id"}` → `{"token", "expires_at"}`: a sign-in, the same JWT `crosslist dev token` mints.
- `GET /dev/config`: where the WebSocket API listens and the demo photos' paths.
- `/dev/vinted/{user_id}/api/v2/...`: the fake Vinted a browser "extension" calls over HTTP, one VintedSimulator
  (the plugin simulator's class) per user, kept across restarts in .devstack/fakes/browser-vinted-<user>.json.
  It answers as Vinted would: its HTTP status, its JSON on success, its error text otherwise, `Retry-After` on a
  429. The console's "act as the browser extension" switch turns each `plugin.command` into one such call, and
  the answer into the `plugin_result` the real extension would send. `GET /dev/vinted/{user_id}` shows the
  account, `POST /dev/vinted/{user_id}/faults {"faults": [...]}` makes its next calls fail and
  `PUT /dev/vinted/{user_id}/latency {"latency_ms": n}` makes them slower.
- `GET /console/`: the console's files, from clients/ts/dist/console; `/console/client/` is the compiled client
  (clients/ts/dist/src) it imports through its import map.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import jwt
from aiohttp import web

from devstack.fake_state import load_state, save_state
from devstack.plugin import FAILURES, Fault, VintedReply, VintedSimulator, seed_demo_account

logger = logging.getLogger("devstack")

TOKEN_PATH = "/dev/token"
CONFIG_PATH = "/dev/config"
VINTED_PREFIX = "/dev/vinted"
CONSOLE_PREFIX = "/console"
CLIENT_PREFIX = "client/"  # under CONSOLE_PREFIX: the compiled client
CONSOLE_DIST = Path("clients/ts/dist/console")  # from the repository's root
CLIENT_DIST = Path("clients/ts/dist/src")
DEMO_IMAGES_PATH = "/__devstack/images/{number}.png"
DEMO_IMAGES = 6  # the console offers the first six of devstack.images' pictures
TOKEN_LIFETIME_SECONDS = 12 * 3600
# A dev user id: what a URL path, a file name and an SQS message group all take as it is.
USER_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
BROWSER_LATENCY_MS = 300  # how long each call to the browser's fake Vinted takes (as `crosslist dev plugin`'s)
MAX_QUEUED_FAULTS = 20
MAX_LATENCY_MS = 60_000
# The failures the HTTP fake can answer: those with a Vinted status (a network failure or a lost answer
# would need the connection itself to break).
HTTP_FAULTS: tuple[Fault, ...] = tuple(f for f in get_args(Fault) if FAILURES.get(f, (None, ""))[0] is not None)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
NOT_BUILT = (
    "The console is not built: run `make console` (it runs npm ci and npm run build in clients/ts, then compiles"
    " clients/ts/console), then reload this page. `make dev` builds it before starting."
)


def mint_dev_token(secret: str, user_id: str, expires_in: int = TOKEN_LIFETIME_SECONDS) -> str:
    """A JWT the devstack accepts for `user_id` (HS256 with the devstack's key)."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "iat": now, "exp": now + expires_in}, secret, algorithm="HS256")


def browser_vinted_file(fakes_dir: Path, user_id: str) -> Path:
    """Where the user's browser fake Vinted is kept between runs (`crosslist dev plugin` keeps its own)."""
    return fakes_dir / f"browser-vinted-{urllib.parse.quote(user_id, safe='')}.json"


class BrowserVinted:
    """One fake Vinted account per user, for the console's extension: the demo account (listings of its own, a
    sale, a buyer's conversation) the first time, then as it was left."""

    def __init__(self, fakes_dir: Path, latency_ms: int = BROWSER_LATENCY_MS) -> None:
        self.fakes_dir = fakes_dir
        self.latency_ms = latency_ms
        self.accounts: dict[str, VintedSimulator] = {}
        self.faults: dict[str, list[Fault]] = {}  # user -> the next calls' failures, in order
        self.latencies: dict[str, int] = {}  # user -> how long that account's calls take (ms), when not latency_ms

    def account(self, user_id: str) -> VintedSimulator:
        vinted = self.accounts.get(user_id)
        if vinted is not None:
            return vinted
        # latency_ms 0: `call` waits instead, before touching the account.
        vinted = VintedSimulator(latency_ms=0, unique_ids=True)
        saved = load_state(browser_vinted_file(self.fakes_dir, user_id))
        if saved is not None:
            try:
                vinted.restore(saved)
            except (KeyError, TypeError, ValueError) as unreadable:  # a file of another shape: a new account
                logger.warning("the browser fake Vinted of %s cannot be restored (%r): a new one", user_id, unreadable)
                vinted, saved = VintedSimulator(latency_ms=0, unique_ids=True), None
        if saved is None:
            seed_demo_account(vinted)
        self.accounts[user_id] = vinted
        return vinted

    async def call(self, user_id: str, method: str, path: str, payload: Any) -> VintedReply:
        """One call of the extension to Vinted, as `plugin.command` describes it (method, path, payload)."""
        latency_ms = self.latency_of(user_id)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        vinted = self.account(user_id)
        queued = self.faults.get(user_id)
        fault = queued.pop(0) if queued else None
        return vinted.perform({"method": method, "path": path, "payload": payload}, fault=fault)

    def latency_of(self, user_id: str) -> int:
        return self.latencies.get(user_id, self.latency_ms)

    def save(self) -> None:
        for user_id, vinted in self.accounts.items():
            try:
                save_state(browser_vinted_file(self.fakes_dir, user_id), vinted.state())
            except Exception:  # stopping goes on: the next run starts that account again
                logger.exception("could not save the browser fake Vinted of %s", user_id)


def _error(status: int, code: str, message: str) -> web.Response:
    """The HTTP API's error body, so that the console shows every refusal the same way."""
    return web.json_response({"statusCode": status, "code": code, "message": message}, status=status)


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("the body is not JSON") from None


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body's JSON object; empty when there is no body, it is not JSON or not an object (the caller then
    refuses the missing field, naming it)."""
    try:
        body = await _json_body(request)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _user(request: web.Request) -> str | None:
    user_id = request.match_info["user_id"]
    return user_id if USER_ID.match(user_id) else None


def _bad_user() -> web.Response:
    return _error(400, "invalid_user_id", "a dev user id is 1 to 64 letters, digits or . _ @ -")


def vinted_http_response(reply: VintedReply) -> web.Response:
    """Vinted's answer as the extension saw it: the status, the JSON on success, the error text otherwise."""
    headers = {"Retry-After": str(round(reply.retry_after))} if reply.retry_after is not None else {}
    status = reply.status or 502
    if reply.success:
        return web.json_response(reply.result, status=status, headers=headers)
    text = reply.error or ""
    try:
        json.loads(text)
    except ValueError:
        return web.Response(status=status, text=text, headers=headers)
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def console_routes(
    *,
    root: Path,
    jwt_secret: Callable[[], str],
    ws_url: Callable[[], str],
    vinted: BrowserVinted,
) -> web.RouteTableDef:
    """The routes above; `jwt_secret` and `ws_url` are read when asked (the stack knows them once started)."""
    routes = web.RouteTableDef()
    _sign_in_routes(routes, jwt_secret, ws_url)
    _vinted_routes(routes, vinted)
    _file_routes(routes, root)
    return routes


def _sign_in_routes(routes: web.RouteTableDef, jwt_secret: Callable[[], str], ws_url: Callable[[], str]) -> None:
    @routes.post(TOKEN_PATH)
    async def token(request: web.Request) -> web.Response:
        body = await _json_object(request)
        user_id = body.get("user_id")
        if not isinstance(user_id, str) or not USER_ID.match(user_id):
            return _error(
                400, "invalid_user_id", 'send {"user_id": "..."}: 1 to 64 letters, digits or . _ @ - (e.g. "demo")'
            )
        expires_at = int(time.time()) + TOKEN_LIFETIME_SECONDS
        return web.json_response(
            {"token": mint_dev_token(jwt_secret(), user_id), "user_id": user_id, "expires_at": expires_at}
        )

    @routes.get(CONFIG_PATH)
    async def config(_: web.Request) -> web.Response:
        websocket = urllib.parse.urlsplit(ws_url())
        return web.json_response(
            {
                "websocket_url": ws_url(),
                "websocket_port": websocket.port,
                "demo_image_paths": [DEMO_IMAGES_PATH.format(number=n) for n in range(1, DEMO_IMAGES + 1)],
                "vinted_prefix": VINTED_PREFIX,
                "fault_kinds": list(HTTP_FAULTS),
            }
        )


def _vinted_routes(routes: web.RouteTableDef, vinted: BrowserVinted) -> None:
    @routes.route("*", VINTED_PREFIX + "/{user_id}/api/v2/{tail:.*}")
    async def vinted_call(request: web.Request) -> web.Response:
        user_id = _user(request)
        if user_id is None:
            return _bad_user()
        try:
            payload = await _json_body(request)
        except ValueError:
            return web.Response(status=400, text="Vinted answered 400 Bad Request: the body is not JSON")
        path = "/api/v2/" + request.match_info["tail"]
        if request.query_string:
            path += "?" + request.query_string
        reply = await vinted.call(user_id, request.method, path, payload)
        logger.info("%-13s %s %s → %s", "fake Vinted", request.method, path, reply.status)
        return vinted_http_response(reply)

    @routes.get(VINTED_PREFIX + "/{user_id}")
    async def vinted_account(request: web.Request) -> web.Response:
        user_id = _user(request)
        if user_id is None:
            return _bad_user()
        account = vinted.account(user_id)
        items = sorted(account.items.values(), key=lambda item: int(item["id"]), reverse=True)
        return web.json_response(
            {
                "vinted_user_id": account.vinted_user_id,
                "latency_ms": vinted.latency_of(user_id),
                "items": [
                    {name: item.get(name) for name in ("id", "title", "price", "currency", "url", "is_closed")}
                    | {"photos": len(item.get("photo_ids") or [])}
                    for item in items
                ],
                "sales": len(account.orders),
                "faults": vinted.faults.get(user_id, []),
            }
        )

    @routes.post(VINTED_PREFIX + "/{user_id}/faults")
    async def vinted_faults(request: web.Request) -> web.Response:
        user_id = _user(request)
        if user_id is None:
            return _bad_user()
        body = await _json_object(request)
        faults = body.get("faults")
        kinds = ", ".join(HTTP_FAULTS)
        if not isinstance(faults, list) or len(faults) > MAX_QUEUED_FAULTS or any(f not in HTTP_FAULTS for f in faults):
            return _error(
                400, "invalid_faults", f'send {{"faults": [...]}}: up to {MAX_QUEUED_FAULTS} of {kinds}, in order'
            )
        queued = vinted.faults.setdefault(user_id, [])
        queued.extend(faults)
        return web.json_response({"faults": queued})

    @routes.put(VINTED_PREFIX + "/{user_id}/latency")
    async def vinted_latency(request: web.Request) -> web.Response:
        user_id = _user(request)
        if user_id is None:
            return _bad_user()
        body = await _json_object(request)
        latency = body.get("latency_ms")
        if not isinstance(latency, int) or isinstance(latency, bool) or not 0 <= latency <= MAX_LATENCY_MS:
            return _error(400, "invalid_latency", f'send {{"latency_ms": n}}: 0 to {MAX_LATENCY_MS} milliseconds')
        vinted.latencies[user_id] = latency
        return web.json_response({"latency_ms": latency})


def _file_routes(routes: web.RouteTableDef, root: Path) -> None:
    console_dir = root / CONSOLE_DIST
    client_dir = root / CLIENT_DIST

    @routes.get(CONSOLE_PREFIX)
    async def console_root(request: web.Request) -> web.Response:
        query = f"?{request.query_string}" if request.query_string else ""
        return web.Response(status=302, headers={"Location": f"{CONSOLE_PREFIX}/{query}"})

    @routes.get(CONSOLE_PREFIX + "/{path:.*}")
    async def console_file(request: web.Request) -> web.Response:
        if not (console_dir / "index.html").is_file() or not (client_dir / "index.js").is_file():
            return web.Response(status=503, text=NOT_BUILT)
        path = request.match_info["path"] or "index.html"
        base = client_dir if path.startswith(CLIENT_PREFIX) else console_dir
        relative = path.removeprefix(CLIENT_PREFIX) if base is client_dir else path
        file = _inside(base, relative)
        if file is None or file.suffix not in CONTENT_TYPES:
            served_from = base.relative_to(root)
            return web.Response(status=404, text=f"the console has no file {path!r} (served from {served_from})")
        return web.Response(
            body=file.read_bytes(),
            headers={"Content-Type": CONTENT_TYPES[file.suffix], "Cache-Control": "no-cache"},
        )


def _inside(base: Path, relative: str) -> Path | None:
    """The file `relative` names under `base`, never outside it; None when there is none."""
    if not relative or "\\" in relative or "\0" in relative:
        return None
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base.resolve()) or not candidate.is_file():
        return None
    return candidate
