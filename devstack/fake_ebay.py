"""The one fake of eBay: OAuth (consent, token endpoint) and the Sell APIs crosslist uses (Inventory,
Account, Fulfillment), with the shapes and rules of the real ones as far as crosslist relies on them.

    with FakeEbay() as ebay:                      # or the `fake_ebay` pytest fixture, or the devstack's
        CROSSLIST_EBAY_API_BASE = ebay.base_url
        CROSSLIST_EBAY_OAUTH_TOKEN_URL = ebay.base_url + TOKEN_PATH
        CROSSLIST_EBAY_AUTHORIZE_URL = ebay.base_url + AUTHORIZE_PATH

What it holds to, like eBay: the app authenticates to the token endpoint with HTTP Basic; codes are single
use; refresh tokens are not rotated (a refresh answers no refresh_token); every /sell call needs a valid
user token with the API's scope; inventory items and offers need `Content-Language`; one offer per SKU,
marketplace and format (a second createOffer names the first); a listing is created once per offer
(withdraw ends it, publishing again brings the same listingId back); a listing is revised at most
`max_revisions_per_day` times a day; getOffers on a SKU without offers is a 404 (25713). Errors have eBay's
shape: {"errors": [{errorId, domain, category, message, longMessage?, parameters?}]}.

It pushes as eBay does: the app's own token (client credentials) reads the Notification API's public keys and
manages its destinations (a destination's endpoint must answer eBay's challenge when it is created); a seller's
token reads the Commerce Identity API (`userId`, `username`) and manages the seller's subscriptions. A sale
(`sell`, POST SELL_PATH) POSTs a signed ORDER_CONFIRMATION to each destination the seller is subscribed to;
`delete_account` POSTs a signed MARKETPLACE_ACCOUNT_DELETION to the app's account deletion endpoint (set on the
fake as in eBay's developer portal). Signed like eBay: ECDSA P-256 over the body, SHA-1, the X-EBAY-SIGNATURE
header naming the key's id; delivered outside the fake's lock, retried when refused (devstack.fake_http.PushSender).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import io
import json
import secrets
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape, quoteattr

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.wrappers import Request

from devstack.fake_http import (
    SEED_SHOP_PATH,
    SELL_PATH,
    Clock,
    Consent,
    FakeServer,
    Push,
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
from devstack.shops import EbayListing, shop_request

TOKEN_PATH = "/identity/v1/oauth2/token"
AUTHORIZE_PATH = "/oauth2/authorize"
SCOPE_ROOT = "https://api.ebay.com/oauth/api_scope"
# What crosslist asks for: the base scope and the three Sell APIs it calls.
EBAY_SCOPES = (
    SCOPE_ROOT,
    f"{SCOPE_ROOT}/sell.inventory",
    f"{SCOPE_ROOT}/sell.account",
    f"{SCOPE_ROOT}/sell.fulfillment",
    f"{SCOPE_ROOT}/commerce.identity.readonly",
    f"{SCOPE_ROOT}/commerce.notification.subscription",
)
_KNOWN_SCOPES = frozenset(EBAY_SCOPES) | {f"{scope}.readonly" for scope in EBAY_SCOPES[1:]}
ACCESS_TOKEN_SECONDS = 7200
REFRESH_TOKEN_SECONDS = 47_304_000  # 18 months
MAX_REVISIONS_PER_DAY = 250
MAX_BULK_REQUESTS = 25
MARKETPLACES = frozenset({"EBAY_GB", "EBAY_US", "EBAY_DE", "EBAY_FR", "EBAY_IT", "EBAY_ES", "EBAY_AU", "EBAY_CA"})
LANGUAGES = frozenset({"en-US", "en-GB", "en-AU", "en-CA", "de-DE", "fr-FR", "fr-CA", "it-IT", "es-ES", "nl-NL"})
CONDITIONS = frozenset(
    {
        "NEW",
        "LIKE_NEW",
        "NEW_OTHER",
        "NEW_WITH_DEFECTS",
        "CERTIFIED_REFURBISHED",
        "SELLER_REFURBISHED",
        "USED_EXCELLENT",
        "USED_VERY_GOOD",
        "USED_GOOD",
        "USED_ACCEPTABLE",
        "PRE_OWNED_EXCELLENT",
        "PRE_OWNED_FAIR",
        "FOR_PARTS_OR_NOT_WORKING",
    }
)
_OFFER_KEYS = frozenset({"sku", "marketplaceId", "format"})  # fixed once the offer exists
NOTIFICATION = "/commerce/notification/v1"
IDENTITY_PATH = "/commerce/identity/v1/user/"
# The devstack's control route for `crosslist dev ebay-delete-account` (what a seller does on eBay's site).
DELETE_ACCOUNT_PATH = "/__fake/ebay/delete-account"
APP = ""  # whose the app's own token is (client credentials): no seller's
TOPICS = frozenset({"ORDER_CONFIRMATION", "ITEM_MARKED_SHIPPED", "MARKETPLACE_ACCOUNT_DELETION"})
USER_TOPICS = frozenset({"ORDER_CONFIRMATION", "ITEM_MARKED_SHIPPED"})  # subscribed per seller, with its token
FEED = "/sell/feed/v1"
ACTIVE_INVENTORY_REPORT = "LMS_ACTIVE_INVENTORY_REPORT"
MAX_FEED_TASKS_PER_DAY = 25  # ActiveInventoryReport tasks a seller may create in 24 hours
MAX_MIGRATIONS = 5  # listings per bulkMigrateListing
BROWSE_ITEM = "/buy/browse/v1/item"
# eBay's text and id for an item's ConditionEnum, as the Browse API shows them.
BROWSE_CONDITIONS = {
    "NEW": ("New with tags", "1000"),
    "NEW_OTHER": ("New without tags", "1500"),
    "NEW_WITH_DEFECTS": ("New with defects", "1750"),
    "USED_EXCELLENT": ("Pre-owned - Excellent", "3000"),
    "USED_VERY_GOOD": ("Pre-owned - Good", "3000"),
    "USED_GOOD": ("Pre-owned - Fair", "3000"),
}


@dataclass
class _Seller:
    account: str
    payment_policies: list[dict[str, Any]]
    fulfillment_policies: list[dict[str, Any]]
    return_policies: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    inventory: dict[str, dict[str, Any]] = field(default_factory=dict)  # sku -> inventory item
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)  # offerId -> offer (without status)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # orderId -> order
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # subscriptionId -> subscription
    # Listings made on ebay.com, outside the Inventory API (listingId -> listing), until migrated.
    outside: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # inventoryItemGroupKey -> group
    feed_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # taskId -> Sell Feed task
    seeded: dict[str, str] = field(default_factory=dict)  # devstack.shops key -> listingId


@dataclass
class _Listing:
    listing_id: str
    account: str
    offer_id: str
    status: str  # ACTIVE | OUT_OF_STOCK | ENDED
    sold_quantity: int = 0
    group_offer_ids: list[str] = field(default_factory=list)  # an item group's listing: its other variations' offers


class FakeEbay(FakeServer):
    token_path = TOKEN_PATH

    def __init__(
        self,
        client_id: str = "crosslist-fake-ebay",
        client_secret: str | None = None,
        *,
        redirects: dict[str, str] | None = None,
        marketplace_id: str = "EBAY_GB",
        currency: str = "GBP",
        clock: Clock = utc_now,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)  # no secret written in a file
        self.redirects: dict[str, str] = dict(redirects or {})  # RuName -> where eBay sends the user back
        self.marketplace_id = marketplace_id  # where the seeded policies are
        self.currency = currency
        super().__init__(clock)
        self.forget_state()

    def forget_state(self) -> None:
        self._tokens = TokenBook(self.clock, ACCESS_TOKEN_SECONDS)
        self._sellers: dict[str, _Seller] = {}
        self._listings: dict[str, _Listing] = {}
        self._ids = IdSequence(unique=True)  # never an id of an earlier run: crosslist's database outlives the fake
        self._signing_keys: dict[str, ec.EllipticCurvePrivateKey] = {}  # kid -> eBay's notification key
        self.signing_key_id = self.rotate_signing_key()
        self._destinations: dict[str, dict[str, Any]] = {}  # destinationId -> destination
        # The app's account deletion endpoint, as registered in eBay's developer portal (None: none is).
        self.account_deletion_endpoint: str | None = None
        self.revisions: Counter[str] = Counter()  # listingId -> revisions today
        self._revision_day: date | None = None
        self.max_revisions_per_day = MAX_REVISIONS_PER_DAY
        self._refused: dict[str, tuple[str, int, str]] = {}  # sku -> (call, errorId, message): refuse_sku
        # A Sell Feed task answers QUEUED to its first poll, IN_PROCESS to the next ones, COMPLETED after this many
        # polls and once `feed_task_seconds` have passed since it was created.
        self.feed_task_polls = 2
        self.feed_task_seconds = 0.0

    # control for tests ------------------------------------------------------------------------------

    def refuse_sku(self, sku: str, message: str, *, at: str = "publish", error_id: int = 25005) -> None:
        """eBay refuses the SKU from now on (until reset) at `at`: "inventory_item" (saving it), "offer" (creating
        its offer) or "publish" (publishing it), singly or in bulk, with `message` (errorId `error_id`), as eBay
        refuses an item whose category or data it does not accept."""
        if at not in ("inventory_item", "offer", "publish"):
            raise ValueError(f"refuse_sku at {at!r}: inventory_item, offer or publish")
        with self._lock:
            self._refused[sku] = (at, error_id, message)

    def issue_code(
        self, account: str = "dev", *, scopes: tuple[str, ...] = EBAY_SCOPES, redirect_uri: str | None = None
    ) -> str:
        """An authorization code for `account`, as if its seller had consented in a browser (the exchange
        checks `redirect_uri` only when given)."""
        with self._lock:
            self._seller(account)
            return self._tokens.new_code(Consent(account, frozenset(scopes)), redirect_uri)

    def issue_tokens(self, account: str = "dev", *, scopes: tuple[str, ...] = EBAY_SCOPES) -> dict[str, Any]:
        """What the token endpoint answers a code exchange, without a request (not counted in token_calls)."""
        with self._lock:
            self._seller(account)
            return self._new_tokens(Consent(account, frozenset(scopes)))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on."""
        with self._lock:
            self._tokens.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused (400 invalid_grant) from now on."""
        with self._lock:
            self._tokens.revoke_refresh_tokens()

    def listing_policies(self, account: str = "dev") -> dict[str, str]:
        """The account's first policy of each kind, as an offer's listingPolicies."""
        with self._lock:
            seller = self._seller(account)
            return {
                "paymentPolicyId": seller.payment_policies[0]["paymentPolicyId"],
                "fulfillmentPolicyId": seller.fulfillment_policies[0]["fulfillmentPolicyId"],
                "returnPolicyId": seller.return_policies[0]["returnPolicyId"],
            }

    def merchant_location_key(self, account: str = "dev") -> str:
        with self._lock:
            return str(self._seller(account).locations[0]["merchantLocationKey"])

    def inventory(self, account: str = "dev") -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._seller(account).inventory)

    def offers(self, account: str = "dev") -> list[dict[str, Any]]:
        with self._lock:
            return [self._offer_view(offer) for offer in self._seller(account).offers.values()]

    def listings(self, account: str = "dev") -> list[dict[str, Any]]:
        """Every listing the account's offers created (ended ones too), with today's revisions."""
        with self._lock:
            seller = self._seller(account)
            found = []
            for listing in self._listings.values():
                if listing.account != account:
                    continue
                offer = seller.offers[listing.offer_id]
                found.append(
                    {
                        "listingId": listing.listing_id,
                        "offerId": listing.offer_id,
                        "sku": offer["sku"],
                        "marketplaceId": offer["marketplaceId"],
                        "listingStatus": listing.status,
                        "title": seller.inventory[offer["sku"]]["product"]["title"],
                        "availableQuantity": self._available(seller, offer),
                        "soldQuantity": listing.sold_quantity,
                        "price": copy.deepcopy(offer.get("pricingSummary", {}).get("price")),
                        "revisions": self.revisions[listing.listing_id],
                    }
                )
            return found

    def orders(self, account: str = "dev") -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._seller(account).orders.values()))

    def sell(self, listing_id: str, quantity: int = 1, buyer: str = "buyer1", account: str | None = None) -> str:
        """A buyer buys `quantity` of an active listing: an order (its orderId is returned), and the offer's
        and inventory item's quantities go down; at 0 the listing is OUT_OF_STOCK. A listing made on ebay.com
        (seed_shop) sells the same way, its order naming it by legacyItemId; an item group's sells its first
        variation in stock."""
        with self._lock:
            seller, order_id = self._sale(str(listing_id), quantity, buyer, account)
            order = seller.orders[order_id]
            pushes = [
                (self._destinations[sub["destinationId"]]["deliveryConfig"]["endpoint"], line)
                for sub in seller.subscriptions.values()
                if sub["topicId"] == "ORDER_CONFIRMATION"
                and sub["status"] == "ENABLED"
                and self._destinations.get(sub["destinationId"], {}).get("status") == "ENABLED"
                for line in order["lineItems"]  # one notification per line item, as eBay sends
            ]
            messages = [
                (url, self._notification("ORDER_CONFIRMATION", _order_confirmation(seller.account, order, line)))
                for url, line in pushes
            ]
        for url, message in messages:  # delivered outside the lock, each in a thread of its own
            self._push(url, "ORDER_CONFIRMATION", message)
        return order_id

    def user_id(self, account: str = "dev") -> str:
        """The account's immutable eBay user id (as the Identity API and notifications give it)."""
        return _user_id(account)

    def rotate_signing_key(self) -> str:
        """A new key signs the notifications from now on (the old ones are still served); its id."""
        with self._lock:
            kid = str(uuid.uuid4())
            self._signing_keys[kid] = ec.generate_private_key(ec.SECP256R1())
            self.signing_key_id = kid
            return kid

    def destinations(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._destinations.values()))

    def disable_subscriptions(self, account: str = "dev") -> None:
        """The seller's subscriptions are disabled (as `disable_subscription` would): its sales are pushed no more,
        so only polling finds them (the bench's polling path)."""
        with self._lock:
            for subscription in self._seller(account).subscriptions.values():
                subscription["status"] = "DISABLED"

    def subscriptions(self, account: str = "dev") -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._seller(account).subscriptions.values()))

    def delete_account(self, account: str) -> Push | None:
        """The seller closes their eBay account and asks for their data to be deleted: a signed
        MARKETPLACE_ACCOUNT_DELETION to the app's account deletion endpoint (None when none is registered)."""
        with self._lock:
            if self.account_deletion_endpoint is None:
                return None
            eias = base64.b64encode(hashlib.sha256(f"{account}/eias".encode()).digest()[:30]).decode()
            data = {"username": account, "userId": _user_id(account), "eiasToken": eias}
            url = self.account_deletion_endpoint
            message = self._notification("MARKETPLACE_ACCOUNT_DELETION", data)
        return self._push(url, "MARKETPLACE_ACCOUNT_DELETION", message)

    def sign(self, body: bytes, kid: str | None = None) -> str:
        """The X-EBAY-SIGNATURE eBay sends with `body` (signed with the key `kid`, by default the current one)."""
        with self._lock:
            kid = kid or self.signing_key_id
            signature = self._signing_keys[kid].sign(body, ec.ECDSA(hashes.SHA1()))  # SHA-1: eBay's choice
        header = {"alg": "ecdsa", "kid": kid, "signature": base64.b64encode(signature).decode(), "digest": "SHA1"}
        return base64.b64encode(json.dumps(header).encode()).decode()

    def state(self) -> dict[str, Any]:
        """What `restore` brings back in another run: sellers (inventory, offers, orders, subscriptions), listings,
        destinations, the notification signing keys and the last id handed out. Not the tokens: the devstack asks
        its users to connect again after a restart."""
        with self._lock:
            return {
                "sellers": [dataclasses.asdict(seller) for seller in self._sellers.values()],
                "listings": [dataclasses.asdict(listing) for listing in self._listings.values()],
                "destinations": list(self._destinations.values()),
                "signing_keys": {kid: _private_pem(key) for kid, key in self._signing_keys.items()},
                "signing_key_id": self.signing_key_id,
                "last_id": self._ids.last,
            }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what `state` gave (on a fake that has not been used yet)."""
        with self._lock:
            for seller in state.get("sellers", []):
                self._sellers[seller["account"]] = _Seller(**seller)
            for listing in state.get("listings", []):
                self._listings[listing["listing_id"]] = _Listing(**listing)
            for destination in state.get("destinations", []):
                self._destinations[destination["destinationId"]] = destination
            for kid, pem in state.get("signing_keys", {}).items():
                key = serialization.load_pem_private_key(pem.encode(), password=None)
                if isinstance(key, ec.EllipticCurvePrivateKey):
                    self._signing_keys[kid] = key
            if state.get("signing_key_id") in self._signing_keys:
                self.signing_key_id = state["signing_key_id"]
            self._ids.resume_after(int(state.get("last_id", 0)))

    # plumbing ---------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        inventory, account, fulfillment = "/sell/inventory/v1", "/sell/account/v1", "/sell/fulfillment/v1"
        return [
            route("GET", AUTHORIZE_PATH, self._authorize),
            route("POST", TOKEN_PATH, self._token),
            route("PUT", f"{inventory}/inventory_item/{{sku}}", self._put_inventory_item),
            route("GET", f"{inventory}/inventory_item/{{sku}}", self._get_inventory_item),
            route("DELETE", f"{inventory}/inventory_item/{{sku}}", self._delete_inventory_item),
            route("GET", f"{inventory}/inventory_item", self._get_inventory_items),
            route("POST", f"{inventory}/offer", self._create_offer),
            route("GET", f"{inventory}/offer", self._get_offers),
            route("GET", f"{inventory}/offer/{{offer_id}}", self._get_offer),
            route("PUT", f"{inventory}/offer/{{offer_id}}", self._update_offer),
            route("DELETE", f"{inventory}/offer/{{offer_id}}", self._delete_offer),
            route("POST", f"{inventory}/offer/{{offer_id}}/publish", self._publish_offer),
            route("POST", f"{inventory}/offer/{{offer_id}}/withdraw", self._withdraw_offer),
            route("POST", f"{inventory}/bulk_update_price_quantity", self._bulk_update_price_quantity),
            route("POST", f"{inventory}/bulk_create_or_replace_inventory_item", self._bulk_create_inventory_items),
            route("POST", f"{inventory}/bulk_create_offer", self._bulk_create_offers),
            route("POST", f"{inventory}/bulk_publish_offer", self._bulk_publish_offers),
            route("GET", f"{inventory}/location", self._get_locations),
            route("GET", f"{account}/payment_policy", self._policies("payment")),
            route("GET", f"{account}/fulfillment_policy", self._policies("fulfillment")),
            route("GET", f"{account}/return_policy", self._policies("return")),
            route("GET", f"{fulfillment}/order", self._get_orders),
            route("GET", f"{fulfillment}/order/{{order_id}}", self._get_order),
            route("GET", IDENTITY_PATH, self._get_user),
            route("GET", f"{NOTIFICATION}/public_key/{{kid}}", self._get_public_key),
            route("GET", f"{NOTIFICATION}/destination", self._get_destinations),
            route("POST", f"{NOTIFICATION}/destination", self._create_destination),
            route("GET", f"{NOTIFICATION}/subscription", self._get_subscriptions),
            route("POST", f"{NOTIFICATION}/subscription", self._create_subscription),
            route("POST", f"{NOTIFICATION}/subscription/{{subscription_id}}/enable", self._enable_subscription),
            route("POST", f"{NOTIFICATION}/subscription/{{subscription_id}}/disable", self._disable_subscription),
            route("DELETE", f"{NOTIFICATION}/subscription/{{subscription_id}}", self._delete_subscription),
            route("POST", SELL_PATH, self._sell_request),
            route("POST", DELETE_ACCOUNT_PATH, self._delete_account_request),
            # The seller's shop beyond what crosslist made (seed_shop): reading it, and migrating ebay.com listings.
            route("GET", f"{inventory}/inventory_item_group/{{group_key}}", self._get_inventory_item_group),
            route("POST", f"{inventory}/bulk_migrate_listing", self._bulk_migrate_listing),
            route("POST", f"{FEED}/inventory_task", self._create_inventory_task),
            route("GET", f"{FEED}/inventory_task/{{task_id}}", self._get_inventory_task),
            route("GET", f"{FEED}/task/{{task_id}}/download_result_file", self._download_result_file),
            route("GET", f"{BROWSE_ITEM}/get_item_by_legacy_id", self._get_item_by_legacy_id),
            route("POST", SEED_SHOP_PATH, self._seed_shop_request),
        ]

    def error_body(self, path: str, status: int, message: str) -> Any:
        if path == TOKEN_PATH:
            error = {400: "invalid_grant", 401: "invalid_client"}.get(status)
            error = error or ("temporarily_unavailable" if status in (429, 503) else "server_error")
            return {"error": error, "error_description": message}
        if status == 401:
            return _errors(1001, "Invalid access token", domain="OAuth", long_message="Invalid access token.")
        if status == 403:
            return _errors(1100, "Access denied", domain="ACCESS", long_message="Insufficient permissions.")
        if status == 404:
            return _errors(2002, "Resource not found", domain="ACCESS", long_message=message)
        if status == 429:
            message = "Too many requests. The request limit has been reached for the resource."
            return _errors(2001, message, domain="ACCESS")
        if status >= 500:
            return _errors(
                2003,
                "Internal error",
                domain="ACCESS",
                category="APPLICATION",
                long_message="There was a problem with an eBay internal system or process. "
                "Contact eBay developer support for assistance",
            )
        return _errors(2004, "Invalid request", domain="ACCESS", long_message=message)

    def listing_status(self, listing_id: str) -> str | None:
        listing = self._listings.get(listing_id)
        if listing is None:
            outside = self._outside(listing_id)
            return None if outside is None else str(outside[1]["listingStatus"])
        return listing.status

    # OAuth ------------------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Reply:
        """The seller's consent page, consented at once: back to the RuName's URL with a code."""
        query = request.args
        if query.get("client_id") != self.client_id:
            return Reply(400, {"error": "invalid_client", "error_description": "unknown client_id"})
        ru_name = query.get("redirect_uri", "")
        target = self.redirects.get(ru_name) or (ru_name if urlsplit(ru_name).scheme in ("http", "https") else None)
        if target is None:
            return Reply(400, {"error": "invalid_request", "error_description": "redirect_uri is not a RuName"})
        state = query.get("state")
        scopes = frozenset(query.get("scope", "").split())
        if query.get("response_type") != "code":
            return redirect(target, error="unsupported_response_type", state=state)
        if not scopes or not scopes <= _KNOWN_SCOPES:
            return redirect(target, error="invalid_scope", state=state)
        account = query.get("account") or "dev"
        self._seller(account)
        code = self._tokens.new_code(Consent(account, scopes), ru_name)
        return redirect(target, state=state, code=code, expires_in="299")

    def _token(self, request: Request) -> Reply:
        if _basic_credentials(request) != (self.client_id, self.client_secret):
            return Reply(401, {"error": "invalid_client", "error_description": "client authentication failed"})
        form = request.form
        grant = form.get("grant_type")
        if grant == "authorization_code":
            pending = self._tokens.take_code(form.get("code", ""))
            if pending is None:
                return oauth_error(
                    "invalid_grant", "the provided authorization grant code is invalid or was issued to another client"
                )
            if pending.redirect_uri is not None and form.get("redirect_uri") != pending.redirect_uri:
                return oauth_error("invalid_grant", "the redirect_uri does not match the authorization request")
            return Reply(200, self._new_tokens(pending.consent))
        if grant == "refresh_token":
            consent = self._tokens.refresh(form.get("refresh_token", ""))
            if consent is None:
                return oauth_error(
                    "invalid_grant",
                    "the provided authorization refresh token is invalid or was issued to another client",
                )
            wanted = frozenset(form.get("scope", "").split()) or consent.scopes
            if not wanted <= consent.scopes:
                return oauth_error("invalid_scope", "the requested scope exceeds the scope granted by the user")
            access = self._tokens.new_access_token(Consent(consent.account, wanted), "v^1.1#i^1#f^0#p^3#I^3#t^")
            # eBay does not rotate refresh tokens: the same one serves 18 months.
            return Reply(
                200,
                {
                    "access_token": access,
                    "expires_in": self._tokens.access_lifetime_seconds,
                    "token_type": "User Access Token",
                },
            )
        if grant == "client_credentials":
            wanted = frozenset(form.get("scope", "").split()) or frozenset({SCOPE_ROOT})
            if not wanted <= {SCOPE_ROOT}:
                return oauth_error("invalid_scope", "the requested scope is not granted to applications")
            access = self._tokens.new_access_token(Consent(APP, wanted), "v^1.1#i^1#p^1#r^0#I^3#f^0#t^")
            return Reply(
                200,
                {
                    "access_token": access,
                    "expires_in": self._tokens.access_lifetime_seconds,
                    "token_type": "Application Access Token",
                },
            )
        return oauth_error("unsupported_grant_type", f"grant type {grant!r} is not supported")

    def _new_tokens(self, consent: Consent) -> dict[str, Any]:
        return {
            "access_token": self._tokens.new_access_token(consent, "v^1.1#i^1#f^0#p^3#I^3#t^"),
            "expires_in": self._tokens.access_lifetime_seconds,
            "refresh_token": self._tokens.new_refresh_token(consent, "v^1.1#i^1#f^0#p^3#r^1#I^3#t^"),
            "refresh_token_expires_in": REFRESH_TOKEN_SECONDS,
            "token_type": "User Access Token",
        }

    def _caller(self, request: Request, api: str) -> _Seller:
        """The seller whose valid token the request carries, with the API's scope (reads: or its .readonly)."""
        consent = self._tokens.access(bearer_token(request))
        if consent is None:
            raise Refusal(Reply(401, self.error_body(request.path, 401, "")))
        if consent.account == APP:  # an application token acts for no seller
            raise Refusal(Reply(403, self.error_body(request.path, 403, "")))
        scope = f"{SCOPE_ROOT}/{api}"
        if scope not in consent.scopes and not (request.method == "GET" and f"{scope}.readonly" in consent.scopes):
            raise Refusal(Reply(403, self.error_body(request.path, 403, "")))
        note_account(request, consent.account)
        return self._seller(consent.account)

    # Inventory API ----------------------------------------------------------------------------------

    def _put_inventory_item(self, request: Request, sku: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        locale = _content_language(request)
        self._replace_item(seller, sku, _json_object(request), locale.replace("-", "_"))
        return Reply(204)

    def _replace_item(self, seller: _Seller, sku: str, body: dict[str, Any], locale: str) -> None:
        """createOrReplaceInventoryItem of one SKU (alone, or one request of the bulk call); a Refusal says why not."""
        if len(sku) > 50:
            raise _user_error(25707, "This is an invalid value for a SKU. Its length must not exceed 50 characters")
        product: dict[str, Any] = body["product"] if isinstance(body.get("product"), dict) else {}
        title = product.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _missing("product.title")
        if len(title) > 80:
            raise _invalid("product.title", "The title must not exceed 80 characters")
        quantity = _int(_dig(body, "availability", "shipToLocationAvailability", "quantity"))
        if quantity is None or quantity < 0:
            raise _missing("availability.shipToLocationAvailability.quantity")
        if "condition" in body and body["condition"] not in CONDITIONS:
            raise _unreadable("condition")
        aspects = product.get("aspects", {})
        if not isinstance(aspects, dict) or not all(
            isinstance(values, list) and all(isinstance(value, str) for value in values) for values in aspects.values()
        ):
            raise _unreadable("product.aspects")  # eBay wants {"Brand": ["Levi's"]}: a list of strings per name
        images = product.get("imageUrls", [])
        if not isinstance(images, list) or len(images) > 24 or not all(_is_url(url) for url in images):
            raise _invalid("product.imageUrls", "Up to 24 http(s) URLs are accepted")
        self._check_not_refused(sku, "inventory_item")
        live = [listing for listing in self._listings_of_sku(seller, sku) if listing.status != "ENDED"]
        self._check_revisable(live)
        seller.inventory[sku] = {**copy.deepcopy(body), "sku": sku, "locale": locale}
        self._count_revisions(live)
        for offer in self._offers_of_sku(seller, sku):
            self._follow_stock(seller, offer)

    def _get_inventory_item(self, request: Request, sku: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        return Reply(200, copy.deepcopy(self._item(seller, sku)))

    def _get_inventory_items(self, request: Request) -> Reply:
        seller = self._caller(request, "sell.inventory")
        limit, offset = _page(request, default_limit=25, max_limit=200)
        items = list(seller.inventory.values())
        page = copy.deepcopy(items[offset : offset + limit])
        return Reply(200, {**_paging(request, len(items), limit, offset), "size": len(page), "inventoryItems": page})

    def _delete_inventory_item(self, request: Request, sku: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        self._item(seller, sku)
        for offer in self._offers_of_sku(seller, sku):
            self._forget_offer(seller, offer["offerId"])
        del seller.inventory[sku]
        return Reply(204)

    def _create_offer(self, request: Request) -> Reply:
        seller = self._caller(request, "sell.inventory")
        _content_language(request)
        offer_id = self._add_offer(seller, _json_object(request))
        return Reply(201, {"offerId": offer_id, "warnings": []})

    def _add_offer(self, seller: _Seller, body: dict[str, Any]) -> str:
        """createOffer (alone, or one request of the bulk call): the new offer's id; a Refusal says why not."""
        for key in ("sku", "marketplaceId", "format"):
            if not body.get(key):
                raise _missing(key)
        if body["marketplaceId"] not in MARKETPLACES:
            raise _unreadable("marketplaceId")
        if body["format"] not in ("FIXED_PRICE", "AUCTION"):
            raise _unreadable("format")
        sku = str(body["sku"])
        if sku not in seller.inventory:
            raise _user_error(25702, f"SKU {sku} is not available in the system", parameters={"sku": sku})
        existing = next(
            (
                offer
                for offer in self._offers_of_sku(seller, sku)
                if (offer["marketplaceId"], offer["format"]) == (body["marketplaceId"], body["format"])
            ),
            None,
        )
        if existing is not None:
            raise _user_error(25002, "Offer entity already exists", parameters={"offerId": existing["offerId"]})
        _check_offer_fields(body)
        self._check_not_refused(sku, "offer")
        offer_id = str(7_000_000_000 + self._new_number())
        seller.offers[offer_id] = {**copy.deepcopy(body), "offerId": offer_id, "sku": sku}
        return offer_id

    def _get_offers(self, request: Request) -> Reply:
        seller = self._caller(request, "sell.inventory")
        sku = request.args.get("sku")
        if not sku:
            raise _missing("sku")
        limit, offset = _page(request, default_limit=25, max_limit=100)
        found = [
            self._offer_view(offer)
            for offer in self._offers_of_sku(seller, sku)
            if request.args.get("marketplace_id", offer["marketplaceId"]) == offer["marketplaceId"]
            and request.args.get("format", offer["format"]) == offer["format"]
        ]
        if not found:  # as eBay answers for a SKU without offers
            raise _offer_not_found()
        page = found[offset : offset + limit]
        return Reply(200, {**_paging(request, len(found), limit, offset), "size": len(page), "offers": page})

    def _get_offer(self, request: Request, offer_id: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        return Reply(200, self._offer_view(self._offer(seller, offer_id)))

    def _update_offer(self, request: Request, offer_id: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        _content_language(request)
        offer = self._offer(seller, offer_id)
        body = _json_object(request)
        _check_offer_fields(body)
        replaced = {**copy.deepcopy(body), **{key: offer[key] for key in _OFFER_KEYS}, "offerId": offer_id}
        listing = self._live_listing(offer_id)
        if listing is not None:  # the live listing is revised with it: it must still be publishable
            self._check_publishable(seller, replaced)
            self._check_revisable([listing])
        seller.offers[offer_id] = replaced
        if listing is not None:
            self._count_revisions([listing])
            self._follow_stock(seller, replaced)
        return Reply(204)

    def _delete_offer(self, request: Request, offer_id: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        self._offer(seller, offer_id)
        self._forget_offer(seller, offer_id)
        return Reply(204)

    def _publish_offer(self, request: Request, offer_id: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        return Reply(200, {"listingId": self._publish(seller, offer_id), "warnings": []})

    def _publish(self, seller: _Seller, offer_id: str) -> str:
        """publishOffer (alone, or one request of the bulk call): the listing's id; a Refusal says why not."""
        offer = self._offer(seller, offer_id)
        self._check_publishable(seller, offer)
        self._check_not_refused(str(offer["sku"]), "publish")
        listing = self._listing_of(offer_id)
        if listing is None:
            listing = _Listing(str(110_000_000_000 + self._new_number()), seller.account, offer_id, "ACTIVE")
            self._listings[listing.listing_id] = listing
        elif listing.status == "ENDED":  # relisted: the same listing comes back
            listing.status = "ACTIVE"
        else:  # publishing a live offer again revises its listing
            self._check_revisable([listing])
            self._count_revisions([listing])
        self._follow_stock(seller, offer)
        return listing.listing_id

    def _withdraw_offer(self, request: Request, offer_id: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        self._offer(seller, offer_id)
        listing = self._live_listing(offer_id)
        if listing is None:
            raise _user_error(25002, "The offer is not published", parameters={"offerId": offer_id})
        listing.status = "ENDED"
        return Reply(200, {"listingId": listing.listing_id, "warnings": []})

    def _bulk_create_inventory_items(self, request: Request) -> Reply:
        """bulkCreateOrReplaceInventoryItem: each request ({sku, locale, product, condition, availability}) as its own
        createOrReplaceInventoryItem, answered on its own."""
        seller = self._caller(request, "sell.inventory")
        _content_language(request)
        responses = []
        for entry in _bulk_requests(request):
            sku, locale = str(entry.get("sku") or ""), str(entry.get("locale") or "")
            body = {name: value for name, value in entry.items() if name not in ("sku", "locale")}

            def replace(sku: str = sku, locale: str = locale, body: dict[str, Any] = body) -> dict[str, Any]:
                if not sku:
                    raise _missing("sku")
                if locale.replace("_", "-") not in LANGUAGES:
                    raise _unreadable("locale")
                self._replace_item(seller, sku, body, locale)
                return {}

            responses.append({"sku": sku, "locale": locale, **_answered(replace)})
        return _multi_status(responses)

    def _bulk_create_offers(self, request: Request) -> Reply:
        """bulkCreateOffer: each request (an offer, as createOffer takes it) created on its own."""
        seller = self._caller(request, "sell.inventory")
        _content_language(request)
        responses = []
        for entry in _bulk_requests(request):

            def create(entry: dict[str, Any] = entry) -> dict[str, Any]:
                return {"offerId": self._add_offer(seller, entry)}

            named = {key: entry.get(key) for key in ("sku", "marketplaceId", "format")}
            responses.append({**named, **_answered(create)})
        return _multi_status(responses)

    def _bulk_publish_offers(self, request: Request) -> Reply:
        """bulkPublishOffer: each request ({offerId}) published on its own."""
        seller = self._caller(request, "sell.inventory")
        responses = []
        for entry in _bulk_requests(request):
            offer_id = str(entry.get("offerId") or "")

            def publish(offer_id: str = offer_id) -> dict[str, Any]:
                return {"listingId": self._publish(seller, offer_id)}

            responses.append({"offerId": offer_id, **_answered(publish)})
        return _multi_status(responses)

    def _check_not_refused(self, sku: str, call: str) -> None:
        refused = self._refused.get(sku)
        if refused is not None and refused[0] == call:
            raise _user_error(refused[1], refused[2], parameters={"sku": sku})

    def _bulk_update_price_quantity(self, request: Request) -> Reply:
        seller = self._caller(request, "sell.inventory")
        requests = _json_object(request).get("requests")
        if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_BULK_REQUESTS:
            raise _invalid("requests", f"Between 1 and {MAX_BULK_REQUESTS} requests are accepted")
        responses: list[dict[str, Any]] = []
        for entry in requests:
            responses.extend(self._update_price_quantity(seller, entry if isinstance(entry, dict) else {}))
        return Reply(200, {"responses": responses})

    def _update_price_quantity(self, seller: _Seller, entry: dict[str, Any]) -> list[dict[str, Any]]:
        sku = str(entry.get("sku", ""))
        changes = [change for change in entry.get("offers", []) if isinstance(change, dict)]

        def answer(status: int, offer_id: str | None = None, errors: list[dict[str, Any]] | None = None) -> Any:
            one = {"statusCode": status, "sku": sku, "errors": errors or [], "warnings": []}
            return one if offer_id is None else {**one, "offerId": offer_id}

        if sku not in seller.inventory:
            return [answer(404, errors=_errors(25710, _NOT_FOUND)["errors"])]
        offers = {str(change.get("offerId")): change for change in changes}
        unknown = [offer_id for offer_id in offers if seller.offers.get(offer_id, {}).get("sku") != sku]
        if unknown:
            return [
                answer(404, offer_id, _errors(25713, "This Offer is not available.")["errors"]) for offer_id in unknown
            ]
        live = [listing for offer_id in offers if (listing := self._live_listing(offer_id)) is not None]
        try:
            self._check_revisable(live)
        except Refusal as refused:
            return [answer(400, offer_id, refused.reply.body["errors"]) for offer_id in offers]
        quantity = _int(_dig(entry, "shipToLocationAvailability", "quantity"))
        if quantity is not None:
            seller.inventory[sku]["availability"]["shipToLocationAvailability"]["quantity"] = max(quantity, 0)
        for offer_id, change in offers.items():
            offer = seller.offers[offer_id]
            if _int(change.get("availableQuantity")) is not None:
                offer["availableQuantity"] = max(int(change["availableQuantity"]), 0)
            if isinstance(change.get("price"), dict):
                offer.setdefault("pricingSummary", {})["price"] = copy.deepcopy(change["price"])
        self._count_revisions(live)
        for offer in self._offers_of_sku(seller, sku):
            self._follow_stock(seller, offer)
        return [answer(200, offer_id) for offer_id in offers] or [answer(200)]

    def _get_locations(self, request: Request) -> Reply:
        seller = self._caller(request, "sell.inventory")
        limit, offset = _page(request, default_limit=100, max_limit=100)
        page = copy.deepcopy(seller.locations[offset : offset + limit])
        return Reply(200, {**_paging(request, len(seller.locations), limit, offset), "locations": page})

    # Account API ------------------------------------------------------------------------------------

    def _policies(self, kind: str) -> Callable[[Request], Reply]:
        def answer(request: Request) -> Reply:
            seller = self._caller(request, "sell.account")
            marketplace = request.args.get("marketplace_id")
            if not marketplace:
                raise Refusal(Reply(400, _errors(20401, "Missing field marketplaceId.", domain="API_ACCOUNT")))
            policies = getattr(seller, f"{kind}_policies")
            found = [copy.deepcopy(p) for p in policies if p["marketplaceId"] == marketplace]
            return Reply(
                200, {"href": request.url, "total": len(found), "limit": 20, "offset": 0, f"{kind}Policies": found}
            )

        return answer

    # Fulfillment API --------------------------------------------------------------------------------

    def _get_orders(self, request: Request) -> Reply:
        seller = self._caller(request, "sell.fulfillment")
        limit, offset = _page(request, default_limit=50, max_limit=200)
        orders = sorted(seller.orders.values(), key=lambda order: order["creationDate"], reverse=True)
        wanted_ids = request.args.get("orderIds")
        if wanted_ids:
            ids = {one.strip() for one in wanted_ids.split(",")}
            orders = [order for order in orders if order["orderId"] in ids]
        else:
            orders = [order for order in orders if _order_filter(request.args.get("filter", ""))(order)]
        page = copy.deepcopy(orders[offset : offset + limit])
        return Reply(200, {**_paging(request, len(orders), limit, offset), "orders": page})

    def _get_order(self, request: Request, order_id: str) -> Reply:
        seller = self._caller(request, "sell.fulfillment")
        order = seller.orders.get(order_id)
        if order is None:
            raise Refusal(Reply(404, _errors(32100, "Invalid order ID: " + order_id, domain="API_FULFILLMENT")))
        return Reply(200, copy.deepcopy(order))

    # Commerce Identity and Notification APIs ---------------------------------------------------------

    def _get_user(self, request: Request) -> Reply:
        seller = self._caller(request, "commerce.identity.readonly")
        return Reply(
            200,
            {
                "userId": _user_id(seller.account),
                "username": seller.account,
                "accountType": "INDIVIDUAL",
                "registrationMarketplaceId": self.marketplace_id,
                "status": "CONFIRMED",
            },
        )

    def _app(self, request: Request) -> None:
        """The request carries the app's own token (client credentials grant)."""
        consent = self._tokens.access(bearer_token(request))
        if consent is None:
            raise Refusal(Reply(401, self.error_body(request.path, 401, "")))
        if consent.account != APP:
            raise Refusal(Reply(403, self.error_body(request.path, 403, "")))

    def _get_public_key(self, request: Request, kid: str) -> Reply:
        self._app(request)
        key = self._signing_keys.get(kid)
        if key is None:
            raise Refusal(Reply(404, _errors(195001, "The public key was not found.", domain="API_NOTIFICATION")))
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        # eBay's answer runs the PEM's lines together.
        return Reply(200, {"algorithm": "ECDSA", "digest": "SHA1", "key": pem.decode().replace("\n", "")})

    def _get_destinations(self, request: Request) -> Reply:
        self._app(request)
        limit, offset = _page(request, default_limit=20, max_limit=100)
        found = list(self._destinations.values())
        page = copy.deepcopy(found[offset : offset + limit])
        return Reply(200, {**_paging(request, len(found), limit, offset), "destinations": page})

    def _create_destination(self, request: Request) -> Reply:
        self._app(request)
        body = _json_object(request)
        given = body.get("deliveryConfig")
        config: dict[str, Any] = given if isinstance(given, dict) else {}
        endpoint, token = config.get("endpoint"), config.get("verificationToken")
        if not _is_url(endpoint):
            raise _notification_error(195003, "Please provide a valid endpoint.")
        if not isinstance(token, str) or not 32 <= len(token) <= 80:
            raise _notification_error(195004, "The verificationToken must be 32 to 80 characters long.")
        if any(d["deliveryConfig"]["endpoint"] == endpoint for d in self._destinations.values()):
            raise _notification_error(195016, "A destination already exists for this endpoint.", status=409)
        self._challenge(str(endpoint), token)
        destination_id = str(uuid.uuid4())
        self._destinations[destination_id] = {
            "destinationId": destination_id,
            "name": str(body.get("name") or "destination"),
            "status": "ENABLED" if body.get("status", "ENABLED") == "ENABLED" else "DISABLED",
            "deliveryConfig": {"endpoint": endpoint, "verificationToken": token},
        }
        return Reply(
            201, None, {"Location": f"{request.host_url.rstrip('/')}{NOTIFICATION}/destination/{destination_id}"}
        )

    def _challenge(self, endpoint: str, token: str) -> None:
        """eBay checks a new destination: its endpoint must answer a challenge code with the right hash."""
        code = str(uuid.uuid4())
        expected = hashlib.sha256((code + token + endpoint).encode()).hexdigest()
        try:
            answer = self.push.client().get(endpoint, params={"challenge_code": code})
            given = answer.json().get("challengeResponse") if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            given = None
        if given != expected:
            raise _notification_error(195017, f"The endpoint {endpoint} did not answer the challenge code.")

    def _get_subscriptions(self, request: Request) -> Reply:
        seller = self._caller(request, "commerce.notification.subscription")
        limit, offset = _page(request, default_limit=20, max_limit=100)
        found = list(seller.subscriptions.values())
        page = copy.deepcopy(found[offset : offset + limit])
        return Reply(200, {**_paging(request, len(found), limit, offset), "subscriptions": page})

    def _create_subscription(self, request: Request) -> Reply:
        seller = self._caller(request, "commerce.notification.subscription")
        body = _json_object(request)
        topic, destination = body.get("topicId"), body.get("destinationId")
        if topic not in USER_TOPICS:
            raise _notification_error(195005, f"The topic {topic!r} cannot be subscribed to with a user token.")
        if destination not in self._destinations:
            raise _notification_error(195020, "The destination was not found.", status=404)
        for existing in seller.subscriptions.values():
            if (existing["topicId"], existing["destinationId"]) == (topic, destination):
                raise _notification_error(195019, "The subscription already exists.", status=409)
        subscription_id = str(uuid.uuid4())
        seller.subscriptions[subscription_id] = {
            "subscriptionId": subscription_id,
            "topicId": topic,
            "destinationId": destination,
            "status": "ENABLED" if body.get("status", "ENABLED") == "ENABLED" else "DISABLED",
            "creationDate": _iso(self.clock()),
            "payload": copy.deepcopy(body.get("payload") or {}),
        }
        location = f"{request.host_url.rstrip('/')}{NOTIFICATION}/subscription/{subscription_id}"
        return Reply(201, None, {"Location": location})

    def _subscription(self, request: Request, subscription_id: str) -> tuple[_Seller, dict[str, Any]]:
        """The caller's subscription (another seller's is not found)."""
        seller = self._caller(request, "commerce.notification.subscription")
        subscription = seller.subscriptions.get(subscription_id)
        if subscription is None:
            raise _notification_error(195022, "The subscription was not found.", status=404)
        return seller, subscription

    def _enable_subscription(self, request: Request, subscription_id: str) -> Reply:
        self._subscription(request, subscription_id)[1]["status"] = "ENABLED"
        return Reply(204)

    def _disable_subscription(self, request: Request, subscription_id: str) -> Reply:
        self._subscription(request, subscription_id)[1]["status"] = "DISABLED"
        return Reply(204)

    def _delete_subscription(self, request: Request, subscription_id: str) -> Reply:
        seller, _ = self._subscription(request, subscription_id)
        del seller.subscriptions[subscription_id]
        return Reply(204)

    def _delete_account_request(self, request: Request) -> Reply:
        """The devstack's `crosslist dev ebay-delete-account`: the seller closes their eBay account."""
        body = json_body(request)
        account = body.get("account") if isinstance(body, dict) else None
        if not isinstance(account, str) or not account.strip():
            return Reply(400, {"message": 'send {"account": "<the seller on the fake eBay>"} as JSON'})
        if self.account_deletion_endpoint is None:
            return Reply(409, {"message": "no account deletion endpoint is registered with the fake eBay"})
        push = self.delete_account(account.strip())
        return Reply(
            202, {"account": account.strip(), "user_id": _user_id(account.strip()), "sent_to": push and push.url}
        )

    def _notification(self, topic: str, data: dict[str, Any]) -> bytes:
        now = _iso(self.clock())
        message = {
            "metadata": {"topic": topic, "schemaVersion": "1.0", "deprecated": False},
            "notification": {
                "notificationId": f"{uuid.uuid4()}_{uuid.uuid4()}",
                "eventDate": now,
                "publishDate": now,
                "publishAttemptCount": 1,
                "data": data,
            },
        }
        return json.dumps(message, separators=(",", ":")).encode()

    def _push(self, url: str, topic: str, body: bytes) -> Push:
        return self.push.send(url, topic, {"X-EBAY-SIGNATURE": self.sign(body)}, body)

    # the seller's shop (devstack.shops) -------------------------------------------------------------

    def seed_shop(self, account: str, listings: Iterable[EbayListing]) -> dict[str, str]:
        """The seller's listings made before crosslist, all live: Inventory API ones as inventory items (an item
        group for variations) each with a published offer, the others as made on ebay.com (seen only by the Sell
        Feed report, the Browse API and sales, until migrated). Each listing's key -> its listingId; a key seeded
        before keeps its listing (seeding again adds nothing). ValueError, before anything is seeded, when an
        Inventory API listing has no SKU or one the seller already uses."""
        listings = list(listings)
        with self._lock:
            seller = self._seller(account)
            wanted = [listing for listing in listings if listing.key not in seller.seeded]
            skus = [
                sku
                for listing in wanted
                if listing.inventory_api
                for sku in ([v.sku for v in listing.variations] if listing.variations else [listing.sku])
            ]
            taken = [sku for sku in skus if not sku or sku in seller.inventory]
            groups = [listing.group for listing in wanted if listing.inventory_api and listing.variations]
            if taken or len(set(skus)) < len(skus) or any(not g or g in seller.groups for g in groups):
                raise ValueError(f"{account} already has, or the listings repeat or lack, SKUs: {taken[:5]}")
            for listing in wanted:
                seeder = self._seed_inventory_listing if listing.inventory_api else self._seed_outside_listing
                seller.seeded[listing.key] = seeder(seller, listing)
            return {listing.key: seller.seeded[listing.key] for listing in listings}

    def outside_listings(self, account: str = "dev") -> list[dict[str, Any]]:
        """The listings the seller made on ebay.com (not migrated)."""
        with self._lock:
            return copy.deepcopy(list(self._seller(account).outside.values()))

    def _seed_inventory_listing(self, seller: _Seller, listing: EbayListing) -> str:
        aspects = _aspects(listing.brand, listing.colour, listing.size)
        price = {"value": listing.price, "currency": listing.currency}
        images = list(listing.photos)
        if not listing.variations:
            sku = str(listing.sku)
            seller.inventory[sku] = _inventory_item(
                sku,
                title=listing.title,
                description=listing.description,
                images=images,
                aspects=aspects,
                condition=listing.condition,
                quantity=listing.quantity,
            )
            offer_ids = [
                self._new_offer(
                    seller,
                    sku,
                    category_id=listing.category_id,
                    description=listing.description,
                    price=price,
                    quantity=listing.quantity,
                )
            ]
        else:
            group = str(listing.group)
            offer_ids = self._new_group(
                seller,
                group,
                title=listing.title,
                description=listing.description,
                images=images,
                aspects=_aspects(listing.brand, listing.colour, ""),
                condition=listing.condition,
                category_id=listing.category_id,
                variations=[
                    (str(v.sku), v.size, {"value": v.price, "currency": listing.currency}, v.quantity)
                    for v in listing.variations
                ],
            )
        listing_id = self._new_listing_id()
        self._listings[listing_id] = _Listing(
            listing_id, seller.account, offer_ids[0], "ACTIVE", group_offer_ids=offer_ids[1:]
        )
        return listing_id

    def _seed_outside_listing(self, seller: _Seller, listing: EbayListing) -> str:
        listing_id = self._new_listing_id()
        seller.outside[listing_id] = {
            "listingId": listing_id,
            "marketplaceId": self.marketplace_id,
            "listingStatus": "ACTIVE",
            "sku": listing.sku,
            "title": listing.title,
            "description": listing.description,
            "price": {"value": listing.price, "currency": listing.currency},
            "quantity": listing.quantity,
            "soldQuantity": 0,
            "imageUrls": list(listing.photos),
            "condition": listing.condition,
            "categoryId": listing.category_id,
            "aspects": _aspects(listing.brand, listing.colour, listing.size),
            "variations": [
                {
                    "sku": v.sku,
                    "size": v.size,
                    "price": {"value": v.price, "currency": listing.currency},
                    "quantity": v.quantity,
                }
                for v in listing.variations
            ],
        }
        return listing_id

    def _new_listing_id(self) -> str:
        return str(110_000_000_000 + self._new_number())

    def _new_offer(
        self, seller: _Seller, sku: str, *, category_id: str, description: str, price: dict[str, Any], quantity: int
    ) -> str:
        """A fixed price offer on the fake's marketplace with the seller's first policies (to be published)."""
        offer_id = str(7_000_000_000 + self._new_number())
        seller.offers[offer_id] = {
            "offerId": offer_id,
            "sku": sku,
            "marketplaceId": self.marketplace_id,
            "format": "FIXED_PRICE",
            "availableQuantity": quantity,
            "categoryId": category_id,
            "listingDescription": description,
            "listingDuration": "GTC",
            "listingPolicies": self.listing_policies(seller.account),
            "merchantLocationKey": seller.locations[0]["merchantLocationKey"],
            "pricingSummary": {"price": copy.deepcopy(price)},
        }
        return offer_id

    def _new_group(
        self,
        seller: _Seller,
        group: str,
        *,
        title: str,
        description: str,
        images: list[str],
        aspects: dict[str, list[str]],
        condition: str,
        category_id: str,
        variations: list[tuple[str, str, dict[str, Any], int]],  # (sku, size, price, quantity)
    ) -> list[str]:
        """An inventory item group varying by size: an inventory item and an offer per variation; their offer ids."""
        offer_ids = []
        for sku, size, price, quantity in variations:
            seller.inventory[sku] = _inventory_item(
                sku,
                title=title,
                description=description,
                images=images,
                aspects={**aspects, "Size": [size]},
                condition=condition,
                quantity=quantity,
                group=group,
            )
            offer_ids.append(
                self._new_offer(
                    seller, sku, category_id=category_id, description=description, price=price, quantity=quantity
                )
            )
        seller.groups[group] = {
            "inventoryItemGroupKey": group,
            "title": title,
            "description": description,
            "imageUrls": list(images),
            "aspects": copy.deepcopy(aspects),
            "variantSKUs": [sku for sku, *_ in variations],
            "variesBy": {
                "aspectsImageVariesBy": [],
                "specifications": [{"name": "Size", "values": [size for _, size, *_ in variations]}],
            },
        }
        return offer_ids

    def _outside(self, listing_id: str) -> tuple[_Seller, dict[str, Any]] | None:
        """The ebay.com listing (not migrated) and its seller."""
        for seller in self._sellers.values():
            if listing_id in seller.outside:
                return seller, seller.outside[listing_id]
        return None

    def _sale(self, listing_id: str, quantity: int, buyer: str, account: str | None) -> tuple[_Seller, str]:
        listing = self._listings.get(listing_id)
        outside = self._outside(listing_id) if listing is None else None
        owner = listing.account if listing is not None else outside[0].account if outside is not None else None
        if owner is None or (account is not None and owner != account):
            raise ValueError(f"no listing {listing_id}" + (f" of {account}" if account else ""))
        if outside is not None:
            return outside[0], self._sell_outside(outside[0], outside[1], quantity, buyer)
        assert listing is not None
        seller = self._sellers[listing.account]
        offers = [seller.offers[i] for i in (listing.offer_id, *listing.group_offer_ids) if i in seller.offers]
        offer = next((one for one in offers if self._available(seller, one) >= quantity), None)
        offer = offer or seller.offers[listing.offer_id]
        available = self._available(seller, offer)
        if listing.status != "ACTIVE" or available < quantity:
            raise ValueError(f"listing {listing_id} is {listing.status} with {available} available")
        item = seller.inventory[offer["sku"]]
        stock = item["availability"]["shipToLocationAvailability"]
        stock["quantity"] = int(stock["quantity"]) - quantity
        if "availableQuantity" in offer:
            offer["availableQuantity"] = int(offer["availableQuantity"]) - quantity
        listing.sold_quantity += quantity
        self._follow_stock(seller, offer)
        return seller, self._new_order(seller, listing, offer, quantity, buyer)

    def _sell_outside(self, seller: _Seller, listing: dict[str, Any], quantity: int, buyer: str) -> str:
        variation = next((v for v in listing["variations"] if v["quantity"] >= quantity), None)
        available = (variation or {}).get("quantity", 0) if listing["variations"] else listing["quantity"]
        if listing["listingStatus"] != "ACTIVE" or available < quantity:
            raise ValueError(f"listing {listing['listingId']} is {listing['listingStatus']} with {available} available")
        if variation is not None:
            variation["quantity"] -= quantity
        listing["quantity"] -= quantity
        listing["soldQuantity"] += quantity
        if listing["quantity"] <= 0:
            listing["listingStatus"] = "OUT_OF_STOCK"
        sold = variation or listing
        return self._order(
            seller,
            listing["listingId"],
            sku=sold["sku"],
            title=listing["title"],
            price=sold["price"],
            quantity=quantity,
            buyer=buyer,
        )

    def _seed_shop_request(self, request: Request) -> Reply:
        """The devstack's `crosslist dev seed-shops` (POST SEED_SHOP_PATH): the account's shop of devstack.shops."""
        asked = shop_request(json_body(request))
        if isinstance(asked, str):
            return Reply(400, {"message": asked})
        listings = asked.shops().ebay
        try:
            ids = self.seed_shop(asked.account, listings)
        except ValueError as refused:
            return Reply(409, {"message": str(refused)})
        outside = sum(not listing.inventory_api for listing in listings)
        return Reply(200, {"account": asked.account, "listings": len(ids), "outside": outside, "ids": ids})

    # Inventory item groups and migration ------------------------------------------------------------

    def _get_inventory_item_group(self, request: Request, group_key: str) -> Reply:
        seller = self._caller(request, "sell.inventory")
        group = seller.groups.get(group_key)
        if group is None:
            raise Refusal(Reply(404, _errors(25725, _NOT_FOUND)))
        return Reply(200, copy.deepcopy(group))

    def _bulk_migrate_listing(self, request: Request) -> Reply:
        seller = self._caller(request, "sell.inventory")
        entries = _json_object(request).get("requests")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_MIGRATIONS:
            raise _invalid("requests", f"Between 1 and {MAX_MIGRATIONS} listings are migrated at a time")
        return Reply(200, {"responses": [self._migrate(seller, e if isinstance(e, dict) else {}) for e in entries]})

    def _migrate(self, seller: _Seller, entry: dict[str, Any]) -> dict[str, Any]:
        """One listing made on ebay.com becomes Inventory API objects, for good: the same listingId, an inventory
        item and a published offer per SKU (an item group for variations). Every item needs an SKU."""
        listing_id = str(entry.get("listingId") or "")

        def answer(
            status: int, errors: list[dict[str, Any]], items: list[dict[str, Any]], **more: Any
        ) -> dict[str, Any]:
            return {
                "statusCode": status,
                "listingId": listing_id,
                "marketplaceId": self.marketplace_id,
                "inventoryItems": items,
                "errors": errors,
                "warnings": [],
                **more,
            }

        migrated = self._listings.get(listing_id)
        if migrated is not None and migrated.account == seller.account:
            message = "The listing is already managed with the Inventory API: it cannot be migrated again."
            return answer(400, _errors(25005, message)["errors"], [])
        listing = seller.outside.get(listing_id)
        if listing is None or listing["listingStatus"] == "ENDED":
            message = f"The listing {listing_id} is not one of the seller's active listings."
            return answer(404, _errors(25710, message)["errors"], [])
        variations = listing["variations"]
        skus: list[str | None] = [v["sku"] for v in variations] if variations else [listing["sku"]]
        named = [{"sku": sku} for sku in skus if sku]
        if len(named) < len(skus):
            why = "each variation" if variations else "the listing"
            message = f"A SKU is required to migrate a listing: {why} has none."
            return answer(400, _errors(25002, message, parameters={"listingId": listing_id})["errors"], named)
        taken = [str(sku) for sku in skus if sku in seller.inventory]
        if taken or len(set(skus)) < len(skus):
            message = f"The SKU {(taken or skus)[0]} is already used by another inventory item."
            return answer(400, _errors(25002, message, parameters={"sku": str((taken or skus)[0])})["errors"], named)
        sku = str(skus[0])
        more: dict[str, Any] = {}
        if variations:
            group = f"{listing_id}-group"  # eBay makes the key up
            offer_ids = self._new_group(
                seller,
                group,
                title=listing["title"],
                description=listing["description"],
                images=listing["imageUrls"],
                aspects={name: values for name, values in listing["aspects"].items() if name != "Size"},
                condition=listing["condition"],
                category_id=listing["categoryId"],
                variations=[(str(v["sku"]), v["size"], v["price"], v["quantity"]) for v in variations],
            )
            more["inventoryItemGroupKey"] = group
        else:
            seller.inventory[sku] = _inventory_item(
                sku,
                title=listing["title"],
                description=listing["description"],
                images=listing["imageUrls"],
                aspects=listing["aspects"],
                condition=listing["condition"],
                quantity=listing["quantity"],
            )
            offer_ids = [
                self._new_offer(
                    seller,
                    sku,
                    category_id=listing["categoryId"],
                    description=listing["description"],
                    price=listing["price"],
                    quantity=listing["quantity"],
                )
            ]
        del seller.outside[listing_id]
        status = "ACTIVE" if listing["listingStatus"] == "ACTIVE" else "OUT_OF_STOCK"
        self._listings[listing_id] = _Listing(
            listing_id, seller.account, offer_ids[0], status, listing["soldQuantity"], group_offer_ids=offer_ids[1:]
        )
        items = [{"sku": one["sku"], "offerId": offer_id} for one, offer_id in zip(named, offer_ids, strict=True)]
        return answer(200, [], items, **more)

    # Sell Feed API ----------------------------------------------------------------------------------

    def _create_inventory_task(self, request: Request) -> Reply:
        """An ActiveInventoryReport task (25 a day per seller at most): its URL in the Location header."""
        seller = self._caller(request, "sell.inventory")
        body = _json_object(request)
        if body.get("feedType") != ACTIVE_INVENTORY_REPORT:
            raise _feed_error(400, 160002, f"The feedType {body.get('feedType')!r} is invalid or not supported.")
        if str(body.get("schemaVersion")) != "1.0":
            raise _feed_error(400, 160003, "The schemaVersion is invalid: 1.0 is expected.")
        now = self.clock()
        day_ago = (now - timedelta(days=1)).timestamp()
        if sum(task["createdAt"] > day_ago for task in seller.feed_tasks.values()) >= MAX_FEED_TASKS_PER_DAY:
            message = f"The maximum of {MAX_FEED_TASKS_PER_DAY} tasks of this feed type in 24 hours is reached."
            raise _feed_error(429, 160022, message)
        task_id = f"task-1-{self._new_number()}"
        seller.feed_tasks[task_id] = {
            "taskId": task_id,
            "status": "QUEUED",
            "feedType": ACTIVE_INVENTORY_REPORT,
            "schemaVersion": "1.0",
            "creationDate": _iso(now),
            "createdAt": now.timestamp(),
            "polls": 0,
            "report": None,
        }
        return Reply(202, None, {"Location": f"{request.host_url.rstrip('/')}{FEED}/inventory_task/{task_id}"})

    def _feed_task(self, request: Request, task_id: str) -> tuple[_Seller, dict[str, Any]]:
        """The caller's task (another seller's is not found)."""
        seller = self._caller(request, "sell.inventory")
        task = seller.feed_tasks.get(task_id)
        if task is None:
            raise _feed_error(404, 160004, f"The task {task_id} was not found.")
        return seller, task

    def _get_inventory_task(self, request: Request, task_id: str) -> Reply:
        seller, task = self._feed_task(request, task_id)
        task["polls"] += 1
        now = self.clock()
        if task["status"] != "COMPLETED":
            waited = now.timestamp() - task["createdAt"] >= self.feed_task_seconds
            if task["polls"] > self.feed_task_polls and waited:  # the report is what is active now
                task.update(status="COMPLETED", completionDate=_iso(now), report=self._active_inventory_report(seller))
            elif task["polls"] > 1:
                task["status"] = "IN_PROCESS"
        view = {key: task[key] for key in ("taskId", "status", "feedType", "schemaVersion", "creationDate")}
        if "completionDate" in task:
            view["completionDate"] = task["completionDate"]
        view["detailHref"] = f"{request.host_url.rstrip('/')}{FEED}/inventory_task/{task_id}"
        return Reply(200, view)

    def _download_result_file(self, request: Request, task_id: str) -> Reply:
        _, task = self._feed_task(request, task_id)
        if task["status"] != "COMPLETED":
            raise _feed_error(400, 160018, f"The task {task_id} is {task['status']}: its file is not ready yet.")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{task_id}_ActiveInventoryReport.xml", task["report"])
        headers = {
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{task_id}_ActiveInventoryReport.zip"',
        }
        return Reply(200, buffer.getvalue(), headers)

    def _active_inventory_report(self, seller: _Seller) -> str:
        """eBay's ActiveInventoryReport: every live listing of the seller, made with the Inventory API or not."""
        details: list[tuple[str, str]] = []
        for listing in self._listings.values():
            if listing.account != seller.account or listing.status == "ENDED":
                continue
            offers = [seller.offers[i] for i in (listing.offer_id, *listing.group_offer_ids) if i in seller.offers]
            if listing.group_offer_ids:
                groups = seller.inventory[offers[0]["sku"]].get("groupIds") or [None]
                variations = [
                    (o["sku"], _dig(o, "pricingSummary", "price"), self._available(seller, o)) for o in offers
                ]
                details.append((listing.listing_id, _sku_details(listing.listing_id, groups[0], None, 0, variations)))
            elif offers:
                price = _dig(offers[0], "pricingSummary", "price")
                available = self._available(seller, offers[0])
                details.append(
                    (listing.listing_id, _sku_details(listing.listing_id, offers[0]["sku"], price, available, None))
                )
        for outside in seller.outside.values():
            if outside["listingStatus"] == "ENDED":
                continue
            sold_as = [(v["sku"], v["price"], v["quantity"]) for v in outside["variations"]] or None
            price = None if sold_as else outside["price"]
            details.append(
                (
                    outside["listingId"],
                    _sku_details(outside["listingId"], outside["sku"], price, outside["quantity"], sold_as),
                )
            )
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<ActiveInventoryReport xmlns="urn:ebay:apis:eBLBaseComponents">',
            f"<Timestamp>{_iso(self.clock())}</Timestamp>",
            "<Ack>Success</Ack>",
            *(detail for _, detail in sorted(details)),
            "</ActiveInventoryReport>",
        ]
        return "\n".join(lines) + "\n"

    # Browse API -------------------------------------------------------------------------------------

    def _get_item_by_legacy_id(self, request: Request) -> Reply:
        """A live listing as buyers see it, any seller's, by its legacy (Trading) id; an item group's needs a
        variation (11006), an ended or unknown listing is not found (11001)."""
        consent = self._tokens.access(bearer_token(request))
        if consent is None:
            raise Refusal(Reply(401, self.error_body(request.path, 401, "")))
        if SCOPE_ROOT not in consent.scopes:
            raise Refusal(Reply(403, self.error_body(request.path, 403, "")))
        if consent.account != APP:
            note_account(request, consent.account)
        legacy_id = request.args.get("legacy_item_id", "").strip()
        if not legacy_id:
            raise _browse_error(400, 11000, "The 'legacy_item_id' is required.")
        view = self._browse_view(legacy_id)
        if view is None:
            raise _browse_error(404, 11001, f"The legacy Id {legacy_id} is invalid or the item has ended.")
        return Reply(200, view)

    def _browse_view(self, legacy_id: str) -> dict[str, Any] | None:
        listing = self._listings.get(legacy_id)
        if listing is not None and listing.status != "ENDED":
            seller = self._sellers[listing.account]
            if listing.group_offer_ids:
                raise _variation_refusal(legacy_id)
            offer = seller.offers[listing.offer_id]
            product = seller.inventory[offer["sku"]]["product"]
            return self._browse_item(
                seller,
                legacy_id,
                title=product["title"],
                description=offer.get("listingDescription") or product.get("description") or "",
                price=_dig(offer, "pricingSummary", "price") or {"value": "0.00", "currency": self.currency},
                images=list(product.get("imageUrls") or []),
                condition=str(seller.inventory[offer["sku"]].get("condition", "")),
                category_id=str(offer.get("categoryId", "")),
                aspects=product.get("aspects") or {},
                quantities=(self._available(seller, offer), listing.sold_quantity),
            )
        found = self._outside(legacy_id)
        if found is None or found[1]["listingStatus"] == "ENDED":
            return None
        seller, outside = found
        if outside["variations"]:
            raise _variation_refusal(legacy_id)
        return self._browse_item(
            seller,
            legacy_id,
            title=outside["title"],
            description=outside["description"],
            price=outside["price"],
            images=outside["imageUrls"],
            condition=outside["condition"],
            category_id=outside["categoryId"],
            aspects=outside["aspects"],
            quantities=(outside["quantity"], outside["soldQuantity"]),
        )

    def _browse_item(
        self,
        seller: _Seller,
        legacy_id: str,
        *,
        title: str,
        description: str,
        price: dict[str, Any],
        images: list[str],
        condition: str,
        category_id: str,
        aspects: dict[str, list[str]],
        quantities: tuple[int, int],  # (available, sold)
    ) -> dict[str, Any]:
        condition_text, condition_id = BROWSE_CONDITIONS.get(condition, ("Pre-owned", "3000"))
        available, sold = quantities
        view: dict[str, Any] = {
            "itemId": f"v1|{legacy_id}|0",
            "legacyItemId": legacy_id,
            "title": title,
            "shortDescription": description.split(". ", 1)[0][:160],
            "description": description,
            "price": {"value": str(price["value"]), "currency": price["currency"]},
            "additionalImages": [{"imageUrl": url} for url in images[1:]],
            "condition": condition_text,
            "conditionId": condition_id,
            "categoryId": category_id,
            "brand": _first(aspects, "Brand"),
            "color": _first(aspects, "Colour", "Color"),
            "size": _first(aspects, "Size"),
            "localizedAspects": [
                {"type": "STRING", "name": name, "value": ", ".join(values)} for name, values in aspects.items()
            ],
            "buyingOptions": ["FIXED_PRICE"],
            "estimatedAvailabilities": [
                {
                    "estimatedAvailabilityStatus": "IN_STOCK" if available > 0 else "OUT_OF_STOCK",
                    "estimatedAvailableQuantity": available,
                    "estimatedSoldQuantity": sold,
                    "deliveryOptions": ["SHIP_TO_HOME"],
                }
            ],
            "seller": {"username": seller.account},
            "listingMarketplaceId": self.marketplace_id,
            "itemWebUrl": f"https://www.ebay.co.uk/itm/{legacy_id}",
        }
        if images:
            view["image"] = {"imageUrl": images[0]}
        return view

    # state ------------------------------------------------------------------------------------------

    def _seller(self, account: str) -> _Seller:
        """The account's seller, seeded on first sight with stable policy ids and a location."""
        seller = self._sellers.get(account)
        if seller is None:
            marketplace = self.marketplace_id
            category = [{"name": "ALL_EXCLUDING_MOTORS_VEHICLES", "default": True}]
            seller = _Seller(
                account,
                payment_policies=[
                    {
                        "paymentPolicyId": _stable_id(account, "payment"),
                        "name": "Managed payments",
                        "marketplaceId": marketplace,
                        "categoryTypes": category,
                        "immediatePay": True,
                    }
                ],
                fulfillment_policies=[
                    {
                        "fulfillmentPolicyId": _stable_id(account, f"fulfillment-{number}"),
                        "name": name,
                        "marketplaceId": marketplace,
                        "categoryTypes": category,
                        "handlingTime": {"value": days, "unit": "DAY"},
                    }
                    for number, (name, days) in enumerate([("Standard postage", 2), ("Express postage", 1)], 1)
                ],
                return_policies=[
                    {
                        "returnPolicyId": _stable_id(account, "return"),
                        "name": "30 days returns",
                        "marketplaceId": marketplace,
                        "categoryTypes": category,
                        "returnsAccepted": True,
                        "returnPeriod": {"value": 30, "unit": "DAY"},
                    }
                ],
                locations=[
                    {
                        "merchantLocationKey": "home",
                        "name": "Home",
                        "location": {
                            "address": {
                                "addressLine1": "1 High Street",
                                "city": "London",
                                "postalCode": "N1 9GU",
                                "country": "GB",
                            }
                        },
                        "locationTypes": ["WAREHOUSE"],
                        "merchantLocationStatus": "ENABLED",
                    }
                ],
            )
            self._sellers[account] = seller
        return seller

    def _new_number(self) -> int:
        return next(self._ids)

    def _item(self, seller: _Seller, sku: str) -> dict[str, Any]:
        item = seller.inventory.get(sku)
        if item is None:
            raise Refusal(Reply(404, _errors(25710, _NOT_FOUND)))
        return item

    def _offer(self, seller: _Seller, offer_id: str) -> dict[str, Any]:
        offer = seller.offers.get(offer_id)
        if offer is None:
            raise _offer_not_found()
        return offer

    def _offers_of_sku(self, seller: _Seller, sku: str) -> list[dict[str, Any]]:
        return [offer for offer in seller.offers.values() if offer["sku"] == sku]

    def _listing_of(self, offer_id: str) -> _Listing | None:
        return next(
            (
                listing
                for listing in self._listings.values()
                if listing.offer_id == offer_id or offer_id in listing.group_offer_ids
            ),
            None,
        )

    def _live_listing(self, offer_id: str) -> _Listing | None:
        listing = self._listing_of(offer_id)
        return listing if listing is not None and listing.status != "ENDED" else None

    def _listings_of_sku(self, seller: _Seller, sku: str) -> list[_Listing]:
        return [
            listing for offer in self._offers_of_sku(seller, sku) if (listing := self._listing_of(offer["offerId"]))
        ]

    def _forget_offer(self, seller: _Seller, offer_id: str) -> None:
        """A deleted offer ends its listing, which is then forgotten too."""
        listing = self._listing_of(offer_id)
        if listing is not None:
            del self._listings[listing.listing_id]
        del seller.offers[offer_id]

    def _offer_view(self, offer: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(offer)
        listing = self._live_listing(offer["offerId"])
        view["status"] = "UNPUBLISHED" if listing is None else "PUBLISHED"
        if listing is not None:  # eBay returns the listing container for published offers only
            view["listing"] = {
                "listingId": listing.listing_id,
                "listingStatus": listing.status,
                "soldQuantity": listing.sold_quantity,
            }
        return view

    def _available(self, seller: _Seller, offer: dict[str, Any]) -> int:
        stock = int(seller.inventory[offer["sku"]]["availability"]["shipToLocationAvailability"]["quantity"])
        wanted = _int(offer.get("availableQuantity"))
        return stock if wanted is None else min(wanted, stock)

    def _follow_stock(self, seller: _Seller, offer: dict[str, Any]) -> None:
        """A live listing is OUT_OF_STOCK at 0 available, ACTIVE again when stock comes back."""
        listing = self._live_listing(offer["offerId"])
        if listing is not None:  # an item group's listing: while any variation is in stock
            offers = [seller.offers[i] for i in (listing.offer_id, *listing.group_offer_ids) if i in seller.offers]
            in_stock = any(self._available(seller, one) > 0 for one in offers or [offer])
            listing.status = "ACTIVE" if in_stock else "OUT_OF_STOCK"

    def _check_publishable(self, seller: _Seller, offer: dict[str, Any]) -> None:
        problems: list[dict[str, Any]] = []
        policies = offer.get("listingPolicies") or {}
        for kind, error_id in (("fulfillment", 25007), ("payment", 25008), ("return", 25009)):
            known = {policy[f"{kind}PolicyId"] for policy in getattr(seller, f"{kind}_policies")}
            if policies.get(f"{kind}PolicyId") not in known:
                problems += _errors(
                    error_id, f"Invalid {kind} policy information. Please provide a valid {kind}PolicyId."
                )["errors"]
        if not offer.get("categoryId"):
            problems += _errors(25005, "Invalid category ID. Please provide a valid category ID.")["errors"]
        locations = {location["merchantLocationKey"] for location in seller.locations}
        if offer.get("merchantLocationKey") not in locations:
            problems += _errors(25002, "A user error has occurred. A valid merchantLocationKey is required.")["errors"]
        if _price(_dig(offer, "pricingSummary", "price", "value")) is None:
            problems += _errors(25020, "Invalid price. The price must be a number greater than 0.")["errors"]
        item = seller.inventory.get(offer["sku"], {})
        if not item.get("condition"):
            problems += _errors(25021, "Invalid item condition information.")["errors"]
        if not _dig(item, "product", "imageUrls"):
            problems += _errors(25002, "A user error has occurred. At least 1 picture is required.")["errors"]
        if item and self._available(seller, offer) <= 0:
            problems += _errors(25002, "A user error has occurred. The available quantity must be greater than 0.")[
                "errors"
            ]
        if problems:
            raise Refusal(Reply(400, {"errors": problems}))

    def _check_revisable(self, listings: list[_Listing]) -> None:
        self._roll_revision_day()
        for listing in listings:
            if self.revisions[listing.listing_id] >= self.max_revisions_per_day:
                raise _user_error(
                    25002,
                    f"A user error has occurred. The listing has reached the limit of {self.max_revisions_per_day} "
                    "revisions per day.",
                    parameters={"listingId": listing.listing_id},
                )

    def _count_revisions(self, listings: list[_Listing]) -> None:
        self._roll_revision_day()
        for listing in {listing.listing_id: listing for listing in listings}.values():
            self.revisions[listing.listing_id] += 1

    def _roll_revision_day(self) -> None:
        today = self.clock().date()
        if self._revision_day != today:
            self.revisions.clear()
            self._revision_day = today

    def _new_order(self, seller: _Seller, listing: _Listing, offer: dict[str, Any], quantity: int, buyer: str) -> str:
        price = _dig(offer, "pricingSummary", "price") or {"value": "0.00", "currency": self.currency}
        title = seller.inventory[offer["sku"]]["product"]["title"]
        return self._order(
            seller, listing.listing_id, sku=offer["sku"], title=title, price=price, quantity=quantity, buyer=buyer
        )

    def _order(
        self,
        seller: _Seller,
        listing_id: str,
        *,
        sku: str | None,
        title: str,
        price: dict[str, Any],
        quantity: int,
        buyer: str,
    ) -> str:
        """A paid order of `quantity` of the listing (its line item without an sku when the listing has none)."""
        number = self._new_number()
        # eBay's shape (12-34567-89012, the first group as long as the number needs): one order id per number
        order_id = f"{number // 10**10:02d}-{number // 10**5 % 10**5:05d}-{number % 10**5:05d}"
        total = {"value": f"{Decimal(str(price['value'])) * quantity:.2f}", "currency": price["currency"]}
        now = _iso(self.clock())
        seller.orders[order_id] = {
            "orderId": order_id,
            "legacyOrderId": f"{listing_id}-{3_000_000_000 + number}",
            "creationDate": now,
            "lastModifiedDate": now,
            "orderFulfillmentStatus": "NOT_STARTED",
            "orderPaymentStatus": "PAID",
            "sellerId": seller.account,
            "buyer": {"username": buyer},
            "pricingSummary": {"priceSubtotal": total, "total": total},
            "lineItems": [
                {
                    "lineItemId": str(10_000_000_000 + number),
                    "legacyItemId": listing_id,
                    **({} if sku is None else {"sku": sku}),
                    "title": title,
                    "quantity": quantity,
                    "lineItemCost": total,
                    "lineItemFulfillmentStatus": "NOT_STARTED",
                }
            ],
        }
        return order_id


# helpers --------------------------------------------------------------------------------------------

_NOT_FOUND = "We didn't find the entity you are requesting. Please verify the request"


def _errors(
    error_id: int,
    message: str,
    *,
    domain: str = "API_INVENTORY",
    category: str = "REQUEST",
    long_message: str | None = None,
    parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"errorId": error_id, "domain": domain, "category": category, "message": message}
    if long_message:
        error["longMessage"] = long_message
    if parameters:
        error["parameters"] = [{"name": name, "value": value} for name, value in parameters.items()]
    return {"errors": [error]}


def _user_error(error_id: int, message: str, *, parameters: dict[str, str] | None = None) -> Refusal:
    return Refusal(Reply(400, _errors(error_id, message, parameters=parameters)))


def _bulk_requests(request: Request) -> list[dict[str, Any]]:
    """A bulk call's `requests`: 1 to 25 of them, else the whole call is refused (400)."""
    requests = _json_object(request).get("requests")
    if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_BULK_REQUESTS:
        raise _invalid("requests", f"Between 1 and {MAX_BULK_REQUESTS} requests are accepted")
    return [entry if isinstance(entry, dict) else {} for entry in requests]


def _answered(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One request of a bulk call, carried out: its statusCode and what it gives, or eBay's errors for it alone."""
    try:
        return {"statusCode": 200, **action(), "errors": [], "warnings": []}
    except Refusal as refused:
        return {"statusCode": refused.reply.status, "errors": refused.reply.body["errors"], "warnings": []}


def _multi_status(responses: list[dict[str, Any]]) -> Reply:
    """A bulk call's answer: 200 when every request succeeded, else 207 (Multi-Status), each saying its own."""
    failed = any(response["statusCode"] >= 300 for response in responses)
    return Reply(207 if failed else 200, {"responses": responses})


def _missing(field_name: str) -> Refusal:
    return _user_error(25002, f"A user error has occurred. {field_name} is missing.", parameters={"field": field_name})


def _invalid(field_name: str, why: str) -> Refusal:
    return _user_error(25002, f"A user error has occurred. {why}.", parameters={"field": field_name})


def _unreadable(field_name: str) -> Refusal:
    return Refusal(
        Reply(
            400,
            _errors(2004, "Invalid request", domain="ACCESS", long_message=f"Could not serialize field [{field_name}]"),
        )
    )


def _offer_not_found() -> Refusal:
    return Refusal(Reply(404, _errors(25713, "This Offer is not available.")))


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return client_id, secret


def _content_language(request: Request) -> str:
    language = request.headers.get("Content-Language", "")
    if language not in LANGUAGES:
        raise _user_error(
            25709, "Invalid value for header Content-Language.", parameters={"Content-Language": language}
        )
    return language


def _json_object(request: Request) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise Refusal(
            Reply(400, _errors(2004, "Invalid request", domain="ACCESS", long_message="The request has errors."))
        )
    return body


def _check_offer_fields(body: dict[str, Any]) -> None:
    if "availableQuantity" in body and (_int(body["availableQuantity"]) is None or int(body["availableQuantity"]) < 0):
        raise _invalid("availableQuantity", "availableQuantity must be a whole number, 0 or more")
    price = _dig(body, "pricingSummary", "price")
    if price is not None and (
        not isinstance(price, dict) or _price(price.get("value")) is None or not price.get("currency")
    ):
        raise _invalid("pricingSummary.price", "The price needs a value greater than 0 and a currency")


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _price(value: Any) -> Decimal | None:
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() and price > 0 else None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and bool(urlsplit(value).netloc)


def _page(request: Request, *, default_limit: int, max_limit: int) -> tuple[int, int]:
    limit = _int(request.args.get("limit", default_limit))
    offset = _int(request.args.get("offset", 0))
    if limit is None or not 1 <= limit <= max_limit:
        raise Refusal(
            Reply(
                400, _errors(2004, "Invalid request", domain="ACCESS", long_message=f"limit must be 1 to {max_limit}")
            )
        )
    if offset is None or offset < 0:
        raise Refusal(
            Reply(400, _errors(2004, "Invalid request", domain="ACCESS", long_message="offset must be 0 or more"))
        )
    return limit, offset


def _paging(request: Request, total: int, limit: int, offset: int) -> dict[str, Any]:
    page: dict[str, Any] = {"href": request.url, "total": total, "limit": limit, "offset": offset}
    if offset + limit < total:
        query = {**request.args.to_dict(), "limit": str(limit), "offset": str(offset + limit)}
        page["next"] = f"{request.base_url}?{urlencode(query)}"
    if offset > 0:
        query = {**request.args.to_dict(), "limit": str(limit), "offset": str(max(offset - limit, 0))}
        page["prev"] = f"{request.base_url}?{urlencode(query)}"
    return page


OrderTest = Callable[[dict[str, Any]], bool]


def _order_filter(text: str) -> OrderTest:
    """A predicate on orders for getOrders' filter: `creationdate:[from..to]` or `lastmodifieddate:[from..]`
    (ISO 8601 UTC; the end is optional), and `orderfulfillmentstatus:{A|B}`, comma-separated."""
    tests: list[OrderTest] = []
    for criterion in _criteria(text):
        name, _, value = criterion.partition(":")
        name = name.strip().lower()
        if name in ("creationdate", "lastmodifieddate"):
            tests.append(_date_range(name, value.strip()))
        elif name == "orderfulfillmentstatus" and value.startswith("{") and value.endswith("}"):
            tests.append(_fulfillment_status_in({status.strip() for status in value[1:-1].split("|")}))
        else:
            raise _bad_filter(f"The filter {criterion!r} is not supported")
    if (
        sum(1 for criterion in _criteria(text) if criterion.lower().startswith(("creationdate", "lastmodifieddate")))
        > 1
    ):
        raise _bad_filter("Only one of creationdate and lastmodifieddate may be given")
    return lambda order: all(test(order) for test in tests)


def _fulfillment_status_in(statuses: set[str]) -> OrderTest:
    return lambda order: order["orderFulfillmentStatus"] in statuses


def _criteria(text: str) -> Iterator[str]:
    return (part.strip() for part in text.split(",") if part.strip())


def _date_range(name: str, value: str) -> OrderTest:
    if not (value.startswith("[") and value.endswith("]") and ".." in value):
        raise _bad_filter(f"{name} needs a range [from..to] or [from..]")
    start_text, _, end_text = value[1:-1].partition("..")
    start, end = _timestamp(start_text), _timestamp(end_text) if end_text else None
    key = "creationDate" if name == "creationdate" else "lastModifiedDate"

    def within(order: dict[str, Any]) -> bool:
        moment = _timestamp(order[key])
        return moment >= start and (end is None or moment <= end)

    return within


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _bad_filter(f"{text!r} is not an ISO 8601 date (e.g. 2026-11-01T00:00:00.000Z)") from None
    if moment.tzinfo is None:
        raise _bad_filter(f"{text!r} needs its time zone (Z)")
    return moment


def _bad_filter(why: str) -> Refusal:
    return Refusal(Reply(400, _errors(30700, "Invalid filter", domain="API_FULFILLMENT", long_message=why)))


def _aspects(brand: str, colour: str, size: str) -> dict[str, list[str]]:
    named = {"Brand": brand, "Colour": colour, "Size": size}
    return {name: [value] for name, value in named.items() if value}


def _inventory_item(
    sku: str,
    *,
    title: str,
    description: str,
    images: list[str],
    aspects: dict[str, list[str]],
    condition: str,
    quantity: int,
    group: str | None = None,
) -> dict[str, Any]:
    """An inventory item as createOrReplaceInventoryItem stores it (groupIds: an item group's variation)."""
    item: dict[str, Any] = {
        "sku": sku,
        "locale": "en_GB",
        "product": {
            "title": title[:80],
            "description": description,
            "imageUrls": list(images),
            "aspects": copy.deepcopy(aspects),
        },
        "condition": condition,
        "availability": {"shipToLocationAvailability": {"quantity": quantity}},
    }
    if group is not None:
        item["groupIds"] = [group]
    return item


Variant = tuple[str | None, dict[str, Any] | None, int]  # (sku, price, quantity)


def _sku_details(
    listing_id: str, sku: str | None, price: dict[str, Any] | None, quantity: int, variations: list[Variant] | None
) -> str:
    """One listing's <SKUDetails> in an ActiveInventoryReport (a listing with variations: price and quantity per
    variation only)."""

    def money(price: dict[str, Any] | None) -> str:
        if price is None:
            return ""
        return f"<Price currencyID={quoteattr(str(price['currency']))}>{escape(str(price['value']))}</Price>"

    parts = ["<SKUDetails>"]
    if sku:
        parts.append(f"<SKU>{escape(sku)}</SKU>")
    if variations is None:
        parts += [money(price), f"<Quantity>{quantity}</Quantity>"]
    parts.append(f"<ItemID>{listing_id}</ItemID>")
    if variations is not None:
        parts.append("<Variations>")
        for variant_sku, variant_price, variant_quantity in variations:
            parts.append("<Variation>")
            if variant_sku:
                parts.append(f"<SKU>{escape(variant_sku)}</SKU>")
            parts += [f"<Quantity>{variant_quantity}</Quantity>", money(variant_price), "</Variation>"]
        parts.append("</Variations>")
    parts.append("</SKUDetails>")
    return "".join(parts)


def _first(aspects: dict[str, list[str]], *names: str) -> str | None:
    """The first value of the first of the aspects the item has."""
    return next((aspects[name][0] for name in names if aspects.get(name)), None)


def _feed_error(status: int, error_id: int, message: str) -> Refusal:
    return Refusal(Reply(status, _errors(error_id, message, domain="API_FEED")))


def _browse_error(status: int, error_id: int, message: str) -> Refusal:
    return Refusal(Reply(status, _errors(error_id, message, domain="API_BROWSE")))


def _variation_refusal(legacy_id: str) -> Refusal:
    return _browse_error(
        400,
        11006,
        f"The legacy ID {legacy_id} is for an item group; use legacy_variation_id or legacy_variation_sku to "
        "retrieve one of its variations.",
    )


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _stable_id(account: str, kind: str) -> str:
    """The same id for the same account and kind in every run (seeded policies)."""
    digest = hashlib.sha256(f"{account}/{kind}".encode()).hexdigest()
    return str(6_000_000_000 + int(digest[:12], 16) % 1_000_000_000)


def _user_id(account: str) -> str:
    """An eBay immutable user id for the account, the same in every run (11 letters and digits, as eBay's)."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    number = int(hashlib.sha256(f"{account}/user".encode()).hexdigest(), 16)
    digits = []
    for _ in range(11):
        number, digit = divmod(number, len(alphabet))
        digits.append(alphabet[digit])
    return "".join(digits)


def _order_confirmation(account: str, order: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """An ORDER_CONFIRMATION's data: the order and line item, and the seller it is for (by immutable id)."""
    return {
        "orderId": order["orderId"],
        "lineItemId": line["lineItemId"],
        "sellerId": _user_id(account),
        "checkoutStatus": "COMPLETE",
        "creationDate": order["creationDate"],
    }


def _notification_error(error_id: int, message: str, *, status: int = 400) -> Refusal:
    return Refusal(Reply(status, _errors(error_id, message, domain="API_NOTIFICATION")))


def _private_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
