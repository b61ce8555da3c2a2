"""A seller's settings on eBay and Etsy: what their listings need beyond the product (eBay's business
policies and merchant location, Etsy's shop, shipping profile and readiness state). Stored per user and
marketplace (seller_settings); a job that needs them carries a copy in its input, checked when it is
created so a missing one is a 422 naming it, not a failed job.

What identifies the account (Etsy's shop and its currency) is read from the marketplace with the user's
own token, never taken from the client: a shop id is public, and another seller's would let the user's
syncs read (and jobs act on) a shop that is not theirs. Each setting a client chooses must be one of the
account's own, checked with the marketplace before it is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import OAuthCredential, SellerSettings
from crosslist.errors import InvalidRequest, ServiceUnavailable
from crosslist.marketplaces import DISPLAY_NAMES, ReadFailed

JsonDict = dict[str, Any]
EbayMarketplaceId = Literal["EBAY_US", "EBAY_GB", "EBAY_DE", "EBAY_FR", "EBAY_IT", "EBAY_ES"]

# What eBay's listing pages are called, and the language its APIs expect, per eBay site.
EBAY_SITES: dict[str, tuple[str, str, str]] = {  # marketplace id -> (domain, Content-Language, currency)
    "EBAY_US": ("www.ebay.com", "en-US", "USD"),
    "EBAY_GB": ("www.ebay.co.uk", "en-GB", "GBP"),
    "EBAY_DE": ("www.ebay.de", "de-DE", "EUR"),
    "EBAY_FR": ("www.ebay.fr", "fr-FR", "EUR"),
    "EBAY_IT": ("www.ebay.it", "it-IT", "EUR"),
    "EBAY_ES": ("www.ebay.es", "es-ES", "EUR"),
}


class EbaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marketplace_id: EbayMarketplaceId = Field(default="EBAY_GB", description="The eBay site listings go to")
    payment_policy_id: str | None = Field(default=None, max_length=40)
    fulfillment_policy_id: str | None = Field(default=None, max_length=40)
    return_policy_id: str | None = Field(default=None, max_length=40)
    merchant_location_key: str | None = Field(default=None, max_length=36)


# Etsy's ids are 64-bit; a web app in JavaScript reads numbers exactly only up to 2^53 - 1.
MAX_ETSY_ID = 2**53 - 1
EtsyId = Annotated[int, Field(gt=0, le=MAX_ETSY_ID)]


class _EtsyChosen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shipping_profile_id: EtsyId | None = None
    readiness_state_id: EtsyId | None = None


class EtsyChoices(_EtsyChosen):
    """What a seller chooses on Etsy (PUT /marketplaces/etsy/settings); the shop and its currency are read
    from the connected account."""

    @model_validator(mode="before")
    @classmethod
    def _account_facts_are_not_chosen(cls, data: Any) -> Any:
        given = [name for name in ("shop_id", "currency") if isinstance(data, dict) and name in data]
        if given:
            raise ValueError(f"{', '.join(given)}: read from your Etsy account, never set here")
        return data


class EtsySettings(_EtsyChosen):
    """Stored: the seller's choices and the shop they belong to."""

    shop_id: EtsyId | None = Field(default=None, description="The connected account's shop, read from Etsy")
    currency: str | None = Field(default=None, description="The shop's currency, read from Etsy: prices are in it")


SETTINGS_MODELS: dict[str, type[EbaySettings] | type[EtsySettings]] = {"ebay": EbaySettings, "etsy": EtsySettings}
# What a client may set, per marketplace (Etsy's shop and currency are read from the account).
CHOSEN_MODELS: dict[str, type[EbaySettings] | type[EtsyChoices]] = {"ebay": EbaySettings, "etsy": EtsyChoices}

# The settings each action needs (the others need none).
REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("ebay", "publish"): ("payment_policy_id", "fulfillment_policy_id", "return_policy_id", "merchant_location_key"),
    ("etsy", "publish"): ("shop_id", "shipping_profile_id", "readiness_state_id"),
    ("etsy", "update"): ("shop_id",),
    ("etsy", "delete"): ("shop_id",),
    ("etsy", "sync"): ("shop_id",),
    ("etsy", "sync_orders"): ("shop_id",),
    ("etsy", "import"): ("shop_id",),
}


def stored_settings(session: Session, user_id: str, marketplace: str) -> JsonDict:
    """The user's settings on the marketplace, every field present (unset ones None)."""
    row = session.get(SellerSettings, (user_id, marketplace))
    return SETTINGS_MODELS[marketplace].model_validate(row.settings if row is not None else {}).model_dump()


def seller_for_job(session: Session, user_id: str, marketplace: str, action: str) -> JsonDict:
    """The settings a job of `action` carries; InvalidRequest when the account is not connected or a
    setting it needs is missing (naming each one)."""
    _require_credential(session, user_id, marketplace)
    # A credential waiting for the user to connect again (needs_reauth) is accepted: the job waits for it.
    settings = stored_settings(session, user_id, marketplace)
    missing = [name for name in REQUIRED.get((marketplace, action), ()) if settings.get(name) is None]
    if missing:
        raise InvalidRequest(
            f"your {DISPLAY_NAMES[marketplace]} seller settings are missing {', '.join(missing)}:"
            f" set them with PUT /marketplaces/{marketplace}/settings",
            code="seller_settings_missing",
            missing=missing,
        )
    return settings


