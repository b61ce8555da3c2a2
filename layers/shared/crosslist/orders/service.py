"""Reading the user's imported orders: newest sale first, with a keyset cursor."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import select, tuple_
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
        if cursor is not None:
            sold_at, order_id = cursors.decode(cursor)
            query = query.where(tuple_(Order.sold_at, Order.id) < tuple_(sold_at, order_id))
        query = query.order_by(Order.sold_at.desc(), Order.id.desc()).limit(limit + 1)
        with transaction(self._sessions) as session:
            orders = list(session.scalars(query))
        page = orders[:limit]
        next_cursor = cursors.encode(page[-1].sold_at, page[-1].id) if len(orders) > limit else None
        return OrderPage(items=[OrderView.of(order) for order in page], next_cursor=next_cursor)
