"""Connecting a user's eBay or Etsy account as their browser and the web app would, without either.

The steps a real user takes: the web app asks for the authorization URL (GET /marketplaces/{m}/connect);
the browser goes there, the marketplace (here the devstack's fake, which consents at once) sends it to
crosslist's callback, which sends it on to the web app page with `code` and `state`; that page completes
the connection with the user's token (POST /marketplaces/{m}/connect). Used by `crosslist dev connect`,
the end-to-end tests and the bench.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

MAX_HOPS = 5


class ConnectFailed(Exception):
    """The connection did not complete; the message says at which step and what was answered."""


def connect_account(
    api: str, token: str, marketplace: str, *, account: str | None = None, timeout: float = 30
) -> dict[str, Any]:
    """Connect `marketplace` for the user of `token` (`account`: which fake seller consents, by default the
    fake's own); returns what the completion answered."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=timeout) as client:
        started = client.get(f"{api}/marketplaces/{marketplace}/connect", headers=headers)
        if started.status_code != 200:
            raise ConnectFailed(
                f"GET /marketplaces/{marketplace}/connect answered {started.status_code}: {started.text}"
            )
        url = str(started.json()["authorization_url"]) + (f"&account={account}" if account else "")
        back = _follow_to_web_app(client, url, marketplace)
        if "code" not in back:
            raise ConnectFailed(f"{marketplace} sent the browser back without a code: {back}")
        done = client.post(
            f"{api}/marketplaces/{marketplace}/connect",
            headers=headers,
            json={"code": back["code"], "state": back["state"]},
        )
        if done.status_code != 200:
            raise ConnectFailed(f"POST /marketplaces/{marketplace}/connect answered {done.status_code}: {done.text}")
        return dict(done.json())


def _follow_to_web_app(client: httpx.Client, url: str, marketplace: str) -> dict[str, str]:
    """The browser's redirects from the authorization URL until crosslist's callback sends it to the web
    app: the query the web app page gets."""
    callback = f"/marketplaces/{marketplace}/callback"
    for _ in range(MAX_HOPS):
        hop = client.get(url, follow_redirects=False)
        if not hop.is_redirect:
            raise ConnectFailed(f"{url} answered {hop.status_code} instead of sending the browser on: {hop.text}")
        url = urljoin(url, hop.headers["location"])
        query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        if not urlsplit(url).path.endswith(callback) and "state" in query:
            return query
    raise ConnectFailed(f"still redirected after {MAX_HOPS} hops: {url}")
