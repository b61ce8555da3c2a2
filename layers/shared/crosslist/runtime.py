"""The composition root: adapters built once per Lambda instance and reused across invocations.

Handlers ask this module for what they need; tests replace a factory (e.g. `gateway`) with a fake.
Every function imports this module, so at import it loads only what every function's cold start
needs in AWS (boto3, for DynamoDB, SQS or Secrets Manager, and the settings). Each factory imports
what it builds: the WebSocket handlers never load the database side (their cold start is on the
user's path), oauth_refresh never loads the WebSocket side nor the JWT library.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import boto3

from crosslist import settings as _settings
from crosslist.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sqlalchemy.orm import Session, sessionmaker

    from crosslist.auth.connect import Connector
    from crosslist.auth.credentials import CredentialStore
    from crosslist.auth.oauth_clients import HttpTokenEndpoint, OAuthApp
    from crosslist.auth.tokens import TokenVerifier
    from crosslist.auth.vault import KmsKeys
    from crosslist.due_times import DueTimes, DynamoDueTimeStore, Watched
    from crosslist.events.dispatch import Dispatcher
    from crosslist.imports.service import ImportService
    from crosslist.jobs.engine import LaneEngine
    from crosslist.jobs.lanes import PostgresLaneStore
    from crosslist.jobs.queue import CarriedReply, SqsJobQueue, SqsTimerQueue
    from crosslist.jobs.service import JobService
    from crosslist.jobs.session import SessionState
    from crosslist.jobs.sweeper import Sweeper
    from crosslist.marketplaces.api import MarketplaceApi
    from crosslist.marketplaces.seller import SellerSettingsService
    from crosslist.notifications.ebay_accounts import EbayAccounts
    from crosslist.notifications.ebay_api import EbayAppApi
    from crosslist.notifications.service import EbayEndpoint, PushNotifications
    from crosslist.orders.service import OrderService, UserSettingsService
    from crosslist.products.removal import ProductRemoval
    from crosslist.products.service import ProductService
    from crosslist.realtime.commands import PendingCommandStore
    from crosslist.realtime.connections import ConnectionStore
    from crosslist.realtime.gateway import ConnectionGateway
    from crosslist.realtime.notifier import Notifier
    from crosslist.realtime.sessions import PluginResults
    from crosslist.sync_rules.scheduler import SyncScheduler
    from crosslist.sync_rules.service import SyncRuleService
    from crosslist.webhooks.delivery import WebhookDeliverer
    from crosslist.webhooks.endpoints import WebhookEndpoints
    from crosslist.webhooks.queue import SqsDeliveryQueue
    from crosslist.workflows.base import HttpCall, Reply

SECRET_MAX_AGE_SECONDS = 300
EBAY_SETUP_TIMEOUT_SECONDS = 5.0  # each call subscribing a connected eBay account to its orders


@cache
def settings() -> Settings:
    return Settings()


# The modules below this one read the settings through crosslist.settings.current(): the name is looked up at
# each call, so a test that replaces `settings` here is seen there too.
_settings.provide(lambda: settings())  # noqa: PLW0108  # looked up at each call


@cache
def sessions() -> sessionmaker[Session]:
    from crosslist.db.engine import make_engine, make_session_factory

    factory = make_session_factory(make_engine(database_url()))
    _announce_due_times(factory)
    return factory


def _announce_due_times(factory: sessionmaker[Session]) -> None:
    """What a transaction makes due sooner is written to the DueTimes table before it commits (crosslist.due_times)."""
    store = _due_time_store()
    if store is not None:
        from crosslist.due_times import announce_before_commit

        announce_before_commit(factory, store)


@cache
def _due_time_store() -> DynamoDueTimeStore | None:
    table = settings().due_times_table
    if not table:
        return None
    from crosslist.due_times import DynamoDueTimeStore

    return DynamoDueTimeStore(_dynamodb().Table(table))


def due_times(watched: Watched) -> DueTimes | None:
    """Whether a periodic function must look at PostgreSQL (crosslist.due_times); None: no DueTimes table, it
    always looks."""
    store = _due_time_store()
    if store is None:
        return None
    from crosslist.due_times import DueTimes

    return DueTimes(store, watched, settle_seconds=settings().due_times_settle_seconds)


def database_url() -> str:
    """The SQLAlchemy URL of PostgreSQL: DATABASE_URL, else the Secrets Manager secret DATABASE_SECRET_ARN
    (the sessions and the migration function read it the same way)."""
    config = settings()
    if config.database_url is not None:
        return config.database_url.get_secret_value()
    if config.database_secret_arn is not None:
        return _secret(config.database_secret_arn)
    raise RuntimeError("set DATABASE_URL or DATABASE_SECRET_ARN")


@cache
def token_verifier() -> TokenVerifier:
    from crosslist.auth.tokens import TokenVerifier

    config = settings()
    if config.jwt_algorithm == "RS256":
        if config.jwt_jwks_url is None:
            raise RuntimeError("JWT_ALGORITHM=RS256 needs JWT_JWKS_URL")
        return TokenVerifier.rs256(config.jwt_jwks_url, config.jwt_audience, config.jwt_issuer)
    if config.jwt_secret is not None:
        secret = config.jwt_secret.get_secret_value()
    elif config.jwt_secret_arn is not None:
        secret = _secret(config.jwt_secret_arn)
    else:
        raise RuntimeError("JWT_ALGORITHM=HS256 needs JWT_SECRET or JWT_SECRET_ARN")
    return TokenVerifier.hs256(secret, config.jwt_audience, config.jwt_issuer)


@cache
def credential_store() -> CredentialStore:
    from crosslist.auth.credentials import CredentialStore
    from crosslist.auth.vault import KmsKeys

    key_id = settings().credentials_key_id
    if not key_id:
        raise RuntimeError("set CREDENTIALS_KEY_ID (the KMS key sealing OAuth tokens)")
    return CredentialStore(sessions(), KmsKeys(boto3.client("kms"), key_id))


def oauth_app(marketplace: str) -> OAuthApp | None:
    """The app crosslist is registered as with the marketplace (client id and secret, redirect URI,
    scopes: a Secrets Manager secret); None when none is registered here (its secret's ARN unset)."""
    from crosslist.auth.oauth_clients import OAuthApp

    config = settings()
    known: Literal["ebay", "etsy"]
    if marketplace == "ebay":
        known, arn = "ebay", config.ebay_oauth_secret_arn
        token_url, authorize_url = config.ebay_oauth_token_url, config.ebay_authorize_url
    elif marketplace == "etsy":
        known, arn = "etsy", config.etsy_oauth_secret_arn
        token_url, authorize_url = config.etsy_oauth_token_url, config.etsy_authorize_url
    else:
        return None
    if not arn:
        return None
    app = json.loads(_secret(arn))
    return OAuthApp(
        known,
        str(app["client_id"]),
        str(app["client_secret"]),
        token_url,
        scopes=str(app.get("scopes", "")),
        authorize_url=authorize_url,
        redirect_uri=str(app.get("redirect_uri", "")),
    )


def token_endpoint(marketplace: str) -> HttpTokenEndpoint | None:
    """The marketplace's OAuth token endpoint for the registered app; None when there is none."""
    from crosslist.auth.oauth_clients import HttpTokenEndpoint

    app = oauth_app(marketplace)
    return None if app is None else HttpTokenEndpoint(app, _http_client())


def connector() -> Connector:
    from crosslist.auth.connect import Connector
    from crosslist.auth.oauth_clients import HttpTokenEndpoint

    return Connector(
        sessions(),
        credential_store,
        oauth_app,
        lambda app: HttpTokenEndpoint(app, _http_client()),
        web_app_origins=settings().web_app_origins,
        on_connected=account_connected,
        before_disconnect=account_disconnecting,
    )


def account_connected(user_id: str, marketplace: str) -> None:
    """The user connected the account (again): what identifies it is recorded (Etsy's shop), then the jobs
    waiting for it carry on."""
    from crosslist.jobs.lanes import PostgresLaneStore

    try:
        seller_settings().account_connected(user_id, marketplace)
    except Exception:  # the credential is stored: the settings read the account again when next opened
        from aws_lambda_powertools import Logger

        Logger(child=True).exception("the account's shop was not recorded", extra={"marketplace": marketplace})
    if marketplace == "ebay":  # who the account is (an account deletion names it), and its sales pushed at once
        ebay_accounts().connected(user_id)
    if PostgresLaneStore(sessions()).resume_after_reauth(user_id, marketplace):
        job_queue().wake(user_id, marketplace, cause="reconnected")


def account_disconnecting(user_id: str, marketplace: str) -> None:
    """The user disconnects the account: what the marketplace keeps for crosslist (eBay's orders subscription) goes
    while the token still works."""
    if marketplace == "ebay":
        ebay_accounts().disconnecting(user_id)


def ebay_accounts() -> EbayAccounts:
    """Who each connected eBay account is, and its sales pushed to crosslist (crosslist.notifications)."""
    from crosslist.notifications.ebay_accounts import EbayAccounts, PushSetup

    endpoint = ebay_endpoint()
    app_api = ebay_app_api()
    push = None
    if endpoint is not None and app_api is not None:
        push = PushSetup(lambda: app_api.destination_id(endpoint.url, endpoint.verification_token))
    return EbayAccounts(
        sessions(),
        lambda user, path: marketplace_api().read(user, "ebay", path, base_url=settings().ebay_identity_api_base),
        lambda user, call: marketplace_api()(user, "ebay", call, EBAY_SETUP_TIMEOUT_SECONDS),
        push,
    )


@cache
def ebay_app_api() -> EbayAppApi | None:
    """eBay's Notification API as the app itself (its public keys, crosslist's destination); None without an app."""
    from crosslist.auth.oauth_clients import HttpTokenEndpoint
    from crosslist.notifications.ebay_api import EbayAppApi

    app = oauth_app("ebay")
    if app is None:
        return None
    return EbayAppApi(HttpTokenEndpoint(app, _http_client()), settings().ebay_api_base, _http_client())


def ebay_endpoint() -> EbayEndpoint | None:
    """crosslist's notification endpoint as registered with eBay; None when it is not configured here."""
    from crosslist.notifications.service import EbayEndpoint

    config = settings()
    if not config.ebay_notification_endpoint:
        return None
    if config.ebay_verification_token is not None:
        token = config.ebay_verification_token.get_secret_value()
    elif config.ebay_verification_token_secret_arn:
        token = _secret(config.ebay_verification_token_secret_arn).strip()
    else:
        return None
    return EbayEndpoint(config.ebay_notification_endpoint, token)


def etsy_webhook_secret() -> str | None:
    """The Etsy app's webhook signing secret (whsec_…); None without commercial access (webhooks off)."""
    config = settings()
    if not config.etsy_webhooks:
        return None
    if config.etsy_webhook_secret is not None:
        return config.etsy_webhook_secret.get_secret_value()
    if config.etsy_webhook_secret_arn:
        return _secret(config.etsy_webhook_secret_arn).strip()
    return None


@cache
def push_notifications() -> PushNotifications:
    """What eBay and Etsy push, verified and acted on (functions/notifications)."""
    from crosslist.jobs.service import JobService
    from crosslist.notifications.imports import OrdersImports
    from crosslist.notifications.public_keys import EbayPublicKeys
    from crosslist.notifications.service import PushNotifications
    from crosslist.orders.delist import AUTO_DELIST

    app_api = ebay_app_api()
    jobs = JobService(sessions(), job_queue(), reactions=AUTO_DELIST)
    return PushNotifications(
        sessions(),
        OrdersImports(jobs, job_queue()),
        job_queue(),
        AUTO_DELIST,
        ebay_keys=EbayPublicKeys(app_api.public_key) if app_api is not None else None,
        ebay_endpoint=ebay_endpoint,
        etsy_secret=etsy_webhook_secret,
    )


@cache
def marketplace_api() -> MarketplaceApi:
    """eBay's and Etsy's REST APIs, called as the user (only the functions allowed the KMS key use it)."""
    from crosslist.auth.oauth_clients import HttpTokenEndpoint
    from crosslist.marketplaces.api import MarketplaceApi

    config = settings()
    return MarketplaceApi(
        credential_store,
        oauth_app,
        lambda app: HttpTokenEndpoint(app, _http_client()),
        {"ebay": config.ebay_api_base, "etsy": config.etsy_api_base},
    )


@cache
def _http_client() -> Any:
    import httpx

    return httpx.Client()


def _secret(arn: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS))


