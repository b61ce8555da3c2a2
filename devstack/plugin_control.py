"""The plugin simulator's control endpoint: what a buyer does on the fake Vinted, from outside its process.

The fake Vinted lives inside `crosslist dev plugin` (devstack.plugin's VintedSimulator), so `crosslist dev
sell vinted` reaches it over HTTP on loopback, at the URL `crosslist dev plugin` writes in .devstack/
(devstack.cli's write_plugin_endpoint). The same routes as on the fake eBay and Etsy: POST SELL_PATH
{"listing_id": "<item id>", "buyer"?: "..."}, and POST SEED_SHOP_PATH {"seed", "small", "image_base"} for
`crosslist dev seed-shops` (the account's wardrobe of devstack.shops). Development only: nothing like it exists
on Vinted.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from devstack.fake_http import SEED_SHOP_PATH, SELL_PATH
from devstack.plugin import VintedSimulator
from devstack.shops import shop_request


def control_application(vinted: VintedSimulator) -> web.Application:
    async def sell(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        given = body.get("listing_id") if isinstance(body, dict) else None
        buyer = body.get("buyer", "buyer-1") if isinstance(body, dict) else None
        if not str(given).isascii() or not str(given).isdigit() or not isinstance(buyer, str) or not buyer.strip():
            message = 'send {"listing_id": "<Vinted item id>", "buyer": "<name>"} as JSON'
            return web.json_response({"message": message}, status=400)
        item_id = int(str(given))
        if item_id not in vinted.items:
            return web.json_response({"message": f"the fake Vinted account has no item {item_id}"}, status=404)
        try:
            transaction_id = vinted.sell(item_id, buyer=buyer.strip())
        except ValueError as refused:  # already sold or closed
            return web.json_response({"message": str(refused)}, status=409)
        return web.json_response({"order_id": str(transaction_id), "listing_id": str(item_id)})

    async def seed_shop(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        asked = shop_request(body)
        if isinstance(asked, str):
            return web.json_response({"message": asked}, status=400)
        items = asked.shops().vinted
        ids = vinted.seed_wardrobe(items)
        states = Counter(item.state for item in items)
        return web.json_response({"listings": len(ids), "states": dict(states), "ids": ids})

    app = web.Application()
    app.router.add_post(SELL_PATH, sell)
    app.router.add_post(SEED_SHOP_PATH, seed_shop)
    return app


@contextlib.asynccontextmanager
async def control_server(vinted: VintedSimulator, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the control route for `vinted` on host:port (0: any free port); yields its base URL."""
    runner = web.AppRunner(control_application(vinted), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
