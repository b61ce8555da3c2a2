"""Tables in PostgreSQL. Every row a user owns carries user_id, and every query filters on it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonDict = dict[str, Any]
# JSONB in PostgreSQL; plain JSON elsewhere keeps the models importable without it.
JsonColumn = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {JsonDict: JsonColumn, datetime: DateTime(timezone=True)}


def _values(enum_class: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_class]


class JobStatus(enum.StrEnum):
    PENDING = "pending"  # queued in its lane, not started
    RUNNING = "running"  # holds its lane: a step is in progress or the next one is coming
    WAITING = "waiting"  # a backoff or a paused lane (wait_reason, wait_until)
    WAITING_FOR_PLUGIN = "waiting_for_plugin"  # no tab of the user can execute Vinted commands (wait_reason)
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.WAITING, JobStatus.WAITING_FOR_PLUGIN)
# Jobs the user may cancel at once: none of them has a marketplace call in flight.
IDLE_JOB_STATUSES = (JobStatus.PENDING, JobStatus.WAITING, JobStatus.WAITING_FOR_PLUGIN)
ACTIVE_PRODUCT_JOB_INDEX = "uq_marketplace_jobs_active_product"


class ListingStatus(enum.StrEnum):
    """A listing's state on its marketplace (workflows.base.ListingState), as the last job or sync saw it."""

    ACTIVE = "active"
    SOLD = "sold"
    HIDDEN = "hidden"
    RESERVED = "reserved"
    CLOSED = "closed"  # closed on the marketplace, not sold
    DELETED = "deleted"


class CredentialStatus(enum.StrEnum):
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Product(Timestamps, Base):
    __tablename__ = "products"
    __table_args__ = (Index("ix_products_user_created", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    brand: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(50))
    condition: Mapped[str | None] = mapped_column(String(50))
    color: Mapped[str | None] = mapped_column(String(50))
    image_urls: Mapped[list[str]] = mapped_column(JsonColumn, default=list)
    quantity: Mapped[int] = mapped_column(default=1)
    sku: Mapped[str | None] = mapped_column(String(100))
    # Per-marketplace attributes, e.g. {"vinted": {"brand_id": 53, "catalog_id": 1839, ...}}.
    marketplace_attributes: Mapped[JsonDict] = mapped_column(default=dict)
    # DELETE /products/{id}?delist=true: the product is deleted once its listings are delisted.
    delete_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MarketplaceActionType(Base):
    __tablename__ = "marketplace_action_types"
    __table_args__ = (UniqueConstraint("marketplace", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    marketplace: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    default_priority: Mapped[int]
    max_attempts: Mapped[int]
    timeout_ms: Mapped[int]


class MarketplaceBatch(Timestamps, Base):
    __tablename__ = "marketplace_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    marketplace: Mapped[str] = mapped_column(String(20))
    action_code: Mapped[str] = mapped_column(String(40))
    total_jobs: Mapped[int] = mapped_column(default=0)


class MarketplaceJob(Base):
    __tablename__ = "marketplace_jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_marketplace_jobs_user_idempotency_key"),
        Index("ix_marketplace_jobs_user_created", "user_id", "created_at"),
        Index("ix_marketplace_jobs_status_next_attempt", "status", "next_attempt_at"),
        # One active job per product and marketplace, whatever its action: two requests passing the
        # service's checks together cannot both queue a publish (or an update, delete, relist) of one listing.
        Index(
            ACTIVE_PRODUCT_JOB_INDEX,
            "user_id",
            "marketplace",
            "product_id",
            unique=True,
            postgresql_where=text(
                "product_id IS NOT NULL AND status IN ('pending', 'running', 'waiting', 'waiting_for_plugin')"
            ),
        ),
        # The lane's next job: highest priority (1), then oldest.
        Index(
            "ix_marketplace_jobs_lane_queue",
            "user_id",
            "marketplace",
            "priority",
            "created_at",
            postgresql_where=text("status IN ('pending', 'waiting', 'waiting_for_plugin')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    marketplace: Mapped[str] = mapped_column(String(20))
    action_code: Mapped[str] = mapped_column(String(40))
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("marketplace_batches.id", ondelete="SET NULL"))
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, name="job_status", values_callable=_values), default=JobStatus.PENDING
    )
    priority: Mapped[int] = mapped_column(default=5)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    step_timeout_ms: Mapped[int] = mapped_column(default=60_000)
    current_step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int] = mapped_column(default=0)
    accumulated_data: Mapped[JsonDict] = mapped_column(default=dict)
    input: Mapped[JsonDict] = mapped_column(default=dict)
    result: Mapped[JsonDict | None]
    error: Mapped[JsonDict | None]  # {"code": ..., "message": ...}
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    next_attempt_at: Mapped[datetime | None]
    # Why a job waits (pacing, backoff, no_plugin, plugin_not_ready, plugin_logged_out, challenge,
    # rate_limited), until when if known, and since when it waits for the browser extension.
    wait_reason: Mapped[str | None] = mapped_column(String(40))
    wait_until: Mapped[datetime | None]
    waiting_since: Mapped[datetime | None]
    # A write of this step may have landed although its reply was lost: look before sending it again.
    unconfirmed_step: Mapped[int | None]
    # The user asked to cancel while the job was running: it stops at its next step boundary.
    cancel_requested_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class JobLane(Base):
    """One user on one marketplace: its jobs run one at a time, one marketplace call in flight at most.

    Only process_job writes a lane, under a row lock, so its wake-ups (results, timers, connections,
    the sweeper) never race. `wake_at` is when the lane must be looked at next at the latest: the sweeper
    wakes a lane whose wake-up is overdue (a lost timer or message).
    """

    __tablename__ = "job_lanes"
    __table_args__ = (Index("ix_job_lanes_wake_at", "wake_at", postgresql_where=text("wake_at IS NOT NULL")),)

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    marketplace: Mapped[str] = mapped_column(String(20), primary_key=True)
    # The started job holding the lane until it ends.
    active_job_id: Mapped[uuid.UUID | None]
    # The call awaiting its reply: {request_id, job_id, step, step_index, kind, repeatable, verifying,
    # connection_id, account_id, deadline}, or {..., http: true} for a direct eBay/Etsy call.
    in_flight: Mapped[JsonDict | None]
    pacing: Mapped[JsonDict] = mapped_column(default=dict)
    paused_until: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(40))
    # Throttles seen today, for the doubling pause: {"day": "2026-11-24", "count": 2}.
    throttles: Mapped[JsonDict] = mapped_column(default=dict)
    wake_at: Mapped[datetime | None]
    # The lane's timers in the TimersQueue (due times, epoch ms): a wait due no earlier than one of them
    # sets none, the lane is woken first anyway.
    timers: Mapped[list[int]] = mapped_column(JsonColumn, default=list)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