def selling_currency(marketplace: str, settings: JsonDict) -> str | None:
    """The currency the seller's listings on the marketplace are priced in (eBay: the site's; Etsy: the
    shop's), None when not known yet."""
    if marketplace == "ebay":
        return EBAY_SITES[settings["marketplace_id"]][2]
    currency = settings.get("currency")
    return str(currency) if currency else None


def check_currency(marketplace: str, settings: JsonDict, currency: str) -> None:
    """InvalidRequest (`currency_mismatch`) when a price in `currency` cannot be listed there as it is."""
    selling = selling_currency(marketplace, settings)
    name = DISPLAY_NAMES[marketplace]
    if selling is None:
        raise InvalidRequest(
            f"the currency of your {name} shop is not known yet: open GET /marketplaces/{marketplace}/settings",
            code="seller_settings_missing",
            missing=["currency"],
        )
    if currency != selling:
        where = f"your eBay site {settings['marketplace_id']}" if marketplace == "ebay" else "your Etsy shop"
        raise InvalidRequest(
            f"this product is priced in {currency}, and {where} sells in {selling}: set the product's price in"
            f" {selling} to list it on {name}",
            code="currency_mismatch",
        )


# ---------------------------------------------------------------- GET/PUT /marketplaces/{m}/settings
class Choice(BaseModel):
    id: str | int = Field(description="As the setting stores it: eBay's ids are strings, Etsy's integers")
    name: str


class _SettingsView(BaseModel):
    missing_for_publish: list[str] = Field(description="Settings a publish still needs")
    choices: dict[str, list[Choice]] = Field(
        description="The values each setting can take, read from the marketplace (policies, locations, profiles)"
    )
    choices_error: str | None = Field(
        default=None, description="Why the choices could not be read (the settings are shown anyway)"
    )


class EbaySettingsView(_SettingsView):
    marketplace: Literal["ebay"]
    settings: EbaySettings = Field(description="What the seller's eBay jobs use (unset: null)")


class EtsySettingsView(_SettingsView):
    marketplace: Literal["etsy"]
    settings: EtsySettings = Field(description="What the seller's Etsy jobs use (unset: null)")


SellerSettingsView = EbaySettingsView | EtsySettingsView


# Where each setting's choices come from: (path, list key, id key, name key); {marketplace_id} / {shop_id}
# are the seller's.
CHOICE_SOURCES: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "ebay": {
        "payment_policy_id": (
            "/sell/account/v1/payment_policy?marketplace_id={marketplace_id}",
            "paymentPolicies",
            "paymentPolicyId",
            "name",
        ),
        "fulfillment_policy_id": (
            "/sell/account/v1/fulfillment_policy?marketplace_id={marketplace_id}",
            "fulfillmentPolicies",
            "fulfillmentPolicyId",
            "name",
        ),
        "return_policy_id": (
            "/sell/account/v1/return_policy?marketplace_id={marketplace_id}",
            "returnPolicies",
            "returnPolicyId",
            "name",
        ),
        "merchant_location_key": ("/sell/inventory/v1/location", "locations", "merchantLocationKey", "name"),
    },
    "etsy": {
        "shipping_profile_id": (
            "/application/shops/{shop_id}/shipping-profiles",
            "results",
            "shipping_profile_id",
            "title",
        ),
        "readiness_state_id": (
            "/application/shops/{shop_id}/readiness-state-definitions",
            "results",
            "readiness_state_id",
            "readiness_state",
        ),
    },
}
ETSY_ME = "/application/users/me"
ETSY_SHOP = "/application/shops/{shop_id}"

# Reads a marketplace path as the user: its JSON object; ReadFailed when it cannot.
MarketplaceRead = Callable[[str, str, str], JsonDict]


