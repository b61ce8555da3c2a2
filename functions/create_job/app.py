"""HTTP API: create, list, read and cancel marketplace jobs, one at a time or in batches; what syncs and
order imports found; the sync rules that queue them; imports of the user's shops and their matches."""

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crosslist import runtime
from crosslist.api import current_user, documented, make_resolver
from crosslist.db.models import JobStatus
from crosslist.imports.schemas import ImportPage, ImportRequest, ImportView, MatchDecision, MatchPage, MatchView
from crosslist.jobs.schemas import (
    BatchCreated,
    BatchRequest,
    BatchView,
    JobPage,
    JobRequest,
    JobView,
    UnlinkedItems,
)
from crosslist.marketplaces import ActionCode, Marketplace
from crosslist.orders.schemas import OrderPage
from crosslist.sync_rules.schemas import ChangeSyncRulesRequest, SyncRules

logger = Logger()
metrics = Metrics()
app = make_resolver()


@app.post(
    "/jobs",
    responses={
        **documented(
            202,
            "Stored and queued; `Location` names it",
            JobView,
            refusals=(404, 409, 503),
            body=True,
        ),
        200: {
            "description": "This idempotency_key already created a job: that job, unchanged",
            "content": {"application/json": {"model": JobView}},
        },
    },
)
def create_job(request: Annotated[JobRequest, Body()]) -> Response[JobView]:
    """Run one action on one marketplace: 404 an unknown product; 409 a job of this product already active
    (`job_in_progress`, with `job_id`), already listed (`already_listed`), being deleted; 422 the product
    cannot be listed there as it is (`not_publishable`, `currency_mismatch`), settings or account missing
    (`seller_settings_missing` with `missing`, `marketplace_not_connected`), bad `params`; 503 stored but not
    queued (retry with the same `idempotency_key`)."""
    job, created = runtime.job_service().create(current_user(app), request)
    if created:
        metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=202 if created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=job,
        headers={"Location": f"/jobs/{job.id}"},
    )


@app.post(
    "/jobs/batch",
    responses=documented(202, "The batch; `Location` names it", BatchCreated, refusals=(503,), body=True),
)
def create_batch(request: Annotated[BatchRequest, Body()]) -> Response[BatchCreated]:
    """One job per product (≤ 500); products that cannot get a job are listed in `refused` with the reason
    (422 when none can)."""
    batch = runtime.job_service().create_batch(current_user(app), request)
    metrics.add_metric(name="JobsCreated", unit=MetricUnit.Count, value=batch.total_jobs)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=batch,
        headers={"Location": f"/batches/{batch.id}"},
    )


@app.get("/batches/<batch_id>", responses=documented(200, "The batch", BatchView, refusals=(404,)))
def get_batch(batch_id: UUID) -> BatchView:
    """The batch's jobs and how many are in each status."""
    return runtime.job_service().batch(current_user(app), batch_id)


@app.get("/jobs/<job_id>", responses=documented(200, "The job", JobView, refusals=(404,)))
def get_job(job_id: UUID) -> JobView:
    return runtime.job_service().get(current_user(app), job_id)


