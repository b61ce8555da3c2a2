"""Which product image URLs we store and fetch: https on public hosts only.

Our Lambdas download product photos to upload them to eBay and Etsy. A URL naming a private,
loopback, link-local or cloud-metadata address (http://169.254.169.254/…) would make them fetch
from inside our own network, so such URLs are refused when a product is saved, and again when an
image is fetched (`crosslist.marketplaces.image_fetch`), since DNS answers can change in between.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

from pydantic_core import Url

# Far beyond any real CDN URL; bounds what a product row and a list page hold.
MAX_IMAGE_URL_LENGTH = 2000

IpAddress = IPv4Address | IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Names that reach this machine, its network or a cloud metadata service without being IP literals.
_INTERNAL_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")
# Hosts made of numbers only: inet_aton (and browsers) read 2852039166, 0xa9.0xfe.0xa9.0xfe,
# 169.254.43518 and 127.1 as IPv4 addresses, and getaddrinfo resolves them so.
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)
_NAT64 = IPv6Network("64:ff9b::/96")


class UnsafeImageUrl(ValueError):
    """An image URL we neither store nor fetch; the message says why."""


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port: what a development origin such as http://127.0.0.1:8000 must match exactly."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, scheme: str, host: str, port: int | None) -> Origin:
        scheme = scheme.lower()
        return cls(scheme, _bare_host(host), port if port is not None else _DEFAULT_PORTS.get(scheme, 0))

    @classmethod
    def parse(cls, origin: str) -> Origin:
        url = Url(origin)
        return cls.of(url.scheme, url.host or "", url.port)


def check_image_url(url: str, dev_origins: Iterable[str] = ()) -> None:
    """Raise UnsafeImageUrl unless `url` is https on a public host, or on one of `dev_origins`."""
    try:
        parsed = Url(url)
    except ValueError:
        raise UnsafeImageUrl("not a valid URL") from None
    if parsed.username or parsed.password:
        raise UnsafeImageUrl("an image URL must not contain a user name or password")
    check_image_origin(Origin.of(parsed.scheme, parsed.host or "", parsed.port), dev_origins)


def check_image_origin(origin: Origin, dev_origins: Iterable[str] = ()) -> None:
    """Raise UnsafeImageUrl unless `origin` is https on a public host, or one of `dev_origins` exactly."""
    if origin in {Origin.parse(allowed) for allowed in dev_origins}:
        return
    if origin.scheme != "https":
        raise UnsafeImageUrl(f"an image URL must use https, not {origin.scheme}")
    check_public_host(origin.host)


def check_public_host(host: str) -> None:
    """Raise UnsafeImageUrl if `host` is, or names, an address that is not on the public internet.

    A public-looking name can still resolve to a private address: fetching checks what it resolves to.
    """
    name = _bare_host(host)
    address = literal_address(name)
    if address is not None:
        if not is_public_address(address):
            spelled = "" if str(address) == name else f" ({address})"
            raise UnsafeImageUrl(f"{host}{spelled} is not a public internet address")
        return
    if "." not in name or name in _INTERNAL_NAMES or name.endswith(_INTERNAL_SUFFIXES):
        raise UnsafeImageUrl(f"{host} is not a public internet host name")


def literal_address(host: str) -> IpAddress | None:
    """The address `host` spells as an IP literal, numeric tricks included; None for a host name."""
    name = host.removeprefix("[").removesuffix("]")
    try:
        return ip_address(name)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(name):
        try:
            return IPv4Address(socket.inet_aton(name.rstrip(".")))
        except OSError:
            raise UnsafeImageUrl(f"{host} is not a valid address") from None
    return None


def is_public_address(address: IpAddress) -> bool:
    """Whether `address` is a unicast address on the public internet."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        # 6to4 and NAT64 addresses lead to the IPv4 address they embed.
        embedded = address.sixtofour or (IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None)
        if embedded is not None and not is_public_address(embedded):
            return False
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _bare_host(host: str) -> str:
    return host.lower().removeprefix("[").removesuffix("]").rstrip(".")