@cache
def _dynamodb() -> Any:
    return boto3.resource("dynamodb")


@cache
def connections() -> ConnectionStore:
    from crosslist.realtime.connections import ConnectionStore

    return ConnectionStore(_dynamodb().Table(settings().connections_table))


@cache
def commands() -> PendingCommandStore:
    from crosslist.realtime.commands import PendingCommandStore

    return PendingCommandStore(_dynamodb().Table(settings().pending_commands_table))


@cache
def gateway() -> ConnectionGateway:
    from crosslist.realtime.gateway import ApiGatewayManagementGateway

    endpoint = settings().websocket_endpoint
    if endpoint is None:
        raise RuntimeError("set WEBSOCKET_ENDPOINT to the WebSocket API's management endpoint")
    return ApiGatewayManagementGateway(boto3.client("apigatewaymanagementapi", endpoint_url=endpoint))


@cache
def job_queue() -> SqsJobQueue:
    from crosslist.jobs.queue import SqsJobQueue

    queue_url = settings().jobs_queue_url
    if queue_url is None:
        raise RuntimeError("set JOBS_QUEUE_URL")
    return SqsJobQueue(boto3.client("sqs"), queue_url)


@cache
def timer_queue() -> SqsTimerQueue:
    from crosslist.jobs.queue import SqsTimerQueue

    queue_url = settings().timers_queue_url
    if queue_url is None:
        raise RuntimeError("set TIMERS_QUEUE_URL")
    return SqsTimerQueue(boto3.client("sqs"), queue_url)


