"""eBay's notification public keys, kept per key id in the Lambda instance: a burst of notifications costs one
getPublicKey call, and a burst of forged ones naming made-up key ids costs one call per id per UNKNOWN_FOR."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from crosslist.notifications.ebay_signature import load_public_key

KEEP_FOR = 3600.0  # seconds a key is used before it is asked for again
UNKNOWN_FOR = 600.0  # seconds a key id eBay does not know is not asked about again
MAX_KEYS = 256  # a flood of made-up key ids cannot grow the cache without bound


class KeysUnavailable(Exception):
    """eBay could not be asked for the key (no answer, a 5xx, the app's token refused): try again later."""


# Fetches the PEM of the key id from eBay; None when eBay does not know the id; KeysUnavailable when it cannot say.
KeyFetch = Callable[[str], str | None]


@dataclass(frozen=True)
class _Entry:
    key: ec.EllipticCurvePublicKey | None  # None: eBay does not know the id (or served a key that is not one)
    until: float


class EbayPublicKeys:
    def __init__(self, fetch: KeyFetch, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.fetches = 0  # how many times eBay was asked (tests, the bench)

    def key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The public key of `kid`; None when eBay does not know it; KeysUnavailable when eBay cannot be asked."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(kid)
            if entry is not None and entry.until > now:
                return entry.key
        self.fetches += 1
        pem = self._fetch(kid)
        key: ec.EllipticCurvePublicKey | None = None
        if pem is not None:
            try:
                key = load_public_key(pem)
            except ValueError:
                key = None
        with self._lock:
            if len(self._entries) >= MAX_KEYS:
                self._entries = {k: e for k, e in self._entries.items() if e.until > now and e.key is not None}
            self._entries[kid] = _Entry(key, now + (KEEP_FOR if key is not None else UNKNOWN_FOR))
        return key
