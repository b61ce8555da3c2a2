"""HTTP API: the caller's product catalogue, each product's sales (what auto-delist did), and the caller's
settings."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.api import current_user, make_resolver
from crosslist.orders.schemas import SaleView, UserSettingsUpdate, UserSettingsView
from crosslist.products.schemas import MAX_LIST_OFFSET, ProductCreate, ProductPage, ProductUpdate, ProductView

logger = Logger()
app = make_resolver()


@app.post("/products")
def create_product(product: ProductCreate) -> Response[ProductView]:
    created = runtime.product_service().create(current_user(app), product)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=created,
        headers={"Location": f"/products/{created.id}"},
    )


@app.get("/products")
def list_products(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET)] = 0,
) -> ProductPage:
    """The caller's products, newest first. Page on with `next_offset`: a page can hold fewer than `limit`."""
    return runtime.product_service().list(current_user(app), limit, offset)


@app.get("/products/<product_id>")
def get_product(product_id: UUID) -> ProductView:
    return runtime.product_service().get(current_user(app), product_id)


@app.patch("/products/<product_id>")
def update_product(product_id: UUID, changes: ProductUpdate) -> ProductView:
    return runtime.product_service().update(current_user(app), product_id, changes)


@app.delete("/products/<product_id>")
def delete_product(product_id: UUID) -> Response[None]:
    runtime.product_service().delete(current_user(app), product_id)
    return Response(status_code=204)


@app.get("/products/<product_id>/sales")
def list_product_sales(product_id: UUID, limit: Annotated[int, Query(ge=1, le=100)] = 50) -> list[SaleView]:
    """The product's sales, newest first: where and when it sold, when crosslist found out, and what was done
    on its other marketplaces (each action's job status, read live)."""
    return runtime.order_service().sales(current_user(app), product_id, limit=limit)


@app.get("/settings")
def get_settings() -> UserSettingsView:
    return runtime.user_settings_service().get(current_user(app))


@app.put("/settings")
def update_settings(settings: UserSettingsUpdate) -> UserSettingsView:
    """`auto_delist: false` stops sales from delisting elsewhere (they are still logged)."""
    return runtime.user_settings_service().update(current_user(app), settings)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