@cache
def notifier() -> Notifier:
    from crosslist.realtime.notifier import Notifier

    return Notifier(connections(), gateway())


def product_service() -> ProductService:
    from crosslist.products.service import ProductService

    return ProductService(sessions())


def product_removal() -> ProductRemoval:
    from crosslist.products.removal import ProductRemoval

    return ProductRemoval(sessions(), job_queue())


def order_service() -> OrderService:
    from crosslist.orders.service import OrderService

    return OrderService(sessions())


def user_settings_service() -> UserSettingsService:
    from crosslist.orders.service import UserSettingsService

    return UserSettingsService(sessions())


def job_service() -> JobService:
    from crosslist.jobs.service import JobService
    from crosslist.orders.delist import AUTO_DELIST

    return JobService(sessions(), job_queue(), reactions=AUTO_DELIST, events=events())


def import_service() -> ImportService:
    from crosslist.imports.service import ImportService

    return ImportService(sessions(), job_service())


def lane_store() -> PostgresLaneStore:
    """The lanes, with auto-delist reacting to their jobs' ends and sales (crosslist.jobs.reactions)."""
    from crosslist.jobs.lanes import PostgresLaneStore
    from crosslist.orders.delist import AUTO_DELIST

    return PostgresLaneStore(sessions(), reactions=AUTO_DELIST)