class SellerSettingsService:
    def __init__(self, sessions: sessionmaker[Session], read: MarketplaceRead) -> None:
        self._sessions = sessions
        self._read = read

    def get(self, user_id: str, marketplace: str) -> SellerSettingsView:
        with transaction(self._sessions) as session:
            _require_credential(session, user_id, marketplace)
            settings = stored_settings(session, user_id, marketplace)
        try:
            settings, choices = self._with_choices(user_id, marketplace, settings)
        except ReadFailed as unavailable:
            return _view(marketplace, settings, {}, str(unavailable))
        return _view(marketplace, settings, choices, None)

    def put(self, user_id: str, marketplace: str, changes: JsonDict) -> SellerSettingsView:
        """Change the given settings (the others stay); each must be one of the account's own, as the
        marketplace says now (ServiceUnavailable when it cannot be asked)."""
        try:
            CHOSEN_MODELS[marketplace].model_validate(changes)
        except ValidationError as invalid:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
            raise InvalidRequest(f"invalid {marketplace} settings: {reasons}", code="invalid_settings") from None
        with transaction(self._sessions) as session:
            _require_credential(session, user_id, marketplace)
            settings = {**stored_settings(session, user_id, marketplace), **changes}
        try:
            settings, choices = self._with_choices(user_id, marketplace, settings)
        except ReadFailed as unavailable:
            raise ServiceUnavailable(
                f"your {DISPLAY_NAMES[marketplace]} settings cannot be checked right now ({unavailable}): try again",
                code="marketplace_unavailable",
            ) from None
        wrong = [
            f"{name}: {settings[name]!r} is not one of yours ({', '.join(str(c.id) for c in choices[name]) or 'none'})"
            for name in changes
            if name in choices
            and settings.get(name) is not None
            and str(settings[name]) not in {str(c.id) for c in choices[name]}
        ]
        if wrong:
            raise InvalidRequest(f"unknown {marketplace} settings: {'; '.join(wrong)}", code="invalid_settings")
        stored = self._store(user_id, marketplace, settings)
        return _view(marketplace, stored, choices, None)

    def account_connected(self, user_id: str, marketplace: str) -> None:
        """An account was (re)connected: record what identifies it (Etsy: its shop and currency), dropping
        choices made for another shop. When the marketplace cannot be read now, the next GET or PUT of the
        settings reads it."""
        if marketplace != "etsy":  # an eBay account's settings are its policies: nothing to read at connection
            return
        with transaction(self._sessions) as session:
            settings = stored_settings(session, user_id, marketplace)
        try:
            settings, _ = self._with_choices(user_id, marketplace, settings, choices=False)
        except ReadFailed:
            return
        self._store(user_id, marketplace, settings)

    def _with_choices(
        self, user_id: str, marketplace: str, settings: JsonDict, *, choices: bool = True
    ) -> tuple[JsonDict, dict[str, list[Choice]]]:
        """The settings with the account's facts as the marketplace says them now, and each setting's
        choices; ReadFailed when the marketplace cannot be read."""
        if marketplace == "etsy":
            settings = self._etsy_shop(user_id, settings)
        found: dict[str, list[Choice]] = {}
        for name, (path, key, id_key, name_key) in CHOICE_SOURCES[marketplace].items() if choices else ():
            entries = self._read(user_id, marketplace, path.format(**settings)).get(key) or []
            found[name] = [
                Choice(id=_as_stored(marketplace, entry[id_key]), name=str(entry.get(name_key) or entry[id_key]))
                for entry in entries
                if isinstance(entry, dict) and entry.get(id_key) is not None
            ]
        return settings, found

    def _etsy_shop(self, user_id: str, settings: JsonDict) -> JsonDict:
        """The settings on the connected account's own shop: its id and currency, read from Etsy."""
        me = self._read(user_id, "etsy", ETSY_ME)
        shop_id = me.get("shop_id")
        if not isinstance(shop_id, int) or not 0 < shop_id <= MAX_ETSY_ID:
            raise ReadFailed("this Etsy account has no shop: open one on Etsy first")
        shop = self._read(user_id, "etsy", ETSY_SHOP.format(shop_id=shop_id))
        currency = shop.get("currency_code")
        if shop_id != settings.get("shop_id"):  # another shop: what was chosen for the old one means nothing
            settings = {**settings, "shipping_profile_id": None, "readiness_state_id": None}
        return {**settings, "shop_id": shop_id, "currency": currency if isinstance(currency, str) else None}

    def _store(self, user_id: str, marketplace: str, settings: JsonDict) -> JsonDict:
        stored = SETTINGS_MODELS[marketplace].model_validate(settings).model_dump()
        with transaction(self._sessions) as session:
            session.execute(
                insert(SellerSettings)
                .values(user_id=user_id, marketplace=marketplace, settings=stored)
                .on_conflict_do_update(
                    index_elements=["user_id", "marketplace"], set_={"settings": stored, "updated_at": func.now()}
                )
            )
        return stored


def _as_stored(marketplace: str, value: Any) -> str | int:
    """A choice's id as its setting stores it (Etsy's ids are integers; eBay's strings, even when digits)."""
    if marketplace == "etsy" and isinstance(value, int | str) and str(value).isdigit():
        return int(value)
    return str(value)


def _require_credential(session: Session, user_id: str, marketplace: str) -> None:
    """InvalidRequest unless the user has a credential for the marketplace (active or to be renewed)."""
    connected = session.scalar(
        select(OAuthCredential.id).where(OAuthCredential.user_id == user_id, OAuthCredential.marketplace == marketplace)
    )
    if connected is None:
        raise InvalidRequest(
            f"connect your {DISPLAY_NAMES[marketplace]} account first (GET /marketplaces/{marketplace}/connect)",
            code="marketplace_not_connected",
        )


def _view(
    marketplace: str, settings: JsonDict, choices: dict[str, list[Choice]], error: str | None
) -> SellerSettingsView:
    missing = [name for name in REQUIRED[(marketplace, "publish")] if settings.get(name) is None]
    view = EbaySettingsView if marketplace == "ebay" else EtsySettingsView
    return view.model_validate(
        {
            "marketplace": marketplace,
            "settings": settings,
            "missing_for_publish": missing,
            "choices": choices,
            "choices_error": error,
        }
    )
