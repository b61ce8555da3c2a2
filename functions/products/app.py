"""HTTP API: the caller's product catalogue, each product's sales (what auto-delist did), and the caller's
settings: auto-delist, and the webhook endpoint their own backend is sent events at."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.api import current_user, documented, make_resolver
from crosslist.orders.schemas import SalePage, UserSettingsUpdate, UserSettingsView
from crosslist.products.schemas import (
    MAX_LIST_OFFSET,
    Delisting,
    ProductCreate,
    ProductPage,
    ProductUpdate,
    ProductView,
)
from crosslist.webhooks.schemas import (
    WebhookDeliveryPage,
    WebhookEndpointPut,
    WebhookEndpointSaved,
    WebhookEndpointView,
    WebhookTestSent,
)

logger = Logger()
app = make_resolver()


@app.post("/products", responses=documented(201, "The product; `Location` names it", ProductView, body=True))
def create_product(product: ProductCreate) -> Response[ProductView]:
    created = runtime.product_service().create(current_user(app), product)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=created,
        headers={"Location": f"/products/{created.id}"},
    )


@app.get("/products", responses=documented(200, "A page of the caller's products", ProductPage))
def list_products(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET)] = 0,
) -> ProductPage:
    """The caller's products, newest first. Page on with `next_offset`: a page can hold fewer than `limit`."""
    return runtime.product_service().list(current_user(app), limit, offset)


@app.get("/products/<product_id>", responses=documented(200, "The product", ProductView, refusals=(404,)))
def get_product(product_id: UUID) -> ProductView:
    return runtime.product_service().get(current_user(app), product_id)


@app.patch(
    "/products/<product_id>", responses=documented(200, "The product, changed", ProductView, refusals=(404,), body=True)
)
def update_product(product_id: UUID, changes: ProductUpdate) -> ProductView:
    return runtime.product_service().update(current_user(app), product_id, changes)


@app.delete(
    "/products/<product_id>",
    responses={
        **documented(204, "Deleted", refusals=(404, 409)),
        202: {
            "description": "Live somewhere, and `delist=true`: deleted once these jobs have delisted it",
            "content": {"application/json": {"model": Delisting}},
        },
    },
)
def delete_product(product_id: UUID, delist: bool = False) -> Response[Delisting | None]:
    """Delete the product (204). A product live on a marketplace is refused (409 `product_listed`, naming the
    listings) unless `delist=true`: its listings are then delisted first (202, the delete jobs) and the
    product is deleted once they are."""
    delisting = runtime.product_removal().delete(current_user(app), product_id, delist=delist)
    if delisting is None:
        return Response(status_code=204)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=delisting)


@app.get("/products/<product_id>/sales", responses=documented(200, "A page of its sales", SalePage, refusals=(404,)))
def list_product_sales(
    product_id: UUID,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> SalePage:
    """The product's sales, newest first: where and when it sold, when crosslist found out, and what was done
    on its other marketplaces (each action's job status, read live); page on with `next_cursor`."""
    return runtime.order_service().sales(current_user(app), product_id, cursor=cursor, limit=limit)


@app.get("/settings", responses=documented(200, "The caller's settings", UserSettingsView))
def get_settings() -> UserSettingsView:
    return runtime.user_settings_service().get(current_user(app))


@app.put("/settings", responses=documented(200, "The caller's settings, changed", UserSettingsView, body=True))
def update_settings(settings: UserSettingsUpdate) -> UserSettingsView:
    """`auto_delist: false` stops sales from delisting elsewhere (they are still logged)."""
    return runtime.user_settings_service().update(current_user(app), settings)


@app.put(
    "/webhooks",
    responses={
        **documented(200, "Replaced: `secret` is null unless `rotate_secret`", WebhookEndpointSaved, body=True),
        201: {
            "description": "Created: `secret` is shown this once",
            "content": {"application/json": {"model": WebhookEndpointSaved}},
        },
    },
)
def put_webhook(endpoint: WebhookEndpointPut) -> Response[WebhookEndpointSaved]:
    """Create or replace the caller's webhook endpoint (one per user): where the `events` are POSTed, signed as
    Standard Webhooks sign them. A URL that is not https on a public host is refused (422
    `webhook_url_not_allowed`: a private, loopback, link-local or metadata address, literal or resolved), as is a
    host with no address (422 `webhook_url_unresolvable`); an unknown event type or none at all is a 422
    `invalid_request`. Creating answers the signing secret, once; replacing keeps it unless `rotate_secret`."""
    saved, created = runtime.webhook_endpoints().put(current_user(app), endpoint)
    return Response(status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=saved)


@app.get(
    "/webhooks",
    responses=documented(200, "The caller's endpoint, without its secret", WebhookEndpointView, refusals=(404,)),
)
def get_webhook() -> WebhookEndpointView:
    return runtime.webhook_endpoints().get(current_user(app))


@app.delete("/webhooks", responses=documented(204, "Deleted, with its delivery log", refusals=(404,)))
def delete_webhook() -> Response[None]:
    """Delete the endpoint: nothing more is sent to it (not even the deliveries still being retried)."""
    runtime.webhook_endpoints().delete(current_user(app))
    return Response(status_code=204)


@app.get("/webhooks/deliveries", responses=documented(200, "A page of the delivery log", WebhookDeliveryPage))
def list_webhook_deliveries(
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> WebhookDeliveryPage:
    """The endpoint's deliveries, newest first (kept 30 days): each event, its attempts and where it stands;
    page on with `next_cursor`."""
    return runtime.webhook_endpoints().deliveries(current_user(app), cursor=cursor, limit=limit)


@app.post(
    "/webhooks/test",
    responses={
        **documented(202, "Queued: sent within seconds, then logged as any delivery", WebhookTestSent, refusals=(404,))
    },
)
def send_test_webhook() -> Response[WebhookTestSent]:
    """Send a `webhook.test` event to the endpoint, signed and retried as any event (404 without an endpoint)."""
    sent = runtime.webhook_endpoints().send_test(current_user(app))
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=sent)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
