"""HTTP API: the caller's eBay and Etsy accounts - connect (OAuth), the callback, status, disconnect, and the
seller settings their jobs need (with the choices read from the marketplace).

The only HTTP function allowed to use the credentials' KMS key and the marketplace apps' secrets."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.api import current_user, make_resolver
from crosslist.auth.schemas import (
    AuthorizationStarted,
    CompleteConnection,
    Connected,
    MarketplaceStatus,
    OAuthMarketplace,
)
from crosslist.errors import NotFound
from crosslist.marketplaces.seller import SellerSettingsView

logger = Logger()
# The marketplace sends the user's browser to the callback: it carries no crosslist token.
app = make_resolver(public_paths=[r"/marketplaces/[^/]+/callback"])


@app.get("/marketplaces")
def list_marketplaces() -> list[MarketplaceStatus]:
    """Whether each OAuth marketplace is connected for the caller (or must be connected again)."""
    return [MarketplaceStatus.of(c) for c in runtime.connector().connections(current_user(app))]


@app.get("/marketplaces/<marketplace>/connect")
def connect(
    marketplace: OAuthMarketplace, return_to: Annotated[str | None, Query(max_length=2000)] = None
) -> AuthorizationStarted:
    """Where to send the user to authorize crosslist (valid 10 minutes, once). The marketplace then sends
    them to the callback, which sends them back to `return_to` (a page of the web app; by default its
    first origin) with `code` and `state`: the web app completes the connection with
    POST /marketplaces/{marketplace}/connect."""
    url = runtime.connector().authorization_url(current_user(app), marketplace, return_to)
    return AuthorizationStarted(authorization_url=url)


@app.post("/marketplaces/<marketplace>/connect")
def complete_connection(marketplace: OAuthMarketplace, completion: CompleteConnection) -> Connected:
    """Complete an authorization the caller started: the `code` and `state` the web app page got back.
    Only the crosslist user who started it can complete it."""
    runtime.connector().complete(current_user(app), marketplace, completion.code, completion.state)
    return Connected(marketplace=marketplace, status="connected")


@app.get("/marketplaces/<marketplace>/callback")
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


@app.delete("/marketplaces/<marketplace>")
def disconnect(marketplace: OAuthMarketplace) -> Response[None]:
    if not runtime.connector().disconnect(current_user(app), marketplace):
        raise NotFound(f"{marketplace} is not connected")
    return Response(status_code=204)


@app.get("/marketplaces/<marketplace>/settings")
def get_settings(marketplace: OAuthMarketplace) -> SellerSettingsView:
    """The seller's settings on the marketplace, what a publish still needs, and the values each can take."""
    return runtime.seller_settings().get(current_user(app), marketplace)


@app.put("/marketplaces/<marketplace>/settings")
def put_settings(marketplace: OAuthMarketplace, changes: Annotated[dict[str, Any], Body()]) -> SellerSettingsView:
    """Change some settings (the others stay). eBay: marketplace_id, payment_policy_id, fulfillment_policy_id,
    return_policy_id, merchant_location_key. Etsy: shop_id, shipping_profile_id, readiness_state_id."""
    return runtime.seller_settings().put(current_user(app), marketplace, changes)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