# A listing the marketplace shows (a buyer can find it, or it is on hold for one): what may be sold twice.
LIVE_LISTING_STATUSES = ("active", "hidden", "reserved")


class MarketplaceListing(Timestamps, Base):
    __tablename__ = "marketplace_listings"
    __table_args__ = (
        UniqueConstraint("user_id", "product_id", "marketplace"),
        # One marketplace item is live on one product at most: two would overwrite each other's listing.
        Index(
            "uq_marketplace_listings_live_item",
            "user_id",
            "marketplace",
            "external_id",
            unique=True,
            postgresql_where=text("status IN ('active', 'hidden', 'reserved')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[ListingStatus] = mapped_column(
        Enum(ListingStatus, name="listing_status", values_callable=_values), default=ListingStatus.ACTIVE
    )
    # The product's image URLs the listing's photos were uploaded from: an update re-uploads only when
    # the product's photos changed. Null for listings older than this column.
    image_urls: Mapped[list[str] | None] = mapped_column(JsonColumn)
    last_synced_at: Mapped[datetime | None]


class OAuthCredential(Timestamps, Base):
    __tablename__ = "oauth_credentials"
    __table_args__ = (UniqueConstraint("user_id", "marketplace"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    marketplace: Mapped[str] = mapped_column(String(20))
    # Tokens are stored encrypted by the application (crosslist.auth.vault): AES-GCM under a data key of
    # this credential's own, itself encrypted by KMS. The database never sees a token in clear.
    access_token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    data_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Goes up with every refresh: a caller that waited for another's refresh sees it happened.
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    scopes: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime | None]
    status: Mapped[CredentialStatus] = mapped_column(
        Enum(CredentialStatus, name="credential_status", values_callable=_values),
        default=CredentialStatus.ACTIVE,
    )


class Order(Base):
    """A sale on a marketplace, imported once (per user, marketplace and the marketplace's order id)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("user_id", "marketplace", "external_order_id", name="uq_orders_external"),
        Index("ix_orders_user_sold", "user_id", "sold_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    marketplace: Mapped[str] = mapped_column(String(20))
    external_order_id: Mapped[str] = mapped_column(String(100))
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    item_ids: Mapped[list[str]] = mapped_column(JsonColumn, default=list)  # the marketplace's item ids
    title: Mapped[str] = mapped_column(String(500))
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    buyer: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(40))
    sold_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OAuthState(Base):
    """An authorization a user started (GET /marketplaces/{m}/connect): completed once, by that user,
    before it expires (POST /marketplaces/{m}/connect)."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256: the state is a secret
    user_id: Mapped[str] = mapped_column(String(128))
    marketplace: Mapped[str] = mapped_column(String(20))
    code_verifier: Mapped[str | None] = mapped_column(String(128))  # PKCE (Etsy)
    # The web app page the callback sends the browser back to (an allowed origin, checked when stored).
    return_to: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SellerSettings(Base):
    """What the user's eBay or Etsy jobs need beyond the product (eBay: business policies and the
    merchant location; Etsy: the shop, its shipping profile and readiness state)."""

    __tablename__ = "seller_settings"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    marketplace: Mapped[str] = mapped_column(String(20), primary_key=True)
    settings: Mapped[JsonDict] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class SyncRule(Base):
    """When the scheduler queues a user's listings sync or orders import on a marketplace
    (crosslist.sync_rules). A user without a row has the defaults: the row is written when the scheduler
    first runs the rule or the user changes it."""

    __tablename__ = "sync_rules"
    __table_args__ = (
        CheckConstraint("kind IN ('listings', 'orders')", name="ck_sync_rules_kind"),
        CheckConstraint("interval_minutes IS NULL OR interval_minutes >= 5", name="ck_sync_rules_min_interval"),
    )

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    marketplace: Mapped[str] = mapped_column(String(20), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    interval_minutes: Mapped[int | None]  # None: the kind's default (it follows the code if that changes)
    last_run_at: Mapped[datetime | None]  # the scheduler tick that last queued (or tried to queue) its job
    last_outcome: Mapped[JsonDict | None]  # {code, at, job_id?, reason?, message?}
    last_job_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class UserSettings(Base):
    """A user's choices for crosslist as a whole. A user without a row has the defaults."""

    __tablename__ = "user_settings"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # A sale on one marketplace delists the product on the others, or lowers their quantity (crosslist.orders.delist).
    auto_delist: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # A sync that finds a newer second live item of a product removes it (crosslist.orders.reconcile).
    remove_duplicates: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Sale(Base):
    """A product sold on a marketplace, once per imported order: what auto-delist started from. Its
    SaleActions say what was done about the product's listings on the other marketplaces."""

    __tablename__ = "sales"
    __table_args__ = (
        UniqueConstraint("order_id", name="uq_sales_order"),
        Index("ix_sales_product_sold", "user_id", "product_id", "sold_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(20))  # where it sold
    external_order_id: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int]
    sold_at: Mapped[datetime]
    detected_at: Mapped[datetime]  # when an import found it: sold_at to here is the delay polling costs


class SaleAction(Base):
    """What a sale did on one other marketplace of its product. The outcome is its job's, read live; an
    action without a job of its own says what became of it in `outcome`."""

    __tablename__ = "sale_actions"
    __table_args__ = (
        UniqueConstraint("sale_id", "marketplace", name="uq_sale_actions_sale_marketplace"),
        # Every job that ends looks for the actions waiting for it: only those are indexed.
        Index("ix_sale_actions_waiting", "waiting_for_job_id", postgresql_where=text("outcome = 'waiting'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sale_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(128))
    marketplace: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))  # delete, update_quantity or none
    reason: Mapped[str | None] = mapped_column(String(60))  # why none, why failed, why waiting
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("marketplace_jobs.id", ondelete="SET NULL"))
    # The product's started job on that marketplace, which the action's job follows once it ends.
    waiting_for_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("marketplace_jobs.id", ondelete="SET NULL"))
    # Without a job of its own: waiting (for waiting_for_job_id to end), skipped or failed.
    outcome: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class OutboxEvent(Base):
    """A domain event, stored in the transaction of the change it tells of (crosslist.events.outbox), until
    the dispatcher has delivered it (`dispatched_at`), and for a while after."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The sweeper looks for the undispatched ones only; the dispatcher deletes by age the dispatched ones.
        Index("ix_outbox_undispatched", "created_at", postgresql_where=text("dispatched_at IS NULL")),
        Index("ix_outbox_dispatched_at", "dispatched_at", postgresql_where=text("dispatched_at IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[JsonDict] = mapped_column(JsonColumn)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    dispatched_at: Mapped[datetime | None]


class MarketplaceAccount(Base):
    """Who a user is on a marketplace account they connected (eBay: its immutable user id, read from the Commerce
    Identity API at connection), so a notification naming that account finds its crosslist users, and whether the
    marketplace pushes the account's orders to crosslist (crosslist.notifications)."""

    __tablename__ = "marketplace_accounts"
    __table_args__ = (Index("ix_marketplace_accounts_account", "marketplace", "account_id"),)

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    marketplace: Mapped[str] = mapped_column(String(20), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100))
    # The marketplace's subscription of this account's orders to crosslist's endpoint (eBay: ORDER_CONFIRMATION).
    push_subscription_id: Mapped[str | None] = mapped_column(String(100))
    push_status: Mapped[str] = mapped_column(String(20), default="off")  # subscribed, failed, off
    push_error: Mapped[str | None] = mapped_column(String(300))  # why it failed, for the user
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ReceivedNotification(Base):
    """A push notification acted on (eBay's notificationId, Etsy's webhook-id), kept a while so that the same one
    delivered again, or replayed, is acted on once (crosslist.notifications.inbox)."""

    __tablename__ = "received_notifications"
    __table_args__ = (Index("ix_received_notifications_received_at", "received_at"),)

    source: Mapped[str] = mapped_column(String(20), primary_key=True)  # ebay, etsy
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


# An Etsy order.paid names its shop: which users hold that shop (crosslist.notifications). An eBay user who deleted
# their account is anonymised as the buyer of the orders naming them.
Index(
    "ix_seller_settings_etsy_shop",
    SellerSettings.settings["shop_id"].as_string(),
    postgresql_where=SellerSettings.marketplace == "etsy",
)
Index("ix_orders_ebay_buyer", Order.buyer, postgresql_where=text("marketplace = 'ebay' AND buyer IS NOT NULL"))


class WebhookEndpoint(Timestamps, Base):
    """Where a user's own backend is sent the events it subscribed to (crosslist.webhooks): one per user. The
    signing secret is sealed as the OAuth tokens are (crosslist.auth.vault: AES-GCM under a data key of this
    endpoint's own, itself encrypted by KMS); it is shown once, when made, and never read back by the API."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("user_id", name="uq_webhook_endpoints_user"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JsonColumn)  # the event types it subscribed to
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    data_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)


class WebhookDelivery(Base):
    """One event for one endpoint: its attempts and where they stand (crosslist.webhooks.delivery). An event
    delivered again by the sweeper never makes a second one (uq_webhook_deliveries_event_endpoint)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
        CheckConstraint("state IN ('pending', 'delivered', 'retrying', 'failed')", name="ck_webhook_deliveries_state"),
        # The user's log, newest first (keyset pages), and its old rows deleted by age.
        Index("ix_webhook_deliveries_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID]  # the outbox event's id (a test event's own)
    event_type: Mapped[str] = mapped_column(String(64))
    event_at: Mapped[datetime]  # when the event happened: the body's `timestamp`, the same on every attempt
    data: Mapped[JsonDict] = mapped_column(JsonColumn)  # the body's `data`
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


class Import(Base):
    """A user's import of their shops (POST /imports): an `import` job per marketplace, its listings below."""

    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_user_created", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(128))
    # marketplace -> its import job's id
    jobs: Mapped[JsonDict] = mapped_column(default=dict)
    migrate_ebay: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ImportedListing(Base):
    """A listing an import read, once per item ever (so importing twice creates nothing): what became of it."""

    __tablename__ = "imported_listings"
    __table_args__ = (
        UniqueConstraint("user_id", "marketplace", "external_id", name="uq_imported_listings_item"),
        Index("ix_imported_listings_import", "import_id", "decision"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    # The latest import that read it: a listing read twice by one import (overlapping pages) is counted once.
    last_import_id: Mapped[uuid.UUID | None]
    user_id: Mapped[str] = mapped_column(String(128))
    marketplace: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    # created (a new product), linked (to a product: `reason` says how), proposed (waiting for the user),
    # skipped (`reason` says why: crosslist cannot represent it), known (crosslist's own listing already)
    decision: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(60))
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    # A proposed match: the product it may be, and how sure crosslist is (0..1).
    candidate_product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    confidence: Mapped[Decimal | None] = mapped_column(Numeric(4, 3))
    state: Mapped[str] = mapped_column(String(20))  # the listing's state on the marketplace when read
    # What was read (the product it makes, its URL): a proposed listing becomes a product from it later.
    listing: Mapped[JsonDict] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    decided_at: Mapped[datetime | None]
