"""Reading the user's imported orders (newest sale first, with a keyset cursor) and a product's sales with what
auto-delist did about each; the user's auto-delist setting."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from crosslist import cursors
from crosslist.db.engine import transaction
from crosslist.db.models import JobStatus, MarketplaceJob, Order, Sale, SaleAction, UserSettings
from crosslist.errors import NotFound
from crosslist.jobs.schemas import JobError
from crosslist.orders.schemas import (
    OrderPage,
    OrderView,
    SaleActionKind,
    SaleActionView,
    SalePage,
    SaleView,
    UserSettingsUpdate,
    UserSettingsView,
)
from crosslist.products.service import find_product


class OrderService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def sales(self, user_id: str, product_id: uuid.UUID, *, cursor: str | None, limit: int) -> SalePage:
        """The product's sales, newest first, each with what was done on its other marketplaces: the outcome
        is read from the jobs as they are now."""
        with transaction(self._sessions) as session:
            if find_product(session, user_id, product_id) is None:
                raise NotFound(f"product {product_id} not found")
            sales, next_cursor = cursors.newest_first_page(
                session,
                select(Sale).where(Sale.user_id == user_id, Sale.product_id == product_id),
                at=Sale.sold_at,
                row_id=Sale.id,
                cursor=cursor,
                limit=limit,
            )
            rows = session.execute(
                select(SaleAction, MarketplaceJob)
                .outerjoin(MarketplaceJob, MarketplaceJob.id == SaleAction.job_id)
                .where(SaleAction.user_id == user_id, SaleAction.sale_id.in_([sale.id for sale in sales]))
                .order_by(SaleAction.marketplace)
            ).all()
        sold_at = {sale.id: sale.sold_at for sale in sales}
        actions: dict[uuid.UUID, list[SaleActionView]] = {}
        for action, job in rows:
            actions.setdefault(action.sale_id, []).append(_action_view(action, job, sold_at[action.sale_id]))
        views = [
            SaleView(
                sale_id=sale.id,
                marketplace=sale.marketplace,
                external_order_id=sale.external_order_id,
                quantity=sale.quantity,
                sold_at=sale.sold_at,
                detected_at=sale.detected_at,
                detection_delay_seconds=(sale.detected_at - sale.sold_at).total_seconds(),
                actions=actions.get(sale.id, []),
            )
            for sale in sales
        ]
        return SalePage(items=views, next_cursor=next_cursor)

    def list(self, user_id: str, *, marketplace: str | None, cursor: str | None, limit: int) -> OrderPage:
        query = select(Order).where(Order.user_id == user_id)
        if marketplace is not None:
            query = query.where(Order.marketplace == marketplace)
        with transaction(self._sessions) as session:
            page, next_cursor = cursors.newest_first_page(
                session, query, at=Order.sold_at, row_id=Order.id, cursor=cursor, limit=limit
            )
        return OrderPage(items=[OrderView.of(order) for order in page], next_cursor=next_cursor)


def auto_delist_on(session: Session, user_id: str) -> bool:
    """The user's auto-delist setting: on unless they turned it off."""
    setting = session.scalar(select(UserSettings.auto_delist).where(UserSettings.user_id == user_id))
    return True if setting is None else setting


class UserSettingsService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, user_id: str) -> UserSettingsView:
        with transaction(self._sessions) as session:
            return _settings_view(session, user_id)

    def update(self, user_id: str, changes: UserSettingsUpdate) -> UserSettingsView:
        given = changes.model_dump(exclude_none=True)
        with transaction(self._sessions) as session:
            if given:
                upsert = insert(UserSettings).values(user_id=user_id, **given)
                session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["user_id"],
                        set_={**{name: upsert.excluded[name] for name in given}, "updated_at": func.now()},
                    )
                )
            return _settings_view(session, user_id)


def remove_duplicates_on(session: Session, user_id: str) -> bool:
    """The user's choice to have syncs remove a newer duplicate: off unless they turned it on."""
    setting = session.scalar(select(UserSettings.remove_duplicates).where(UserSettings.user_id == user_id))
    return bool(setting)


def _settings_view(session: Session, user_id: str) -> UserSettingsView:
    return UserSettingsView(
        auto_delist=auto_delist_on(session, user_id), remove_duplicates=remove_duplicates_on(session, user_id)
    )


def _action_view(action: SaleAction, job: MarketplaceJob | None, sold_at: datetime) -> SaleActionView:
    done_at = job.completed_at if job is not None and job.status is JobStatus.COMPLETED else None
    return SaleActionView(
        marketplace=action.marketplace,
        action=SaleActionKind(action.action),
        reason=action.reason,
        job_id=action.job_id,
        waiting_for_job_id=action.waiting_for_job_id,
        status=job.status.value if job is not None else (action.outcome or "skipped"),
        error=JobError.model_validate(job.error) if job is not None and job.error else None,
        started_at=job.started_at if job is not None else None,
        completed_at=job.completed_at if job is not None else None,
        delisted_after_sale_seconds=(done_at - sold_at).total_seconds() if done_at is not None else None,
    )
