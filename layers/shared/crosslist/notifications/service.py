"""What the notifications endpoints do with what eBay and Etsy push (the handler is functions/notifications).

Every message is verified before anything else; one that is not (unsigned, a signature that is not the sender's,
a key eBay does not serve, a timestamp out of tolerance) is refused and nothing is done: eBay's documented answer
412 (its SDKs answer it for a failed verification), and the same for Etsy. A verified message is then acted on once
(crosslist.notifications.inbox) in one transaction with what it does, and answered 204; so is one already acted on
(a retry or a replay: nothing is done again), one too old (eBay: a publishDate older than EBAY_MAX_AGE, which a
replay of a captured message would have once its id is no longer kept), and one of a topic crosslist does not act
on. A failure of crosslist's own (PostgreSQL, eBay's keys out of reach) is a 5xx: the sender delivers it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select, update

from crosslist.db.engine import transaction
from crosslist.db.models import MarketplaceJob, OAuthCredential, SellerSettings
from crosslist.errors import CrosslistError, NotFound, ServiceUnavailable
from crosslist.jobs.reactions import AfterCommit, wake_lanes
from crosslist.notifications import ebay_signature, inbox
from crosslist.notifications.account_deletion import ebay_users, erase_ebay_account
from crosslist.notifications.imports import ImportsToWake, OrdersImports, QueuedImport, idempotency_key
from crosslist.notifications.public_keys import EbayPublicKeys, KeysUnavailable
from crosslist.webhooks import signing

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.orm import Session, sessionmaker

    from crosslist.jobs.queue import JobQueue
    from crosslist.jobs.reactions import JobReactions

logger = Logger(child=True)

# A verified eBay message published longer ago than this is not acted on: under inbox.KEEP_FOR, so a replay of a
# captured message is refused by its date once its id is no longer kept. eBay retries a failed delivery for hours,
# not days.
EBAY_MAX_AGE = timedelta(days=3)
ACCOUNT_DELETION = "MARKETPLACE_ACCOUNT_DELETION"
ORDER_CONFIRMATION = "ORDER_CONFIRMATION"
ETSY_ORDER_PAID = "order.paid"
# Standard Webhooks' tolerance: a timestamp further from now is refused, as a replay of a captured message would be
# once its webhook-id is no longer kept (inbox.KEEP_FOR).
ETSY_TOLERANCE = 300
MAX_WEBHOOK_ID = 200


class NotConfigured(NotFound):
    """This deployment takes no notifications from the marketplace (404: no such endpoint here)."""

    code = "not_configured"


class SignatureRefused(CrosslistError):
    """A message whose signature does not verify: 412, eBay's answer (its SDKs answer it), and Etsy's too (one
    answer for "not the sender's", whoever the sender claims to be; a 401 is for a missing crosslist token)."""

    code = "signature_invalid"
    http_status = 412


@dataclass(frozen=True)
class EbayEndpoint:
    """crosslist's endpoint as registered with eBay: the URL (hashed by the challenge) and its verification token."""

    url: str
    verification_token: str


@dataclass(frozen=True)
class Handled:
    """What a verified notification came to (logged; tests read it)."""

    outcome: str  # acted, duplicate, stale, ignored, unreadable
    topic: str = ""
    users: int = 0
    imports: tuple[QueuedImport, ...] = ()


# ---------------------------------------------------------------- what eBay and Etsy send
class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _EbayMetadata(_Model):
    topic: str = Field(max_length=100)


class _EbayNotification(_Model):
    notification_id: str = Field(alias="notificationId", min_length=1, max_length=200)
    publish_date: datetime = Field(alias="publishDate")
    data: dict[str, Any] = Field(default_factory=dict)


class _EbayMessage(_Model):
    metadata: _EbayMetadata
    notification: _EbayNotification


class _AccountDeletion(_Model):
    user_id: str = Field(alias="userId", min_length=1, max_length=100)
    username: str | None = Field(default=None, max_length=200)


class _OrderConfirmation(_Model):
    """The data of an ORDER_CONFIRMATION: the order, and the seller it is for. eBay's published contract shows only
    the envelope; the seller's immutable user id is read from `sellerId` (else `userId`)."""

    order_id: str = Field(alias="orderId", min_length=1, max_length=100)
    seller_id: str | None = Field(default=None, alias="sellerId", max_length=100)
    user_id: str | None = Field(default=None, alias="userId", max_length=100)