@app.get("/jobs", responses=documented(200, "A page of the caller's jobs", JobPage))
def list_jobs(  # keyword-only: each is a query parameter
    *,
    status: JobStatus | None = None,
    marketplace: Marketplace | None = None,
    action: ActionCode | None = None,
    product_id: UUID | None = None,
    batch_id: UUID | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> JobPage:
    """The caller's jobs, newest first, narrowed by each filter given; page on with `next_cursor`."""
    return runtime.job_service().list(
        current_user(app),
        status=status,
        marketplace=marketplace,
        action=action,
        product_id=product_id,
        batch_id=batch_id,
        cursor=cursor,
        limit=limit,
    )


@app.post(
    "/jobs/<job_id>/cancel", responses=documented(200, "The job, cancelled or stopping", JobView, refusals=(404, 409))
)
def cancel_job(job_id: UUID) -> JobView:
    """Cancel at once if the job has not started; a running job stops at its next step (`cancel_requested`).
    409 `job_ended`: it has already ended."""
    return runtime.job_service().cancel(current_user(app), job_id)


@app.post(
    "/imports",
    responses=documented(202, "The import; `Location` names it", ImportView, refusals=(409,), body=True),
)
def create_import(request: Annotated[ImportRequest, Body()]) -> Response[ImportView]:
    """Import the shops on these marketplaces: every listing becomes a product, or is linked to the product it surely
    is (the same SKU; a close title at the same price), or is proposed as a match when crosslist is unsure
    (`GET /imports/{id}/matches`); importing again makes nothing twice. One `import` job per marketplace, side by
    side. With `migrate_ebay`, eBay listings made on ebay.com are moved into eBay's Inventory API: **one-way**.
    409 `import_in_progress`: one of these shops is being imported; 422 an account not connected or settings
    missing."""
    started = runtime.import_service().create(current_user(app), request)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=started,
        headers={"Location": f"/imports/{started.id}"},
    )


@app.get("/imports", responses=documented(200, "The caller's latest imports", ImportPage))
def list_imports() -> ImportPage:
    """The 20 latest imports, newest first."""
    return runtime.import_service().list(current_user(app))


@app.get("/imports/<import_id>", responses=documented(200, "The import", ImportView, refusals=(404,)))
def get_import(import_id: UUID) -> ImportView:
    """Its jobs, its counts (live, page by page) and the listings skipped with their reasons."""
    return runtime.import_service().get(current_user(app), import_id)


@app.get("/imports/<import_id>/matches", responses=documented(200, "The uncertain matches", MatchPage, refusals=(404,)))
def list_matches(import_id: UUID) -> MatchPage:
    """Listings that may be one of the user's products (0.6 ≤ confidence < 0.9, or two products as close): each
    waits for `POST /imports/{id}/matches/{match_id}`. Most likely first."""
    return runtime.import_service().matches(current_user(app), import_id)


@app.post(
    "/imports/<import_id>/matches/<match_id>",
    responses=documented(200, "The match, settled", MatchView, refusals=(404, 409), body=True),
)
def decide_match(import_id: UUID, match_id: UUID, decision: Annotated[MatchDecision, Body()]) -> MatchView:
    """`accept: true` links the listing to the product; `false` makes a new product of it. Once: 409
    `match_decided` after; `product_listed_there` when the product got a listing there meanwhile."""
    return runtime.import_service().decide(current_user(app), import_id, match_id, decision)


@app.get("/marketplaces/<marketplace>/unlinked", responses=documented(200, "The unlinked listings", UnlinkedItems))
def list_unlinked(marketplace: Marketplace) -> UnlinkedItems:
    """Listings on the marketplace no product knows (as the latest sync found them): linkable."""
    return runtime.job_service().unlinked(current_user(app), marketplace)


@app.get("/orders", responses=documented(200, "A page of the caller's sales", OrderPage))
def list_orders(
    marketplace: Marketplace | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> OrderPage:
    """The caller's imported sales, newest first; page on with `next_cursor`."""
    return runtime.order_service().list(current_user(app), marketplace=marketplace, cursor=cursor, limit=limit)


@app.get("/sync-rules", responses=documented(200, "Every rule", SyncRules))
def list_sync_rules() -> SyncRules:
    """When a sync (`listings`) or an orders import (`orders`) is queued on each marketplace: every rule,
    the defaults included (orders every 15 minutes, listings every 60), with its last run and outcome."""
    return runtime.sync_rule_service().rules(current_user(app))


@app.put("/sync-rules", responses=documented(200, "Every rule, as changed", SyncRules, body=True))
def change_sync_rules(request: ChangeSyncRulesRequest) -> SyncRules:
    """Enable, disable or change the interval (≥ 5 minutes) of some rules; answers with every rule."""
    return runtime.sync_rule_service().change(current_user(app), request)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
