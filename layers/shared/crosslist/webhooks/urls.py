"""Where a webhook may be sent: https on a host whose every address is on the public internet.

A user's URL is ours to call from inside AWS: one naming a private, loopback, link-local or cloud-metadata
address (http://169.254.169.254/…, https://10.0.0.5/, a name resolving to either) would make crosslist post
into its own network. Such a URL is refused when it is saved (`check_webhook_url`, resolving the name) and every
connection of a delivery checks the addresses again (crosslist.webhooks.sending), since DNS answers can change in
between. Redirects are never followed. Development origins (scheme://host:port, exactly; the devstack's) are let
through over http and on private addresses: never set in AWS.

Built on the image URL guard (crosslist.products.image_urls): the same idea of a public address. The name is
resolved by crosslist.marketplaces.image_fetch's `vetted_addresses`, imported when a URL is saved (it brings httpx:
not on the products function's cold start).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic_core import Url

from crosslist.errors import InvalidRequest
from crosslist.products.image_urls import Origin, UnsafeImageUrl, check_public_host

MAX_WEBHOOK_URL_LENGTH = 2000


class WebhookUrlNotAllowed(InvalidRequest):
    """A URL crosslist will not post to (not https, a private or internal address, user info in it)."""

    code = "webhook_url_not_allowed"


class WebhookUrlUnresolvable(InvalidRequest):
    """The URL's host name has no address (a typo, or DNS not set up yet)."""

    code = "webhook_url_unresolvable"


def webhook_origin(url: str, dev_origins: Iterable[str] = ()) -> tuple[Origin, bool]:
    """The URL's origin, and whether it is a development origin (then any address is allowed); raises
    WebhookUrlNotAllowed unless it is https on a host that is not internal by its name or literal address."""
    if len(url) > MAX_WEBHOOK_URL_LENGTH:
        raise WebhookUrlNotAllowed(f"a webhook URL is at most {MAX_WEBHOOK_URL_LENGTH} characters")
    try:
        parsed = Url(url)
    except ValueError:
        raise WebhookUrlNotAllowed("the webhook URL is not a valid URL") from None
    if parsed.username or parsed.password:
        raise WebhookUrlNotAllowed("a webhook URL must not contain a user name or password")
    origin = Origin.of(parsed.scheme, parsed.host or "", parsed.port)
    if origin in {Origin.parse(allowed) for allowed in dev_origins}:
        return origin, True
    if origin.scheme != "https":
        raise WebhookUrlNotAllowed(f"a webhook URL must use https, not {origin.scheme}")
    try:
        check_public_host(origin.host)
    except UnsafeImageUrl as unsafe:
        raise WebhookUrlNotAllowed(f"webhooks are sent to public addresses only: {unsafe}") from None
    return origin, False


def check_webhook_url(url: str, dev_origins: Iterable[str] = ()) -> None:
    """Raise WebhookUrlNotAllowed unless `url` is https on a host whose every address (resolved now) is public,
    or on one of `dev_origins`; WebhookUrlUnresolvable when its name has no address."""
    origin, development = webhook_origin(url, dev_origins)
    if development:
        return
    import httpcore

    from crosslist.marketplaces.image_fetch import vetted_addresses

    try:
        vetted_addresses(origin.host, origin.port)
    except UnsafeImageUrl as unsafe:
        raise WebhookUrlNotAllowed(f"webhooks are sent to public addresses only: {unsafe}") from None
    except httpcore.ConnectError as unresolved:
        raise WebhookUrlUnresolvable(f"the webhook URL's host has no address: {unresolved}"[:300]) from None