class _EtsyEvent(_Model):
    event_type: str = Field(max_length=100)
    shop_id: int | None = Field(default=None, gt=0)
    resource_url: str | None = Field(default=None, max_length=2000)


# ---------------------------------------------------------------- the use cases
class PushNotifications:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        imports: OrdersImports,
        queue: JobQueue,
        reactions: JobReactions,
        *,
        ebay_keys: EbayPublicKeys | None,
        ebay_endpoint: Callable[[], EbayEndpoint | None],
        etsy_secret: Callable[[], str | None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`ebay_keys`: None without an eBay app here; `ebay_endpoint`, `etsy_secret`: None when that marketplace's
        notifications are not configured (read when first needed: they come from Secrets Manager in AWS)."""
        self._sessions = sessions
        self._imports = imports
        self._queue = queue
        self._reactions = reactions
        self._ebay_keys = ebay_keys
        self._ebay_endpoint = ebay_endpoint
        self._etsy_secret = etsy_secret
        self._clock = clock

    # eBay -------------------------------------------------------------------------------------------------
    def ebay_challenge(self, challenge_code: str) -> str:
        """The endpoint's answer to eBay's challenge."""
        endpoint = self._ebay_endpoint()
        if endpoint is None:
            raise NotConfigured("eBay notifications are not configured here")
        return ebay_signature.challenge_response(challenge_code, endpoint.verification_token, endpoint.url)

    def ebay(self, body: bytes, signature: str | None) -> Handled:
        """Verify and act on an eBay notification (see the module). SignatureRefused (412) when it is not eBay's;
        ServiceUnavailable when eBay's key cannot be read now."""
        if self._ebay_keys is None or self._ebay_endpoint() is None:
            raise NotConfigured("eBay notifications are not configured here")
        try:
            header = ebay_signature.parse_signature_header(signature)
            key = self._ebay_keys.key(header.kid)
            if key is None:
                raise ebay_signature.Unverified("unknown_key")
            ebay_signature.verify(body, header, key)
        except ebay_signature.Unverified as refused:
            logger.warning("an eBay notification was refused", extra={"reason": refused.reason})
            raise SignatureRefused(f"the notification is not signed by eBay ({refused.reason})") from None
        except KeysUnavailable as unavailable:
            raise ServiceUnavailable(str(unavailable), code="marketplace_unavailable") from None
        try:
            message = _EbayMessage.model_validate_json(body)
        except ValidationError:
            return self._logged("ebay", Handled("unreadable"))
        notification, topic = message.notification, message.metadata.topic
        published = notification.publish_date
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        if published < self._clock() - EBAY_MAX_AGE:
            return self._logged("ebay", Handled("stale", topic))
        if topic == ACCOUNT_DELETION:
            return self._logged("ebay", self._account_deleted(notification, topic))
        if topic == ORDER_CONFIRMATION:
            return self._logged("ebay", self._order_confirmed(notification, topic))
        return self._logged("ebay", Handled("ignored", topic))

    def _account_deleted(self, notification: _EbayNotification, topic: str) -> Handled:
        try:
            data = _AccountDeletion.model_validate(notification.data)
        except ValidationError:
            return Handled("unreadable", topic)
        after = AfterCommit()
        with transaction(self._sessions) as session:
            if not inbox.first_time(session, "ebay", notification.notification_id, topic):
                return Handled("duplicate", topic)
            erased = erase_ebay_account(session, data.user_id, data.username, reactions=self._reactions, after=after)
        wake_lanes(after.lanes, self._queue, self._mark_queued)
        logger.info(
            "eBay account data erased",
            extra={
                "users": erased.users,
                "jobs_cancelled": erased.jobs_cancelled,
                "jobs_deleted": erased.jobs_deleted,
                "listings_deleted": erased.listings_deleted,
                "orders_anonymised": erased.orders_anonymised,
                "orders_as_buyer": erased.orders_as_buyer,
            },
        )
        return Handled("acted", topic, users=erased.users)

    def _order_confirmed(self, notification: _EbayNotification, topic: str) -> Handled:
        try:
            data = _OrderConfirmation.model_validate(notification.data)
        except ValidationError:
            return Handled("unreadable", topic)
        seller = data.seller_id or data.user_id
        if seller is None:
            return Handled("unreadable", topic)
        key = idempotency_key("ebay", notification.notification_id)
        return self._import_now("ebay", notification.notification_id, topic, key, lambda s: ebay_users(s, seller))

    # Etsy -------------------------------------------------------------------------------------------------
    def etsy(self, body: bytes, headers: Mapping[str, str]) -> Handled:
        """Verify and act on an Etsy webhook (see the module). SignatureRefused (412) when it is not Etsy's."""
        secret = self._etsy_secret()
        if secret is None:
            raise NotConfigured("Etsy webhooks are not configured here (they need Etsy's commercial access)")
        message_id = next((value for name, value in headers.items() if name.lower() == "webhook-id"), "")
        try:
            if len(message_id) > MAX_WEBHOOK_ID:
                raise signing.WebhookVerificationError("webhook-id is too long")
            signing.verify(secret, headers, body, now=self._clock().timestamp(), tolerance_seconds=ETSY_TOLERANCE)
        except signing.WebhookVerificationError as refused:
            logger.warning("an Etsy webhook was refused", extra={"reason": str(refused)[:200]})
            raise SignatureRefused(f"the webhook is not signed by Etsy ({refused})") from None
        try:
            event = _EtsyEvent.model_validate_json(body)
        except ValidationError:
            return self._logged("etsy", Handled("unreadable"))
        if event.event_type != ETSY_ORDER_PAID:
            return self._logged("etsy", Handled("ignored", event.event_type))
        shop_id = event.shop_id or _shop_of(event.resource_url)
        if shop_id is None:
            return self._logged("etsy", Handled("unreadable", event.event_type))
        key = idempotency_key("etsy", message_id)
        handled = self._import_now(
            "etsy", message_id, event.event_type, key, lambda session: etsy_shop_users(session, shop_id)
        )
        return self._logged("etsy", handled)

    # shared -----------------------------------------------------------------------------------------------
    def _import_now(
        self,
        source: Literal["ebay", "etsy"],
        message_id: str,
        topic: str,
        key: str,
        users: Callable[[Session], list[str]],
    ) -> Handled:
        woken = ImportsToWake(cause=key)
        with transaction(self._sessions) as session:
            if not inbox.first_time(session, source, message_id, topic):
                return Handled("duplicate", topic)
            found = users(session)
            queued = tuple(self._imports.import_now(session, user, source, key, woken) for user in found)
        self._imports.carry_out(woken)
        return Handled("acted", topic, users=len(found), imports=queued)

    def _mark_queued(self, job_ids: list[uuid.UUID]) -> None:
        if job_ids:
            with transaction(self._sessions) as session:
                session.execute(
                    update(MarketplaceJob).where(MarketplaceJob.id.in_(job_ids)).values(enqueued_at=func.now())
                )

    @staticmethod
    def _logged(source: str, handled: Handled) -> Handled:
        logger.info(
            "notification handled",
            extra={
                "source": source,
                "topic": handled.topic,
                "outcome": handled.outcome,
                "users": handled.users,
                "imports": [queued.outcome for queued in handled.imports],
            },
        )
        return handled


def etsy_shop_users(session: Session, shop_id: int) -> list[str]:
    """The crosslist users whose Etsy seller settings hold the shop, and who are connected to Etsy."""
    return list(
        session.scalars(
            select(SellerSettings.user_id)
            .join(
                OAuthCredential,
                (OAuthCredential.user_id == SellerSettings.user_id) & (OAuthCredential.marketplace == "etsy"),
            )
            .where(SellerSettings.marketplace == "etsy", SellerSettings.settings["shop_id"].as_string() == str(shop_id))
            .order_by(SellerSettings.user_id)
        )
    )


def _shop_of(resource_url: str | None) -> int | None:
    """The shop id of a resource URL `…/shops/{shop_id}/receipts/{receipt_id}`."""
    if not resource_url:
        return None
    parts = resource_url.rstrip("/").split("/")
    for index, part in enumerate(parts[:-1]):
        if part == "shops" and parts[index + 1].isdigit():
            return int(parts[index + 1])
    return None


def json_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Header names lower-cased, values as text (API Gateway joins repeated headers with commas)."""
    return {str(name).lower(): str(value) for name, value in (headers or {}).items()}