@cache
def events() -> Dispatcher:
    """Delivers the outbox's events after their commit: the user's connections (the notifier), then the hooks:
    the outbound webhooks (a delivery for each subscribed endpoint) when this stack has their queue."""
    from crosslist.events.dispatch import BatchHook, Dispatcher

    batch_hooks: list[BatchHook] = []
    if settings().webhook_delivery_queue_url:
        from crosslist.webhooks.fan_out import WebhookFanOut

        batch_hooks.append(WebhookFanOut(sessions(), webhook_queue))
    return Dispatcher(
        sessions(), tell=lambda user_id, message: notifier().to_user(user_id, message), batch_hooks=batch_hooks
    )


@cache
def webhook_queue() -> SqsDeliveryQueue:
    from crosslist.webhooks.queue import SqsDeliveryQueue

    queue_url = settings().webhook_delivery_queue_url
    if queue_url is None:
        raise RuntimeError("set WEBHOOK_DELIVERY_QUEUE_URL")
    return SqsDeliveryQueue(boto3.client("sqs"), queue_url)


@cache
def _webhook_keys() -> KmsKeys:
    """Data keys sealing the webhooks' signing secrets: the credentials' KMS key, bound to the endpoint."""
    from crosslist.auth.vault import KmsKeys

    key_id = settings().credentials_key_id
    if not key_id:
        raise RuntimeError("set CREDENTIALS_KEY_ID (the KMS key sealing webhook signing secrets)")
    return KmsKeys(boto3.client("kms"), key_id, context="webhook_endpoint_id")


def webhook_endpoints() -> WebhookEndpoints:
    from crosslist.webhooks.endpoints import WebhookEndpoints

    return WebhookEndpoints(
        sessions(), keys=_webhook_keys, queue=webhook_queue, dev_origins=settings().dev_webhook_origins
    )


