"""What the marketplaces API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, cast, get_args

from pydantic import BaseModel, Field

from crosslist.auth.connect import ConnectionState, MarketplaceConnection

OAuthMarketplace = Literal["ebay", "etsy"]
PushState = Literal["subscribed", "failed", "off"]


class MarketplaceStatus(BaseModel):
    marketplace: str
    status: ConnectionState = Field(description="reauth_required: the marketplace refused the stored authorization")
    expires_at: datetime | None = Field(description="When the current access token expires (it is refreshed before)")
    refresh_expires_at: datetime | None = Field(
        default=None, description="When the authorization itself ends (eBay: 18 months): connect again before"
    )
    reconnect_soon: bool = Field(
        default=False, description="The authorization ends within 14 days: ask the user to connect again"
    )
    push: PushState | None = Field(
        default=None,
        description="Whether the marketplace pushes the account's sales to crosslist at once (eBay): subscribed;"
        " failed (push_error says why: sales are found by the orders rule's polling, connect again to retry); off"
        " (not configured here); null: not known",
    )
    push_error: str | None = Field(default=None, description="Why the account could not be subscribed")

    @classmethod
    def of(cls, connection: MarketplaceConnection) -> MarketplaceStatus:
        return cls(
            marketplace=connection.marketplace,
            status=connection.status,
            expires_at=connection.expires_at,
            refresh_expires_at=connection.refresh_expires_at,
            reconnect_soon=connection.reconnect_soon,
            push=_push(connection.push),
            push_error=connection.push_error,
        )


def _push(value: str | None) -> PushState | None:
    return cast("PushState", value) if value in get_args(PushState) else None


class AuthorizationStarted(BaseModel):
    authorization_url: str = Field(description="Send the user here; the marketplace sends them back to the callback")


class CompleteConnection(BaseModel):
    """What the callback handed the web app page: completed with the user's token."""

    code: str = Field(min_length=1, max_length=2000, description="The authorization code the marketplace gave")
    state: str = Field(min_length=1, max_length=200, description="The state of the authorization the user started")


class Connected(BaseModel):
    marketplace: str
    status: Literal["connected"]
