"""A connected eBay account, as the notifications need it: who it is on eBay, and its orders pushed to crosslist.

At connection (after the credential is stored), as the user: the Commerce Identity API's `GET
/commerce/identity/v1/user/` gives the account's immutable `userId` (recorded: an account deletion and an order
name the account by it); then, when crosslist's endpoint is configured, the account is subscribed to
ORDER_CONFIRMATION on crosslist's destination (`POST /commerce/notification/v1/subscription`, the user's token;
found and enabled again if it exists). Nothing here fails the connection: a failure is logged and recorded on the
account (`push_status` failed, `push_error`), shown in GET /marketplaces, and the orders rule's polling goes on.
At disconnection, before the credential goes, the subscription is deleted (a failure is logged: a notification
for an account no user holds any more is answered and ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import MarketplaceAccount
from crosslist.marketplaces import ReadFailed
from crosslist.workflows.base import HttpCall, Reply

logger = Logger(child=True)

EBAY = "ebay"
IDENTITY_PATH = "/commerce/identity/v1/user/"
SUBSCRIPTIONS = "/commerce/notification/v1/subscription"
ORDER_TOPIC = "ORDER_CONFIRMATION"
MAX_ACCOUNT_ID = 100
JsonDict = dict[str, Any]

# Reads a path of eBay's Commerce Identity API as the user (its JSON object; ReadFailed when it cannot).
IdentityRead = Callable[[str, str], JsonDict]
# Makes a call to eBay as the user (MarketplaceApi): its reply.
UserCall = Callable[[str, HttpCall], Reply]


class SubscribeFailed(Exception):
    """The account could not be subscribed to its orders; the message says why, for the user."""


@dataclass(frozen=True)
class PushSetup:
    destination: Callable[[], str]  # crosslist's destination id at eBay (found or created once)


class EbayAccounts:
    def __init__(
        self, sessions: sessionmaker[Session], identity: IdentityRead, call: UserCall, push: PushSetup | None
    ) -> None:
        """`push`: None when crosslist's endpoint is not configured (the accounts are not subscribed)."""
        self._sessions = sessions
        self._identity = identity
        self._call = call
        self._push = push

    def connected(self, user_id: str) -> None:
        """Record who the account is and subscribe it to its orders (see the module); never raises."""
        try:
            me = self._identity(user_id, IDENTITY_PATH)
        except ReadFailed as unreadable:
            logger.warning("the eBay account's user id could not be read", extra={"reason": str(unreadable)[:200]})
            return
        account_id = me.get("userId")
        if not isinstance(account_id, str) or not 0 < len(account_id) <= MAX_ACCOUNT_ID:
            logger.warning("eBay's identity answer has no userId")
            return
        status, subscription, error = "off", None, None
        if self._push is not None:
            try:
                subscription = self._subscribe(user_id, self._push.destination())
                status = "subscribed"
            except Exception as failed:  # whatever it is, the connection stands and polling goes on
                status, error = "failed", _reason(failed)
                logger.warning("the eBay account was not subscribed to its orders", extra={"reason": error})
        values = {"account_id": account_id, "push_subscription_id": subscription, "push_status": status}
        with transaction(self._sessions) as session:
            session.execute(
                insert(MarketplaceAccount)
                .values(user_id=user_id, marketplace=EBAY, push_error=error, **values)
                .on_conflict_do_update(
                    index_elements=["user_id", "marketplace"],
                    set_={**values, "push_error": error, "updated_at": func.now()},
                )
            )

    def disconnecting(self, user_id: str) -> None:
        """The user is about to disconnect the account: its subscription is deleted while its token still works."""
        with transaction(self._sessions) as session:
            subscription = session.scalar(
                select(MarketplaceAccount.push_subscription_id).where(
                    MarketplaceAccount.user_id == user_id, MarketplaceAccount.marketplace == EBAY
                )
            )
        if subscription is None:
            return
        try:
            reply = self._call(user_id, HttpCall("DELETE", f"{SUBSCRIPTIONS}/{subscription}", "delete"))
        except Exception:  # the user disconnects whatever eBay says
            logger.exception("the eBay orders subscription was not deleted")
            return
        if not reply.success and reply.status != 404:
            logger.warning("eBay kept the orders subscription", extra={"status": reply.status})

    def _subscribe(self, user_id: str, destination: str) -> str:
        found = self._subscription(user_id, destination)
        if found is not None:
            subscription_id, enabled = found
            if not enabled:
                self._expect(
                    self._call(user_id, HttpCall("POST", f"{SUBSCRIPTIONS}/{subscription_id}/enable", "write"))
                )
            return subscription_id
        body = {
            "topicId": ORDER_TOPIC,
            "status": "ENABLED",
            "destinationId": destination,
            "payload": {"format": "JSON", "schemaVersion": "1.0", "deliveryProtocol": "HTTPS"},
        }
        self._expect(self._call(user_id, HttpCall("POST", SUBSCRIPTIONS, "write", json=body)))
        # eBay answers 201 with the new id in its Location header only: it is read back from the list.
        found = self._subscription(user_id, destination)
        if found is None:
            raise SubscribeFailed("eBay created the subscription but does not list it")
        return found[0]

    def _subscription(self, user_id: str, destination: str) -> tuple[str, bool] | None:
        reply = self._expect(self._call(user_id, HttpCall("GET", f"{SUBSCRIPTIONS}?limit=100", "read")))
        for subscription in (reply.result or {}).get("subscriptions") or []:
            if (
                isinstance(subscription, dict)
                and subscription.get("topicId") == ORDER_TOPIC
                and subscription.get("destinationId") == destination
                and subscription.get("subscriptionId")
            ):
                return str(subscription["subscriptionId"]), subscription.get("status") == "ENABLED"
        return None

    @staticmethod
    def _expect(reply: Reply) -> Reply:
        if not reply.success:
            raise SubscribeFailed(f"eBay answered {reply.status or 'nothing'}: {(reply.error or '')[:200]}")
        return reply


def _reason(failed: Exception) -> str:
    text = str(failed) or type(failed).__name__
    return text[:300]