def webhook_deliverer() -> WebhookDeliverer:
    from crosslist.webhooks.delivery import RETRY_SECONDS, WebhookDeliverer

    config = settings()
    return WebhookDeliverer(
        sessions(),
        keys=_webhook_keys,
        queue=webhook_queue(),
        dev_origins=config.dev_webhook_origins,
        retry_seconds=config.webhook_retry_seconds or RETRY_SECONDS,
    )


@cache
def lane_engine() -> LaneEngine:
    from crosslist.jobs.engine import EngineConfig, LaneEngine

    return LaneEngine(
        lane_store(),
        commands=commands(),
        connections=connections(),
        gateway=gateway(),
        notifier=notifier(),
        jobs=job_queue(),
        timers=timer_queue(),
        config=EngineConfig.from_settings(settings()),
        http=_call_marketplace_api,
        photos=_hash_photos if settings().photo_matching else None,
        events=events(),
    )


def seller_settings() -> SellerSettingsService:
    from crosslist.marketplaces.seller import SellerSettingsService

    return SellerSettingsService(
        sessions(), lambda user, marketplace, path: marketplace_api().read(user, marketplace, path)
    )


def _call_marketplace_api(user_id: str, marketplace: str, call: HttpCall, timeout_seconds: float) -> Reply:
    # Made on the first eBay or Etsy call: a Vinted-only instance never loads httpx nor the KMS client.
    return marketplace_api()(user_id, marketplace, call, timeout_seconds)


def _hash_photos(user_id: str, urls: tuple[str, ...], timeout_seconds: float) -> dict[str, str | None]:
    # Imported by the first import's photo step only (Pillow, and httpcore's pinned transport).
    from crosslist.imports.photos import hash_photos
    from crosslist.marketplaces.image_fetch import fetch_image

    # The answer must be back before the step's own deadline: what is not hashed by then is left without a hash.
    return hash_photos(urls, lambda url: fetch_image(url).content, seconds=max(1.0, timeout_seconds - 2.0))


def sweeper(clock: Callable[[], datetime] | None = None) -> Sweeper:
    from crosslist.jobs.sweeper import Sweeper

    return Sweeper(lane_store(), job_queue(), due_times("lanes"), clock=clock, redeliver=events().redeliver)


def sync_scheduler(clock: Callable[[], datetime] | None = None) -> SyncScheduler:
    from crosslist.sync_rules.scheduler import SyncScheduler
    from crosslist.sync_rules.store import PostgresSyncRuleStore

    return SyncScheduler(
        PostgresSyncRuleStore(sessions()),
        connections().live_users,
        job_service(),
        clock=clock,
        due_times=due_times("sync_rules"),
    )


def sync_rule_service() -> SyncRuleService:
    from crosslist.sync_rules.service import SyncRuleService
    from crosslist.sync_rules.store import PostgresSyncRuleStore

    # A Vinted rule can run while the user has an open connection (their extension runs its calls).
    return SyncRuleService(PostgresSyncRuleStore(sessions()), lambda user_id: bool(connections().for_user(user_id)))


def session_state() -> SessionState:
    from crosslist.jobs.session import SessionState

    return SessionState(sessions(), notifier())


def plugin_results() -> PluginResults:
    from crosslist.realtime.sessions import PluginResults

    # The queue client is made only when it is needed (not for every message).
    return PluginResults(
        connections(),
        commands(),
        notifier(),
        request_session=lambda user, tab: job_queue().request_session(user, tab),
        wake=wake_lane,
        wake_later=lambda user, marketplace, due, cause, reply: timer_queue().wake_at(
            user, marketplace, due, cause=cause, reply=reply
        ),
    )


def wake_lane(user_id: str, marketplace: str, cause: str, reply: CarriedReply | None = None) -> None:
    job_queue().wake(user_id, marketplace, cause, reply)


def reset() -> None:
    """Forget every cached adapter (tests change the environment between cases)."""
    for factory in (
        settings,
        sessions,
        token_verifier,
        _dynamodb,
        _due_time_store,
        connections,
        commands,
        gateway,
        job_queue,
        timer_queue,
        notifier,
        events,
        lane_engine,
        marketplace_api,
        credential_store,
        _http_client,
        ebay_app_api,
        push_notifications,
        webhook_queue,
        _webhook_keys,
    ):
        factory.cache_clear()
