"""The one fake of Etsy: OAuth 2.0 with PKCE and the Open API v3 endpoints crosslist uses (shops, listings,
images, inventory, receipts), with the shapes and rules of the real ones as far as crosslist relies on them.

    with FakeEtsy() as etsy:                      # or the `fake_etsy` pytest fixture, or the devstack's
        CROSSLIST_ETSY_API_BASE = etsy.base_url + "/v3"
        CROSSLIST_ETSY_OAUTH_TOKEN_URL = etsy.base_url + TOKEN_PATH
        CROSSLIST_ETSY_AUTHORIZE_URL = etsy.base_url + AUTHORIZE_PATH

What it holds to, like Etsy: PKCE S256 only; refresh tokens rotate at every refresh (the old one is dead at
once); tokens start with the user's numeric id and a dot; every /v3/application call sends
`x-api-key: <keystring>:<shared_secret>` (the keystring alone: 403) and user endpoints a Bearer token with
the endpoint's scope; another seller's shop is 403; a draft needs quantity, title (140 characters at most),
description, price, who_made, when_made, taxonomy_id and, physical, shipping_profile_id and
readiness_state_id; going active needs an image and charges a listing fee (counted in `activation_fees`:
active to active charges nothing); every answer carries the rate-limit headers, a 429 `retry-after`.
Errors are {"error": "<message>"}.

Webhooks, as for an app with commercial access: the app's webhook URL (`webhook_url`, set on the fake as in
Etsy's developer portal) gets an `order.paid` at every paid receipt (`sell`, POST SELL_PATH), signed as Standard
Webhooks (webhook-id, webhook-timestamp, webhook-signature) with the app's signing secret (`webhook_secret`,
whsec_…), delivered outside the fake's lock and retried when refused (devstack.fake_http.PushSender).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request

from devstack.fake_http import (
    SEED_SHOP_PATH,
    SELL_PATH,
    Clock,
    Consent,
    FakeServer,
    Refusal,
    Reply,
    Route,
    TokenBook,
    bearer_token,
    json_body,
    note_account,
    oauth_error,
    redirect,
    route,
    utc_now,
)
from devstack.fake_state import IdSequence
from devstack.shops import EtsyListing, shop_request

TOKEN_PATH = "/v3/public/oauth/token"
AUTHORIZE_PATH = "/oauth/connect"
API = "/v3/application"
# What crosslist asks for: its shop, its listings (read, write, delete) and its sales.
ETSY_SCOPES = ("shops_r", "listings_r", "listings_w", "listings_d", "transactions_r")
_KNOWN_SCOPES = frozenset(
    {"address_r", "address_w", "billing_r", "cart_r", "cart_w", "email_r", "favorites_r", "favorites_w"}
    | {"feedback_r", "listings_d", "listings_r", "listings_w", "profile_r", "profile_w", "recommend_r"}
    | {"recommend_w", "shops_r", "shops_w", "transactions_r", "transactions_w"}
)
ACCESS_TOKEN_SECONDS = 3600
LISTING_LIFETIME_SECONDS = 120 * 24 * 3600  # an active listing runs four months
MAX_TITLE = 140
MAX_IMAGES = 10
WHO_MADE = frozenset({"i_did", "someone_else", "collective"})
WHEN_MADE = frozenset(
    {"made_to_order", "2020_2026", "2010_2019", "2007_2009", "before_2007", "2000_2006", "1990s", "1980s", "1970s"}
    | {"1960s", "1950s", "1940s", "1930s", "1920s", "1910s", "1900s", "1800s", "1700s", "before_1700"}
)
LISTING_STATES = frozenset({"active", "inactive", "sold_out", "draft", "expired"})
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
INCLUDES = frozenset({"Shipping", "Images", "Shop", "User", "Translations", "Inventory", "Videos"})  # getListings'
SIZE_PROPERTY_ID = 100  # the "Size" listing property of a listing with variations


@dataclass
class _Shop:
    account: str
    user_id: int
    shop_id: int
    shipping_profiles: list[dict[str, Any]]
    readiness_states: list[dict[str, Any]]


@dataclass
class _Window:
    """The requests one caller made in the last second and the last day (Etsy limits both)."""

    second: deque[float]
    day: deque[float]


class FakeEtsy(FakeServer):
    token_path = TOKEN_PATH

    def __init__(
        self,
        keystring: str = "crosslistfakeetsykeystr1",
        shared_secret: str | None = None,
        *,
        currency: str = "GBP",
        clock: Clock = utc_now,
    ) -> None:
        self.keystring = keystring  # the app's API key, also its OAuth client_id
        self.shared_secret = shared_secret or secrets.token_urlsafe(12)  # no secret written in a file
        self.currency = currency
        # The app's webhooks (commercial access): where Etsy posts them (None: nowhere) and the signing secret.
        self.webhook_url: str | None = None
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        super().__init__(clock)
        self.forget_state()

    @property
    def client_id(self) -> str:
        return self.keystring

    @property
    def client_secret(self) -> str:
        return self.shared_secret

    def forget_state(self) -> None:
        self._tokens = TokenBook(self.clock, ACCESS_TOKEN_SECONDS)
        self._shops: dict[str, _Shop] = {}
        self._listings: dict[int, dict[str, Any]] = {}
        self._inventories: dict[int, dict[str, Any]] = {}
        self._images: dict[int, list[dict[str, Any]]] = {}
        self._image_bytes: dict[int, bytes] = {}
        self._receipts: dict[int, dict[str, Any]] = {}  # receipt_id -> receipt (with its shop_id)
        self._windows: dict[str, _Window] = {}
        self._ids = IdSequence(unique=True)  # never an id of an earlier run: crosslist's database outlives the fake
        self.activation_fees: Counter[int] = Counter()  # listing_id -> listing fees charged by activations
        self._seeded: dict[str, dict[str, int]] = {}  # account -> devstack.shops key -> listing_id
        self.rate_limit_per_second = 10
        self.rate_limit_per_day = 10_000
        self.enforce_rate_limits = False  # the headers always; 429s only when asked (tests stay fast)

    # control for tests ------------------------------------------------------------------------------

    def issue_code(
        self,
        account: str = "dev",
        *,
        scopes: tuple[str, ...] = ETSY_SCOPES,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> str:
        """An authorization code for `account`, as if its seller had consented in a browser (the exchange
        checks `redirect_uri` and the PKCE verifier only when given)."""
        with self._lock:
            self._shop(account)
            return self._tokens.new_code(Consent(account, frozenset(scopes)), redirect_uri, code_challenge)

    def issue_tokens(self, account: str = "dev", *, scopes: tuple[str, ...] = ETSY_SCOPES) -> dict[str, Any]:
        """What the token endpoint answers a code exchange, without a request (not counted in token_calls)."""
        with self._lock:
            return self._new_tokens(Consent(account, frozenset(scopes)))

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._tokens.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._tokens.revoke_refresh_tokens()

    def shop_id(self, account: str = "dev") -> int:
        with self._lock:
            return self._shop(account).shop_id

    def user_id(self, account: str = "dev") -> int:
        with self._lock:
            return self._shop(account).user_id

    def shipping_profile_id(self, account: str = "dev") -> int:
        with self._lock:
            return int(self._shop(account).shipping_profiles[0]["shipping_profile_id"])

    def readiness_state_id(self, account: str = "dev") -> int:
        """The account's "ready_to_ship" readiness state."""
        with self._lock:
            return int(self._shop(account).readiness_states[0]["readiness_state_id"])

    def listings(self, account: str = "dev") -> list[dict[str, Any]]:
        with self._lock:
            shop_id = self._shop(account).shop_id
            return [copy.deepcopy(listing) for listing in self._listings.values() if listing["shop_id"] == shop_id]

    def images(self, listing_id: int | str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._images.get(int(listing_id), []))

    def image_bytes(self, listing_image_id: int | str) -> bytes:
        """The file uploaded as that image."""
        with self._lock:
            return self._image_bytes[int(listing_image_id)]

    def inventory(self, listing_id: int | str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._inventories[int(listing_id)])

    def receipts(self, account: str = "dev") -> list[dict[str, Any]]:
        with self._lock:
            shop_id = self._shop(account).shop_id
            return [copy.deepcopy(r) for r in self._receipts.values() if r["shop_id"] == shop_id]

    def sell(self, listing_id: int | str, quantity: int = 1, buyer: str = "buyer1") -> str:
        """A buyer buys `quantity` of an active listing: a paid receipt (its id is returned), and the
        listing's quantity goes down; at 0 the listing is "sold_out"."""
        with self._lock:
            listing = self._listings.get(int(listing_id))
            if listing is None or listing["state"] != "active" or listing["quantity"] < quantity:
                state = "missing" if listing is None else f"{listing['state']} with {listing['quantity']} left"
                raise ValueError(f"cannot sell {quantity} of listing {listing_id}: {state}")
            offering = self._take_from_stock(listing["listing_id"], quantity)
            listing["quantity"] -= quantity
            now = self._now()
            listing["last_modified_timestamp"] = listing["updated_timestamp"] = now
            if listing["quantity"] == 0:
                listing["state"], listing["state_timestamp"] = "sold_out", now
            receipt_id = self._new_receipt(listing, offering, quantity, buyer)
            url, shop_id = self.webhook_url, listing["shop_id"]
        if url is not None:  # delivered outside the lock, in a thread of its own
            self._order_paid(url, shop_id, receipt_id)
        return str(receipt_id)

    def signed_webhook(
        self, body: bytes, message_id: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """The Standard Webhooks headers Etsy sends with `body` (a new id, now, unless given)."""
        message_id = message_id or f"msg_{uuid.uuid4().hex}"
        timestamp = int(self.clock().timestamp()) if timestamp is None else timestamp
        key = base64.b64decode(self.webhook_secret.removeprefix("whsec_"))
        digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
        }

    def _order_paid(self, url: str, shop_id: int, receipt_id: int) -> None:
        resource = f"{self.base_url or 'https://openapi.etsy.com'}{API}/shops/{shop_id}/receipts/{receipt_id}"
        body = json.dumps({"event_type": "order.paid", "resource_url": resource, "shop_id": shop_id}).encode()
        self.push.send(url, "order.paid", self.signed_webhook(body), body)

    def state(self) -> dict[str, Any]:
        """What `restore` brings back in another run: shops, listings with their inventories and images,
        receipts, listing fees and the last id handed out. Not the tokens: the devstack asks its users to
        connect again after a restart."""
        with self._lock:
            return {
                "shops": [dataclasses.asdict(shop) for shop in self._shops.values()],
                "listings": list(self._listings.values()),
                "inventories": _by_text_key(self._inventories),
                "images": _by_text_key(self._images),
                "image_bytes": {str(key): base64.b64encode(data).decode() for key, data in self._image_bytes.items()},
                "receipts": list(self._receipts.values()),
                "activation_fees": _by_text_key(dict(self.activation_fees)),
                "webhook_secret": self.webhook_secret,
                "seeded": self._seeded,
                "last_id": self._ids.last,
            }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what `state` gave (on a fake that has not been used yet)."""
        with self._lock:
            for shop in state.get("shops", []):
                self._shops[shop["account"]] = _Shop(**shop)
            self._listings.update({int(listing["listing_id"]): listing for listing in state.get("listings", [])})
            self._inventories.update(_by_number_key(state.get("inventories", {})))
            self._images.update(_by_number_key(state.get("images", {})))
            self._image_bytes.update(
                {int(key): base64.b64decode(data) for key, data in state.get("image_bytes", {}).items()}
            )
            self._receipts.update({int(receipt["receipt_id"]): receipt for receipt in state.get("receipts", [])})
            self.activation_fees.update(_by_number_key(state.get("activation_fees", {})))
            self.webhook_secret = str(state.get("webhook_secret") or self.webhook_secret)
            for account, keys in state.get("seeded", {}).items():
                self._seeded.setdefault(account, {}).update(keys)
            self._ids.resume_after(int(state.get("last_id", 0)))

    # the seller's shop (devstack.shops) -------------------------------------------------------------

    def seed_shop(self, account: str, listings: Iterable[EtsyListing]) -> dict[str, str]:
        """The seller's listings made before crosslist, each in its state (active, inactive, sold_out, draft,
        expired) with its images (by URL: no file behind them) and inventory (a product per variation, by size).
        Each listing's key -> its listing_id; a key seeded before keeps its listing (seeding again adds nothing)."""
        listings = list(listings)
        with self._lock:
            shop = self._shop(account)
            seeded = self._seeded.setdefault(account, {})
            for listing in listings:
                if listing.key not in seeded:
                    seeded[listing.key] = self._seed_listing(shop, listing)
            return {listing.key: str(seeded[listing.key]) for listing in listings}

    def _seed_listing(self, shop: _Shop, listing: EtsyListing) -> int:
        listing_id = 1_000_000_000 + self._new_number()
        now = self._now()
        created = now - listing.age_days * 86_400
        if listing.state == "expired":  # its four months ran out without a renewal
            created -= LISTING_LIFETIME_SECONDS
            ending = created + LISTING_LIFETIME_SECONDS
        else:  # renewed automatically every four months
            ending = created + LISTING_LIFETIME_SECONDS * (1 + (now - created) // LISTING_LIFETIME_SECONDS)
        ready = shop.readiness_states[0]["readiness_state_id"]

        def money(price: str) -> dict[str, Any]:
            return {"amount": int(Decimal(price) * 100), "divisor": 100, "currency_code": listing.currency}

        sold_out = listing.state == "sold_out"
        products = [
            {
                "sku": variation.sku or "",
                "property_values": [
                    {
                        "property_id": SIZE_PROPERTY_ID,
                        "property_name": "Size",
                        "scale_id": None,
                        "scale_name": None,
                        "value_ids": [_stable_number(variation.size, "size", 10)],
                        "values": [variation.size],
                    }
                ],
                "offerings": [
                    {
                        "quantity": 0 if sold_out else variation.quantity,
                        "is_enabled": True,
                        "price": money(variation.price),
                        "readiness_state_id": ready,
                    }
                ],
            }
            for variation in listing.variations
        ] or [
            {
                "sku": listing.sku or "",
                "property_values": [],
                "offerings": [
                    {
                        "quantity": 0 if sold_out else listing.quantity,
                        "is_enabled": True,
                        "price": money(listing.price),
                        "readiness_state_id": ready,
                    }
                ],
            }
        ]
        prices = {variation.price for variation in listing.variations}
        on_size = [SIZE_PROPERTY_ID] if listing.variations else []
        self._store_inventory(
            listing_id,
            products,
            {
                "price_on_property": on_size if len(prices) > 1 else [],
                "quantity_on_property": on_size,
                "sku_on_property": on_size if any(variation.sku for variation in listing.variations) else [],
            },
        )
        self._listings[listing_id] = {
            "listing_id": listing_id,
            "user_id": shop.user_id,
            "shop_id": shop.shop_id,
            "title": listing.title[:MAX_TITLE],
            "description": listing.description,
            "state": listing.state,
            "creation_timestamp": created,
            "created_timestamp": created,
            "ending_timestamp": ending,
            "original_creation_timestamp": created,
            "last_modified_timestamp": created,
            "updated_timestamp": created,
            "state_timestamp": created,
            "quantity": 0 if sold_out else listing.quantity,
            "shop_section_id": None,
            "featured_rank": -1,
            "url": f"https://www.etsy.com/listing/{listing_id}/{_slug(listing.title)}",
            "num_favorers": listing.age_days % 17,
            "is_taxable": True,
            "listing_type": "physical",
            "tags": list(listing.tags),
            "materials": [],
            "shipping_profile_id": shop.shipping_profiles[0]["shipping_profile_id"],
            "return_policy_id": None,
            "who_made": "someone_else",
            "when_made": listing.when_made,
            "is_supply": False,
            "should_auto_renew": listing.state != "expired",
            "taxonomy_id": listing.taxonomy_id,
            "price": money(listing.price),
            "skus": [product["sku"] for product in products if product["sku"]],
            "has_variations": bool(listing.variations),
            "views": listing.age_days * 3,
        }
        self._images[listing_id] = [
            {
                "listing_id": listing_id,
                "listing_image_id": 3_000_000_000 + self._new_number(),
                "hex_code": None,
                "creation_tsz": created,
                "created_timestamp": created,
                "rank": rank,
                "url_75x75": url,
                "url_170x135": url,
                "url_570xN": url,
                "url_fullxfull": url,
                "full_height": None,
                "full_width": None,
                "alt_text": None,
            }
            for rank, url in enumerate(listing.photos, 1)
        ]
        return listing_id

    def _seed_shop_request(self, request: Request) -> Reply:
        """The devstack's `crosslist dev seed-shops` (POST SEED_SHOP_PATH): the account's shop of devstack.shops."""
        asked = shop_request(json_body(request))
        if isinstance(asked, str):
            return Reply(400, {"message": asked})
        listings = asked.shops().etsy
        ids = self.seed_shop(asked.account, listings)
        states = Counter(listing.state for listing in listings)
        return Reply(200, {"account": asked.account, "listings": len(ids), "states": dict(states), "ids": ids})

    # plumbing ---------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        shop, listing = f"{API}/shops/{{shop_id}}", f"{API}/listings/{{listing_id}}"
        return [
            route("GET", AUTHORIZE_PATH, self._authorize),
            route("POST", TOKEN_PATH, self._token),
            route("GET", f"{API}/users/me", self._me),
            route("GET", shop, self._get_shop),
            route("GET", f"{shop}/shipping-profiles", self._shipping_profiles),
            route("GET", f"{shop}/readiness-state-definitions", self._readiness_states),
            route("POST", f"{shop}/listings", self._create_draft_listing),
            route("GET", f"{shop}/listings", self._listings_of_shop),
            route("PATCH", f"{shop}/listings/{{listing_id}}", self._update_listing),
            route("POST", f"{shop}/listings/{{listing_id}}/images", self._upload_image),
            route("DELETE", f"{shop}/listings/{{listing_id}}/images/{{image_id}}", self._delete_image),
            route("GET", f"{shop}/receipts", self._receipts_of_shop),
            route("GET", f"{shop}/receipts/{{receipt_id}}", self._receipt),
            route("GET", listing, self._get_listing),
            route("DELETE", listing, self._delete_listing),
            route("GET", f"{listing}/images", self._get_images),
            route("GET", f"{listing}/inventory", self._get_inventory),
            route("PUT", f"{listing}/inventory", self._update_inventory),
            route("POST", SELL_PATH, self._sell_request),
            route("POST", SEED_SHOP_PATH, self._seed_shop_request),
        ]

    def error_body(self, path: str, status: int, message: str) -> Any:
        if path == TOKEN_PATH:
            error = {400: "invalid_grant", 401: "invalid_client"}.get(status)
            error = error or ("temporarily_unavailable" if status in (429, 503) else "server_error")
            return {"error": error, "error_description": message}
        standard = {
            401: "invalid_token",
            403: "Forbidden",
            404: "Resource not found",
            429: "You have exceeded your rate limit. Please wait before retrying.",
        }
        return {"error": standard.get(status) or ("Internal Server Error" if status >= 500 else message)}

    def admit(self, request: Request) -> Reply | None:
        """The app's key on every /v3/application call, then its caller's rate limits."""
        if not request.path.startswith(API):
            return None
        refused = self._check_api_key(request.headers.get("x-api-key", ""))
        if refused is not None:
            return refused
        return self._count_request(request)

    def finish(self, request: Request, reply: Reply) -> Reply:
        if not request.path.startswith(API):
            return reply
        headers = {name.lower(): value for name, value in reply.headers.items()}
        headers.update(request.environ.get("fake.rate_limit", {}))
        if reply.status == 429:  # Etsy always says when to come back
            headers.setdefault("retry-after", "1")
        return Reply(reply.status, reply.body, headers)

    def _check_api_key(self, key: str) -> Reply | None:
        keystring, separator, secret = key.partition(":")
        if not keystring:
            return Reply(403, {"error": "Missing API key: send x-api-key: <keystring>:<shared_secret>"})
        if keystring != self.keystring:
            return Reply(403, {"error": "Invalid API key"})
        if not separator or not secret:
            return Reply(
                403, {"error": "Shared secret is required in the x-api-key header (<keystring>:<shared_secret>)"}
            )
        if secret != self.shared_secret:
            return Reply(403, {"error": "Invalid shared secret"})
        return None

    def _count_request(self, request: Request) -> Reply | None:
        consent = self._tokens.access(bearer_token(request))
        caller = consent.account if consent is not None else self.keystring
        window = self._windows.setdefault(caller, _Window(deque(), deque()))
        now = time.monotonic()
        while window.second and window.second[0] <= now - 1:
            window.second.popleft()
        while window.day and window.day[0] <= now - 86_400:
            window.day.popleft()
        over = len(window.second) >= self.rate_limit_per_second or len(window.day) >= self.rate_limit_per_day
        if not (over and self.enforce_rate_limits):
            window.second.append(now)
            window.day.append(now)
        request.environ["fake.rate_limit"] = {
            "x-limit-per-second": str(self.rate_limit_per_second),
            "x-remaining-this-second": str(max(self.rate_limit_per_second - len(window.second), 0)),
            "x-limit-per-day": str(self.rate_limit_per_day),
            "x-remaining-today": str(max(self.rate_limit_per_day - len(window.day), 0)),
        }
        if over and self.enforce_rate_limits:
            wait = 1 if len(window.second) >= self.rate_limit_per_second else int(window.day[0] + 86_400 - now) + 1
            return Reply(429, self.error_body(request.path, 429, ""), {"retry-after": str(wait)})
        return None

    def listing_status(self, listing_id: str) -> str | None:
        listing = self._listings.get(int(listing_id)) if listing_id.isdigit() else None
        return None if listing is None else str(listing["state"])

    # OAuth ------------------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Reply:
        """The seller's consent page, consented at once: back to redirect_uri with a code."""
        query = request.args
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.keystring:
            return Reply(400, {"error": "invalid_client", "error_description": "unknown client_id"})
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            return Reply(400, {"error": "invalid_request", "error_description": "redirect_uri must be a URL"})
        state = query.get("state")
        scopes = frozenset(query.get("scope", "").split())
        problem = None
        if query.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif not state or not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            problem = "invalid_request"  # Etsy requires a state and PKCE with S256
        elif not scopes <= _KNOWN_SCOPES:
            problem = "invalid_scope"
        if problem is not None:
            return redirect(redirect_uri, error=problem, state=state)
        account = query.get("account") or "dev"
        self._shop(account)
        code = self._tokens.new_code(Consent(account, scopes), redirect_uri, query["code_challenge"])
        return redirect(redirect_uri, code=code, state=state)

    def _token(self, request: Request) -> Reply:
        form = request.form
        if form.get("client_id") != self.keystring:
            return Reply(401, {"error": "invalid_client", "error_description": "unknown client_id"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            pending = self._tokens.take_code(form.get("code", ""))
            if pending is None:
                return oauth_error("invalid_grant", "code is invalid, expired or already used")
            if pending.redirect_uri is not None and form.get("redirect_uri") != pending.redirect_uri:
                return oauth_error("invalid_grant", "redirect_uri does not match the authorization request")
            if pending.code_challenge is not None and _s256(form.get("code_verifier", "")) != pending.code_challenge:
                return oauth_error("invalid_grant", "code_verifier does not match the code_challenge")
            return Reply(200, self._new_tokens(pending.consent))
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            consent = self._tokens.refresh(token)
            if consent is None:
                return oauth_error("invalid_grant", "refresh_token is invalid or has been used")
            self._tokens.retire_refresh_token(token)  # Etsy rotates: the old one is dead from now on
            return Reply(200, self._new_tokens(consent))
        return oauth_error("unsupported_grant_type", f"grant type {grant!r} is not supported")

    def _new_tokens(self, consent: Consent) -> dict[str, Any]:
        prefix = f"{self._shop(consent.account).user_id}."
        return {
            "access_token": self._tokens.new_access_token(consent, prefix),
            "token_type": "Bearer",
            "expires_in": self._tokens.access_lifetime_seconds,
            "refresh_token": self._tokens.new_refresh_token(consent, prefix),
        }

    def _caller(self, request: Request, scope: str | None) -> _Shop:
        consent = self._tokens.access(bearer_token(request))
        if consent is None:
            raise _refusal(401, "invalid_token", error_description="access token is invalid or expired")
        if scope is not None and scope not in consent.scopes:
            raise _refusal(403, f"Insufficient scope: this request needs {scope}")
        note_account(request, consent.account)
        return self._shop(consent.account)

    def _own_shop(self, request: Request, shop_id: str, scope: str) -> _Shop:
        shop = self._caller(request, scope)
        if str(shop.shop_id) != shop_id:
            if any(str(other.shop_id) == shop_id for other in self._shops.values()):
                raise _refusal(403, "You do not have access to this shop")
            raise _refusal(404, f"Shop {shop_id} not found")
        return shop

    def _own_listing(self, shop: _Shop, listing_id: str) -> dict[str, Any]:
        listing = self._listing(listing_id)
        if listing["shop_id"] != shop.shop_id:
            raise _refusal(403, "You do not have access to this listing")
        return listing

    # shop -------------------------------------------------------------------------------------------

    def _me(self, request: Request) -> Reply:
        shop = self._caller(request, None)
        return Reply(200, {"user_id": shop.user_id, "shop_id": shop.shop_id})

    def _get_shop(self, request: Request, shop_id: str) -> Reply:
        # getShop is public: any app key reads any shop (which is why a shop id proves nothing).
        for shop in self._shops.values():
            if str(shop.shop_id) == shop_id:
                name = f"{shop.account.title()}Shop"
                return Reply(
                    200,
                    {
                        "shop_id": shop.shop_id,
                        "user_id": shop.user_id,
                        "shop_name": name,
                        "currency_code": self.currency,
                    },
                )
        raise _refusal(404, f"Shop {shop_id} not found")

    def _shipping_profiles(self, request: Request, shop_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "shops_r")
        return Reply(200, _results(copy.deepcopy(shop.shipping_profiles)))

    def _readiness_states(self, request: Request, shop_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "shops_r")
        return Reply(200, _results(copy.deepcopy(shop.readiness_states)))

    # listings ---------------------------------------------------------------------------------------

    def _create_draft_listing(self, request: Request, shop_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "listings_w")
        fields = _fields(request)
        quantity = _need(_whole(fields, "quantity", low=1, high=999), "quantity")
        title = _text(fields, "title", required=True, longest=MAX_TITLE)
        description = _text(fields, "description", required=True)
        price = _need(_price(fields, "price"), "price")
        who_made = _choice(fields, "who_made", WHO_MADE, required=True)
        when_made = _choice(fields, "when_made", WHEN_MADE, required=True)
        taxonomy_id = _whole(fields, "taxonomy_id", required=True, low=1)
        listing_type = _choice(fields, "type", frozenset({"physical", "download", "both"})) or "physical"
        physical = listing_type != "download"
        shipping_profile_id = self._shipping_profile(shop, fields, required=physical)
        readiness_state_id = self._readiness_state(shop, fields, required=physical)
        listing_id = 1_000_000_000 + self._new_number()
        now = self._now()
        listing: dict[str, Any] = {
            "listing_id": listing_id,
            "user_id": shop.user_id,
            "shop_id": shop.shop_id,
            "title": title,
            "description": description,
            "state": "draft",
            "creation_timestamp": now,
            "created_timestamp": now,
            "ending_timestamp": now + LISTING_LIFETIME_SECONDS,
            "original_creation_timestamp": now,
            "last_modified_timestamp": now,
            "updated_timestamp": now,
            "state_timestamp": now,
            "quantity": quantity,
            "shop_section_id": None,
            "featured_rank": -1,
            "url": f"https://www.etsy.com/listing/{listing_id}/{_slug(str(title))}",
            "num_favorers": 0,
            "is_taxable": True,
            "listing_type": listing_type,
            "tags": _words(fields, "tags", longest=20),
            "materials": _words(fields, "materials", longest=45),
            "shipping_profile_id": shipping_profile_id,
            "return_policy_id": None,
            "who_made": who_made,
            "when_made": when_made,
            "is_supply": _flag(fields, "is_supply"),
            "should_auto_renew": _flag(fields, "should_auto_renew"),
            "taxonomy_id": taxonomy_id,
            "price": self._money(price),
            "skus": [],
            "has_variations": False,
            "views": 0,
        }
        self._listings[listing_id] = listing
        self._images[listing_id] = []
        offering = {"quantity": quantity, "is_enabled": True, "price": self._money(price)}
        if readiness_state_id is not None:
            offering["readiness_state_id"] = readiness_state_id
        self._store_inventory(listing_id, [{"sku": "", "property_values": [], "offerings": [offering]}])
        return Reply(201, copy.deepcopy(listing))

    def _get_listing(self, request: Request, listing_id: str) -> Reply:
        self._caller_if_any(request)
        return Reply(200, self._with_includes(self._listing(listing_id), _includes(request)))

    def _listings_of_shop(self, request: Request, shop_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "listings_r")
        state = _choice(request.args.to_dict(), "state", LISTING_STATES) or "active"
        limit, offset = _page(request)
        includes = _includes(request)
        found = [
            listing
            for listing in sorted(self._listings.values(), key=lambda one: one["listing_id"], reverse=True)
            if listing["shop_id"] == shop.shop_id and listing["state"] == state
        ]
        page = [self._with_includes(listing, includes) for listing in found[offset : offset + limit]]
        return Reply(200, {"count": len(found), "results": page})

    def _with_includes(self, listing: dict[str, Any], includes: set[str]) -> dict[str, Any]:
        """A copy of the listing with what `includes` asks (Images, Inventory; the others are not kept here)."""
        shown = copy.deepcopy(listing)
        if "Images" in includes:
            shown["images"] = copy.deepcopy(self._images.get(listing["listing_id"], []))
        if "Inventory" in includes:
            shown["inventory"] = copy.deepcopy(self._inventories.get(listing["listing_id"]))
        return shown

    def _update_listing(self, request: Request, shop_id: str, listing_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "listings_w")
        listing = self._own_listing(shop, listing_id)
        fields = _fields(request)
        changes: dict[str, Any] = {
            "title": _text(fields, "title", longest=MAX_TITLE),
            "description": _text(fields, "description"),
            "who_made": _choice(fields, "who_made", WHO_MADE),
            "when_made": _choice(fields, "when_made", WHEN_MADE),
            "taxonomy_id": _whole(fields, "taxonomy_id", low=1),
            "shipping_profile_id": self._shipping_profile(shop, fields, required=False),
        }
        for name, longest in (("tags", 20), ("materials", 45)):
            if name in fields:
                changes[name] = _words(fields, name, longest=longest)
        for name in ("is_supply", "should_auto_renew"):
            if name in fields:
                changes[name] = _flag(fields, name)
        state = _choice(fields, "state", frozenset({"active", "inactive"}))
        merged = {**listing, **{name: value for name, value in changes.items() if value is not None}}
        if state == "active" and listing["state"] != "active":
            self._check_activation(merged)
        if state == "inactive" and listing["state"] == "draft":
            raise _refusal(400, "A draft listing can only be made active")
        now = self._now()
        listing.update(merged, last_modified_timestamp=now, updated_timestamp=now)
        if state is not None and state != listing["state"]:
            if state == "active":  # Etsy charges a listing fee each time a listing goes live
                self.activation_fees[listing["listing_id"]] += 1
                listing["ending_timestamp"] = now + LISTING_LIFETIME_SECONDS
            listing["state"], listing["state_timestamp"] = state, now
        return Reply(200, copy.deepcopy(listing))

    def _check_activation(self, listing: dict[str, Any]) -> None:
        if not self._images.get(listing["listing_id"]):
            raise _refusal(400, "A listing needs at least one image to be active")
        if listing["quantity"] < 1:
            raise _refusal(400, "A listing needs a quantity of at least 1 to be active")
        if listing["listing_type"] != "download" and listing.get("shipping_profile_id") is None:
            raise _refusal(400, "A physical listing needs a shipping_profile_id to be active")

    def _delete_listing(self, request: Request, listing_id: str) -> Reply:
        shop = self._caller(request, "listings_d")
        listing = self._own_listing(shop, listing_id)
        key = listing["listing_id"]
        for image in self._images.pop(key, []):
            self._image_bytes.pop(image["listing_image_id"], None)
        del self._listings[key]
        self._inventories.pop(key, None)
        return Reply(204)

    # inventory --------------------------------------------------------------------------------------

    def _get_inventory(self, request: Request, listing_id: str) -> Reply:
        shop = self._caller(request, "listings_r")
        listing = self._own_listing(shop, listing_id)
        return Reply(200, copy.deepcopy(self._inventories[listing["listing_id"]]))

    def _update_inventory(self, request: Request, listing_id: str) -> Reply:
        shop = self._caller(request, "listings_w")
        listing = self._own_listing(shop, listing_id)
        body = json_body(request)
        products = body.get("products") if isinstance(body, dict) else None
        if not isinstance(products, list) or not products:
            raise _refusal(400, "products must be a non-empty array")
        cleaned = [self._product(product) for product in products]
        enabled = [offering for product in cleaned for offering in product["offerings"] if offering["is_enabled"]]
        if not any(offering["quantity"] > 0 for offering in enabled):
            raise _refusal(400, "At least one enabled offering must have a quantity greater than 0")
        self._store_inventory(listing["listing_id"], cleaned, body)
        now = self._now()
        listing.update(
            quantity=sum(offering["quantity"] for offering in enabled),
            price=min((offering["price"] for offering in enabled), key=lambda money: money["amount"]),
            skus=[product["sku"] for product in cleaned if product["sku"]],
            has_variations=len(cleaned) > 1,
            last_modified_timestamp=now,
            updated_timestamp=now,
        )
        return Reply(200, copy.deepcopy(self._inventories[listing["listing_id"]]))

    def _product(self, product: Any) -> dict[str, Any]:
        if not isinstance(product, dict):
            raise _refusal(400, "each product must be an object")
        offerings = product.get("offerings")
        if not isinstance(offerings, list) or not offerings:
            raise _refusal(400, "each product needs a non-empty offerings array")
        cleaned = []
        for offering in offerings:
            fields = offering if isinstance(offering, dict) else {}
            price = _need(_price(fields, "price"), "price")
            one = {
                "quantity": _whole(fields, "quantity", required=True, low=0, high=999),
                "is_enabled": fields.get("is_enabled", True) is not False,
                "price": self._money(price),
            }
            if "readiness_state_id" in fields:
                one["readiness_state_id"] = fields["readiness_state_id"]
            cleaned.append(one)
        sku = product.get("sku") or ""
        if not isinstance(sku, str) or len(sku) > 32:
            raise _refusal(400, "sku must be a string of at most 32 characters")
        values = product.get("property_values") or []
        return {"sku": sku, "property_values": values, "offerings": cleaned}

    def _store_inventory(
        self, listing_id: int, products: list[dict[str, Any]], body: dict[str, Any] | None = None
    ) -> None:
        stored = []
        for product in products:
            offerings = [
                {"offering_id": 6_000_000_000 + self._new_number(), "is_deleted": False, **offering}
                for offering in product["offerings"]
            ]
            number = 5_000_000_000 + self._new_number()
            stored.append({"product_id": number, "is_deleted": False, **product, "offerings": offerings})
        options = body or {}
        self._inventories[listing_id] = {
            "products": stored,
            "price_on_property": options.get("price_on_property", []),
            "quantity_on_property": options.get("quantity_on_property", []),
            "sku_on_property": options.get("sku_on_property", []),
            "listing": None,
        }

    def _take_from_stock(self, listing_id: int, quantity: int) -> dict[str, Any]:
        """Lower the enabled offerings' quantities by `quantity`; the first one touched (for its price)."""
        offerings = [
            offering
            for product in self._inventories[listing_id]["products"]
            for offering in product["offerings"]
            if offering["is_enabled"] and offering["quantity"] > 0
        ]
        left = quantity
        for offering in offerings:
            taken = min(left, offering["quantity"])
            offering["quantity"] -= taken
            left -= taken
        first: dict[str, Any] = offerings[0]
        return first

    # images -----------------------------------------------------------------------------------------

    def _upload_image(self, request: Request, shop_id: str, listing_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "listings_w")
        listing = self._own_listing(shop, listing_id)
        upload = request.files.get("image")
        content = upload.read() if upload is not None else b""
        if not content:
            raise _refusal(400, "image is required: a multipart/form-data file part named image")
        if not content.startswith(_IMAGE_SIGNATURES):
            raise _refusal(400, "The image must be a JPEG, PNG or GIF file")
        images = self._images[listing["listing_id"]]
        rank = _whole(request.form.to_dict(), "rank", low=1, high=MAX_IMAGES) or 1
        if _flag(request.form.to_dict(), "overwrite") and rank <= len(images):
            self._image_bytes.pop(images.pop(rank - 1)["listing_image_id"], None)
        if len(images) >= MAX_IMAGES:
            raise _refusal(400, f"A listing has at most {MAX_IMAGES} images")
        image_id = 3_000_000_000 + self._new_number()
        width, height = _png_size(content)
        base = f"https://i.etsystatic.com/{shop.shop_id}/r/il/{hashlib.sha256(content).hexdigest()[:6]}/{image_id}"
        image = {
            "listing_id": listing["listing_id"],
            "listing_image_id": image_id,
            "hex_code": None,
            "creation_tsz": self._now(),
            "created_timestamp": self._now(),
            "rank": rank,
            "url_75x75": f"{base}/il_75x75.{image_id}.jpg",
            "url_170x135": f"{base}/il_170x135.{image_id}.jpg",
            "url_570xN": f"{base}/il_570xN.{image_id}.jpg",
            "url_fullxfull": f"{base}/il_fullxfull.{image_id}.jpg",
            "full_height": height,
            "full_width": width,
            "alt_text": request.form.get("alt_text"),
        }
        images.insert(rank - 1, image)
        for position, one in enumerate(images, 1):
            one["rank"] = position
        self._image_bytes[image_id] = content
        return Reply(201, copy.deepcopy(image))

    def _get_images(self, request: Request, listing_id: str) -> Reply:
        self._caller_if_any(request)
        listing = self._listing(listing_id)
        return Reply(200, _results(copy.deepcopy(self._images[listing["listing_id"]])))

    def _delete_image(self, request: Request, shop_id: str, listing_id: str, image_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "listings_w")
        listing = self._own_listing(shop, listing_id)
        images = self._images[listing["listing_id"]]
        kept = [image for image in images if str(image["listing_image_id"]) != image_id]
        if len(kept) == len(images):
            raise _refusal(404, f"Image {image_id} not found on listing {listing_id}")
        self._image_bytes.pop(int(image_id), None)
        for position, image in enumerate(kept, 1):
            image["rank"] = position
        self._images[listing["listing_id"]] = kept
        return Reply(204)

    # receipts ---------------------------------------------------------------------------------------

    def _receipts_of_shop(self, request: Request, shop_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "transactions_r")
        query = request.args.to_dict()
        bounds = {name: _whole(query, name, low=0) for name in ("min_created", "max_created")}
        bounds |= {name: _whole(query, name, low=0) for name in ("min_last_modified", "max_last_modified")}
        sort_on = _choice(query, "sort_on", frozenset({"created", "updated", "receipt_id"})) or "created"
        descending = _choice(query, "sort_order", frozenset({"asc", "desc", "ascending", "descending"})) or "desc"
        limit, offset = _page(request)
        key = {"created": "create_timestamp", "updated": "update_timestamp", "receipt_id": "receipt_id"}[sort_on]

        def wanted(receipt: dict[str, Any]) -> bool:
            created, updated = receipt["create_timestamp"], receipt["update_timestamp"]
            return (
                receipt["shop_id"] == shop.shop_id
                and (bounds["min_created"] is None or created >= bounds["min_created"])
                and (bounds["max_created"] is None or created <= bounds["max_created"])
                and (bounds["min_last_modified"] is None or updated >= bounds["min_last_modified"])
                and (bounds["max_last_modified"] is None or updated <= bounds["max_last_modified"])
            )

        found = sorted(
            (receipt for receipt in self._receipts.values() if wanted(receipt)),
            key=lambda receipt: (receipt[key], receipt["receipt_id"]),
            reverse=descending.startswith("desc"),
        )
        return Reply(200, {"count": len(found), "results": copy.deepcopy(found[offset : offset + limit])})

    def _receipt(self, request: Request, shop_id: str, receipt_id: str) -> Reply:
        shop = self._own_shop(request, shop_id, "transactions_r")
        receipt = self._receipts.get(int(receipt_id)) if receipt_id.isdigit() else None
        if receipt is None or receipt["shop_id"] != shop.shop_id:
            raise _refusal(404, f"Receipt {receipt_id} not found")
        return Reply(200, copy.deepcopy(receipt))

    # state ------------------------------------------------------------------------------------------

    def _shop(self, account: str) -> _Shop:
        """The account's user and shop, seeded on first sight with stable ids, two shipping profiles and
        two readiness states (ready to ship first)."""
        shop = self._shops.get(account)
        if shop is None:
            user_id, shop_id = _stable_number(account, "user", 8), _stable_number(account, "shop", 8)
            shop = _Shop(
                account,
                user_id,
                shop_id,
                shipping_profiles=[
                    {
                        "shipping_profile_id": _stable_number(account, f"shipping-{number}", 12),
                        "title": title,
                        "user_id": user_id,
                        "min_processing_days": low,
                        "max_processing_days": high,
                        "origin_country_iso": "GB",
                        "is_deleted": False,
                        "profile_type": "manual",
                    }
                    for number, (title, low, high) in enumerate([("Royal Mail 2nd Class", 1, 3), ("Tracked 24", 1, 1)])
                ],
                readiness_states=[
                    {
                        "shop_id": shop_id,
                        "readiness_state_id": _stable_number(account, f"readiness-{state}", 12),
                        "readiness_state": state,
                        "min_processing_time": low,
                        "max_processing_time": high,
                        "processing_time_unit": "days",
                    }
                    for state, low, high in [("ready_to_ship", 1, 3), ("made_to_order", 5, 10)]
                ],
            )
            self._shops[account] = shop
        return shop

    def _caller_if_any(self, request: Request) -> None:
        """A public endpoint: a token is not needed, but one sent is checked."""
        if bearer_token(request) is not None:
            self._caller(request, None)

    def _listing(self, listing_id: str) -> dict[str, Any]:
        listing = self._listings.get(int(listing_id)) if listing_id.isdigit() else None
        if listing is None:
            raise _refusal(404, f"Listing {listing_id} not found")
        return listing

    def _shipping_profile(self, shop: _Shop, fields: dict[str, Any], *, required: bool) -> int | None:
        profile = _whole(fields, "shipping_profile_id", required=required, low=1)
        if profile is not None and profile not in {p["shipping_profile_id"] for p in shop.shipping_profiles}:
            raise _refusal(400, f"shipping_profile_id {profile} is not a shipping profile of this shop")
        return profile

    def _readiness_state(self, shop: _Shop, fields: dict[str, Any], *, required: bool) -> int | None:
        state = _whole(fields, "readiness_state_id", required=required, low=1)
        if state is not None and state not in {s["readiness_state_id"] for s in shop.readiness_states}:
            raise _refusal(400, f"readiness_state_id {state} is not a readiness state of this shop")
        return state

    def _money(self, price: Decimal) -> dict[str, Any]:
        return {"amount": int(price * 100), "divisor": 100, "currency_code": self.currency}

    def _new_number(self) -> int:
        return next(self._ids)

    def _now(self) -> int:
        return int(self.clock().timestamp())

    def _new_receipt(self, listing: dict[str, Any], offering: dict[str, Any], quantity: int, buyer: str) -> int:
        receipt_id = 2_000_000_000 + self._new_number()
        price = offering["price"]
        total = {**price, "amount": price["amount"] * quantity}
        now = self._now()
        buyer_user_id = _stable_number(buyer, "buyer", 9)
        self._receipts[receipt_id] = {
            "receipt_id": receipt_id,
            "receipt_type": 0,
            "shop_id": listing["shop_id"],
            "seller_user_id": listing["user_id"],
            "buyer_user_id": buyer_user_id,
            "name": buyer,
            "status": "paid",
            "is_paid": True,
            "is_shipped": False,
            "create_timestamp": now,
            "created_timestamp": now,
            "update_timestamp": now,
            "updated_timestamp": now,
            "grandtotal": total,
            "subtotal": total,
            "total_price": total,
            "transactions": [
                {
                    "transaction_id": 4_000_000_000 + self._new_number(),
                    "title": listing["title"],
                    "seller_user_id": listing["user_id"],
                    "buyer_user_id": buyer_user_id,
                    "create_timestamp": now,
                    "created_timestamp": now,
                    "receipt_id": receipt_id,
                    "listing_id": listing["listing_id"],
                    "quantity": quantity,
                    "sku": next(iter(listing["skus"]), ""),
                    "price": price,
                }
            ],
        }
        return receipt_id


# helpers --------------------------------------------------------------------------------------------


def _by_text_key[T](table: dict[int, T]) -> dict[str, T]:
    """A table keyed by numeric ids as JSON keeps it."""
    return {str(key): value for key, value in table.items()}


def _by_number_key[T](table: dict[str, T]) -> dict[int, T]:
    return {int(key): value for key, value in table.items()}


def _refusal(status: int, message: str, **extra: str) -> Refusal:
    return Refusal(Reply(status, {"error": message, **extra}))


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _results(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(items), "results": items}


def _fields(request: Request) -> dict[str, Any]:
    """The body's fields: JSON, or a form (Etsy's own examples post forms)."""
    if request.mimetype == "application/json":
        body = json_body(request)
        if not isinstance(body, dict):
            raise _refusal(400, "The request body must be a JSON object")
        return body
    fields: dict[str, Any] = {}
    for name in request.form:
        values = request.form.getlist(name)
        fields[name.removesuffix("[]")] = values if len(values) > 1 or name.endswith("[]") else values[0]
    return fields


def _missing(name: str) -> Refusal:
    return _refusal(400, f"Missing required parameter: {name}")


def _need[T](value: T | None, name: str) -> T:
    if value is None:
        raise _missing(name)
    return value


def _text(fields: dict[str, Any], name: str, *, required: bool = False, longest: int | None = None) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str) or not value.strip():
        raise _refusal(400, f"Invalid parameter {name}: a non-empty string is expected")
    if longest is not None and len(value) > longest:
        raise _refusal(400, f"Invalid parameter {name}: at most {longest} characters")
    return value


def _whole(
    fields: dict[str, Any], name: str, *, required: bool = False, low: int | None = None, high: int | None = None
) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        number = int(value)
    if number is None or (low is not None and number < low) or (high is not None and number > high):
        limits = f" from {low}" if low is not None else ""
        limits += f" to {high}" if high is not None else ""
        raise _refusal(400, f"Invalid parameter {name}: a whole number{limits} is expected")
    return number


def _price(fields: dict[str, Any], name: str) -> Decimal | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value)) if not isinstance(value, bool) else Decimal("NaN")
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price < Decimal("0.20") or price > Decimal("50000"):
        raise _refusal(400, f"Invalid parameter {name}: a price from 0.20 to 50000 is expected")
    return price.quantize(Decimal("0.01"))


