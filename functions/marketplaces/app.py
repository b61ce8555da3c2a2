"""HTTP API: the caller's eBay and Etsy accounts - connect (OAuth), the callback, status, disconnect, and the
seller settings their jobs need (with the choices read from the marketplace).

The only HTTP function allowed to use the credentials' KMS key and the marketplace apps' secrets."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.api import current_user, documented, make_resolver
from crosslist.auth.schemas import (
    AuthorizationStarted,
    CompleteConnection,
    Connected,
    MarketplaceStatus,
    OAuthMarketplace,
)
from crosslist.errors import NotFound
from crosslist.marketplaces.seller import (
    EbaySettings,
    EbaySettingsView,
    EtsyChoices,
    EtsySettingsView,
    SellerSettingsView,
)

logger = Logger()
# The marketplace sends the user's browser to the callback: it carries no crosslist token.
app = make_resolver(public_paths=[r"/marketplaces/[^/]+/callback"])


@app.get("/marketplaces", responses=documented(200, "eBay and Etsy, in that order", list[MarketplaceStatus]))
def list_marketplaces() -> list[MarketplaceStatus]:
    """Whether each OAuth marketplace is connected for the caller (or must be connected again)."""
    return [MarketplaceStatus.of(c) for c in runtime.connector().connections(current_user(app))]


@app.get(
    "/marketplaces/<marketplace>/connect",
    responses=documented(200, "Where to send the user", AuthorizationStarted, refusals=(503,)),
)
def connect(
    marketplace: OAuthMarketplace, return_to: Annotated[str | None, Query(max_length=2000)] = None
) -> AuthorizationStarted:
    """Where to send the user to authorize crosslist (valid 10 minutes, once). The marketplace then sends
    them to the callback, which sends them back to `return_to` (a page of the web app; by default its
    first origin) with `code` and `state`: the web app completes the connection with
    POST /marketplaces/{marketplace}/connect. 422 `return_to_not_allowed`: not a page of the web app's
    origins; 503 `not_configured`: no web app origin is configured."""
    url = runtime.connector().authorization_url(current_user(app), marketplace, return_to)
    return AuthorizationStarted(authorization_url=url)


@app.post(
    "/marketplaces/<marketplace>/connect",
    responses=documented(200, "Connected", Connected, refusals=(503,), body=True),
)
def complete_connection(marketplace: OAuthMarketplace, completion: CompleteConnection) -> Connected:
    """Complete an authorization the caller started: the `code` and `state` the web app page got back.
    Only the crosslist user who started it can complete it: 400 `invalid_state` (unknown, used, expired or
    started by another user), 400 `authorization_failed` (the marketplace refused the code), 503 the
    marketplace could not be reached."""
    runtime.connector().complete(current_user(app), marketplace, completion.code, completion.state)
    return Connected(marketplace=marketplace, status="connected")


@app.get(
    "/marketplaces/<marketplace>/callback",
    responses={
        **documented(302, "", public=True),
        302: {
            "description": "To the web app page the authorization was started from (`Location`)",
            "content": {"text/plain": {"schema": {"type": "string", "maxLength": 0}}},
        },
    },
)
def callback(
    marketplace: OAuthMarketplace,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[None]:
    """The marketplace sends the user here (no crosslist token): a redirect (302) back to the web app page
    the authorization was started from, with `marketplace`, `state` and `code` (or `error`)."""
    back_to = runtime.connector().returning(marketplace, state, code, error)
    return Response(status_code=302, content_type=content_types.TEXT_PLAIN, headers={"Location": back_to})


@app.delete(
    "/marketplaces/<marketplace>",
    responses=documented(204, "Disconnected: its credential and seller settings are forgotten", refusals=(404,)),
)
def disconnect(marketplace: OAuthMarketplace) -> Response[None]:
    if not runtime.connector().disconnect(current_user(app), marketplace):
        raise NotFound(f"{marketplace} is not connected")
    return Response(status_code=204)


@app.get("/marketplaces/ebay/settings", responses=documented(200, "The seller's eBay settings", EbaySettingsView))
def get_ebay_settings() -> EbaySettingsView:
    """The seller's eBay settings, what a publish still needs, and the account's own policies and locations to
    choose from (422 `marketplace_not_connected` before the account is connected)."""
    return _ebay(runtime.seller_settings().get(current_user(app), "ebay"))


@app.put(
    "/marketplaces/ebay/settings",
    responses=documented(200, "The seller's eBay settings, changed", EbaySettingsView, refusals=(503,), body=True),
)
def put_ebay_settings(changes: EbaySettings) -> EbaySettingsView:
    """Change some settings (the others stay); each must be one of the account's own (422 otherwise; 503 when
    eBay cannot be asked)."""
    return _ebay(runtime.seller_settings().put(current_user(app), "ebay", changes.model_dump(exclude_unset=True)))


@app.get("/marketplaces/etsy/settings", responses=documented(200, "The seller's Etsy settings", EtsySettingsView))
def get_etsy_settings() -> EtsySettingsView:
    """The seller's Etsy settings (the shop and its currency read from the account), what a publish still
    needs, and the shop's shipping profiles and readiness states to choose from."""
    return _etsy(runtime.seller_settings().get(current_user(app), "etsy"))


@app.put(
    "/marketplaces/etsy/settings",
    responses=documented(200, "The seller's Etsy settings, changed", EtsySettingsView, refusals=(503,), body=True),
)
def put_etsy_settings(changes: EtsyChoices) -> EtsySettingsView:
    """Choose the shipping profile and readiness state (the others stay); each must be one of the shop's own
    (422 otherwise; 503 when Etsy cannot be asked)."""
    return _etsy(runtime.seller_settings().put(current_user(app), "etsy", changes.model_dump(exclude_unset=True)))


def _ebay(view: SellerSettingsView) -> EbaySettingsView:
    assert isinstance(view, EbaySettingsView)
    return view


def _etsy(view: SellerSettingsView) -> EtsySettingsView:
    assert isinstance(view, EtsySettingsView)
    return view


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
