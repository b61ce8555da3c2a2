"""Reading the user's imported orders: newest sale first, with a keyset cursor."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crosslist import cursors
from crosslist.db.engine import transaction
from crosslist.db.models import Order


class OrderView(BaseModel):
    id: uuid.UUID
    marketplace: str
    external_order_id: str = Field(description="The marketplace's own id (Vinted: the transaction id)")
    product_id: uuid.UUID | None = Field(description="The product whose listing sold, when crosslist knows it")
    item_ids: list[str]
    title: str
    price: Decimal
    currency: str
    buyer: str | None
    status: str
    sold_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls.model_validate(order, from_attributes=True)


class OrderPage(BaseModel):
    items: list[OrderView] = Field(description="Newest sale first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class OrderService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list(self, user_id: str, *, marketplace: str | None, cursor: str | None, limit: int) -> OrderPage:
        query = select(Order).where(Order.user_id == user_id)
        if marketplace is not None:
            query = query.where(Order.marketplace == marketplace)
        with transaction(self._sessions) as session:
            page, next_cursor = cursors.newest_first_page(
                session, query, at=Order.sold_at, row_id=Order.id, cursor=cursor, limit=limit
            )
        return OrderPage(items=[OrderView.of(order) for order in page], next_cursor=next_cursor)