def _choice(fields: dict[str, Any], name: str, allowed: frozenset[str], *, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise _missing(name)
        return None
    if value not in allowed:
        raise _refusal(400, f"Invalid parameter {name}: one of {', '.join(sorted(allowed))} is expected")
    return str(value)


def _words(fields: dict[str, Any], name: str, *, longest: int) -> list[str]:
    """Tags or materials: 13 at most, each of `longest` characters at most."""
    value = fields.get(name) or []
    words = value.split(",") if isinstance(value, str) else [str(word) for word in value]
    kept = [word.strip() for word in words if word.strip()]
    if len(kept) > 13 or any(len(word) > longest for word in kept):
        raise _refusal(400, f"Invalid parameter {name}: at most 13, each of at most {longest} characters")
    return kept


def _flag(fields: dict[str, Any], name: str) -> bool:
    value = fields.get(name)
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _page(request: Request) -> tuple[int, int]:
    query = request.args.to_dict()
    limit = _whole(query, "limit", low=1, high=100) or 25
    offset = _whole(query, "offset", low=0) or 0
    return limit, offset


def _includes(request: Request) -> set[str]:
    """What `includes` asks for, comma-separated or repeated, in Etsy's spelling (Images, Inventory…)."""
    spelled = {name.lower(): name for name in INCLUDES}
    asked = (part.strip().lower() for value in request.args.getlist("includes") for part in value.split(","))
    return {spelled[part] for part in asked if part in spelled}


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "listing"


def _png_size(content: bytes) -> tuple[int | None, int | None]:
    if content.startswith(_IMAGE_SIGNATURES[0]) and len(content) >= 24:
        return int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
    return None, None


def _stable_number(account: str, kind: str, digits: int) -> int:
    """The same id for the same account and kind in every run (seeded users, shops, profiles)."""
    digest = int(hashlib.sha256(f"{account}/{kind}".encode()).hexdigest()[:15], 16)
    low: int = 10 ** (digits - 1)
    return low + digest % (9 * low)
