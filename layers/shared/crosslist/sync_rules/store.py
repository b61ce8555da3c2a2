"""The sync rules in PostgreSQL (table sync_rules), and what the scheduler asks of them in one query."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from crosslist.db.engine import transaction
from crosslist.db.models import CredentialStatus, OAuthCredential
from crosslist.db.models import SyncRule as SyncRuleRow
from crosslist.due_times import announce
from crosslist.marketplaces import Marketplace
from crosslist.sync_rules.rules import (
    DEFAULT_INTERVAL_MINUTES,
    WAITING_OUTCOME,
    Connection,
    Kind,
    Outcome,
    SyncRule,
)


@dataclass(frozen=True)
class DueRule:
    rule: SyncRule
    connection: Connection  # can its marketplace account run a job now


@dataclass(frozen=True)
class RuleChange:
    marketplace: Marketplace
    kind: Kind
    enabled: bool | None = None  # None: unchanged
    interval_minutes: int | None = None
    interval_given: bool = False  # interval_minutes None and given: back to the kind's default


class SyncRuleStore(Protocol):
    def due(self, live_users: Collection[str], now: datetime, limit: int) -> list[DueRule]:
        """Enabled rules due at `now` (explicit ones, and the defaults of every account that can run or
        waits for a new authorization), oldest due first; rules already recorded as waiting for what
        their account still lacks are left out. `live_users`: who has an open WebSocket connection."""

    def record(self, rule: SyncRule, outcome: Outcome) -> None:
        """The rule's run (or why it waits); its time moves on only if it ran (`Outcome.ran`)."""


# One query, whatever the number of users: the accounts that can run a rule (Vinted: an open connection,
# eBay/Etsy: a credential), each with both kinds at their defaults unless the user has a row, and every
# explicit row. Rows of accounts that are gone stay (not_connected) and record that they wait.
_DUE_RULES = text(
    """
    WITH live(user_id) AS (SELECT DISTINCT unnest(CAST(:live_users AS varchar[]))),
    accounts AS (
        SELECT user_id, 'vinted' AS marketplace, 'connected' AS connection FROM live
        UNION ALL
        SELECT user_id, marketplace, CASE WHEN status = :active THEN 'connected' ELSE 'reauth_required' END
        FROM oauth_credentials WHERE marketplace <> 'vinted'
    ),
    kinds(kind, default_interval) AS (
        VALUES ('listings', CAST(:listings_interval AS integer)), ('orders', CAST(:orders_interval AS integer))
    ),
    rules AS (
        SELECT r.user_id, r.marketplace, r.kind, r.interval_minutes, r.last_run_at, r.last_outcome,
               r.last_job_id, coalesce(a.connection, 'not_connected') AS connection,
               r.last_run_at + make_interval(mins => coalesce(r.interval_minutes, k.default_interval)) AS due_at
        FROM sync_rules r
        JOIN kinds k ON k.kind = r.kind
        LEFT JOIN accounts a ON a.user_id = r.user_id AND a.marketplace = r.marketplace
        WHERE r.enabled
        UNION ALL
        SELECT a.user_id, a.marketplace, k.kind, NULL, NULL, NULL, NULL, a.connection, NULL
        FROM accounts a CROSS JOIN kinds k
        WHERE NOT EXISTS (
            SELECT 1 FROM sync_rules r WHERE r.user_id = a.user_id AND r.marketplace = a.marketplace AND r.kind = k.kind
        )
    )
    SELECT user_id, marketplace, kind, interval_minutes, last_run_at, last_outcome, last_job_id, connection
    FROM rules
    WHERE (due_at IS NULL OR due_at <= :now)
      AND NOT (
          connection <> 'connected'
          AND last_outcome ->> 'code' IS NOT DISTINCT FROM CASE connection
              WHEN 'not_connected' THEN :not_connected_outcome
              WHEN 'reauth_required' THEN :reauth_outcome
          END
      )
    ORDER BY due_at NULLS FIRST, user_id, marketplace, kind
    LIMIT :limit
    """
)


class PostgresSyncRuleStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def due(self, live_users: Collection[str], now: datetime, limit: int) -> list[DueRule]:
        parameters = {
            "live_users": sorted(live_users),
            "active": CredentialStatus.ACTIVE.value,
            "listings_interval": DEFAULT_INTERVAL_MINUTES["listings"],
            "orders_interval": DEFAULT_INTERVAL_MINUTES["orders"],
            "not_connected_outcome": WAITING_OUTCOME["not_connected"],
            "reauth_outcome": WAITING_OUTCOME["reauth_required"],
            "now": now,
            "limit": limit,
        }
        with transaction(self._sessions) as session:
            rows = session.execute(_DUE_RULES, parameters).mappings().all()
        return [
            DueRule(
                SyncRule(
                    user_id=row["user_id"],
                    marketplace=row["marketplace"],
                    kind=row["kind"],
                    chosen_interval_minutes=row["interval_minutes"],
                    last_run_at=row["last_run_at"],
                    last_outcome=Outcome.from_json(row["last_outcome"]),
                    last_job_id=row["last_job_id"],
                ),
                cast(Connection, row["connection"]),
            )
            for row in rows
        ]

    def record(self, rule: SyncRule, outcome: Outcome) -> None:
        ran_at = outcome.at if outcome.ran else None
        job_id = outcome.job_id if outcome.code == "queued" else None
        upsert = insert(SyncRuleRow).values(
            user_id=rule.user_id,
            marketplace=rule.marketplace,
            kind=rule.kind,
            last_run_at=ran_at,
            last_outcome=outcome.to_json(),
            last_job_id=job_id,
        )
        # Only what the run changes: a change the user made meanwhile (enabled, interval) stays.
        upsert = upsert.on_conflict_do_update(
            index_elements=["user_id", "marketplace", "kind"],
            set_={
                "last_run_at": func.coalesce(upsert.excluded.last_run_at, SyncRuleRow.last_run_at),
                "last_outcome": upsert.excluded.last_outcome,
                "last_job_id": func.coalesce(upsert.excluded.last_job_id, SyncRuleRow.last_job_id),
                "updated_at": func.now(),
            },
        )
        with transaction(self._sessions) as session:
            session.execute(upsert)

    def rules_of(self, user_id: str) -> list[SyncRule]:
        """The rules the user has a row for (the others are the defaults)."""
        with transaction(self._sessions) as session:
            rows = session.scalars(select(SyncRuleRow).where(SyncRuleRow.user_id == user_id)).all()
        return [_rule(row) for row in rows]

    def credential_connections(self, user_id: str) -> dict[str, Connection]:
        """eBay's and Etsy's: connected, or reauth_required (absent: not connected)."""
        with transaction(self._sessions) as session:
            rows = session.execute(
                select(OAuthCredential.marketplace, OAuthCredential.status).where(OAuthCredential.user_id == user_id)
            ).all()
        return {
            marketplace: "connected" if status is CredentialStatus.ACTIVE else "reauth_required"
            for marketplace, status in rows
        }

    def change(self, user_id: str, changes: Iterable[RuleChange]) -> None:
        """Apply the user's changes in one transaction: each sets only what it names."""
        with transaction(self._sessions) as session:
            announce(session, "sync_rules")  # enabled again, a shorter interval: due sooner than the scheduler knew
            for change in changes:
                updated: dict[str, Any] = {}
                if change.enabled is not None:
                    updated["enabled"] = change.enabled
                if change.interval_given:
                    updated["interval_minutes"] = change.interval_minutes
                upsert = insert(SyncRuleRow).values(
                    user_id=user_id, marketplace=change.marketplace, kind=change.kind, **updated
                )
                session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["user_id", "marketplace", "kind"], set_={**updated, "updated_at": func.now()}
                    )
                )


def _rule(row: SyncRuleRow) -> SyncRule:
    return SyncRule(
        user_id=row.user_id,
        marketplace=cast(Marketplace, row.marketplace),
        kind=cast(Kind, row.kind),
        enabled=row.enabled,
        chosen_interval_minutes=row.interval_minutes,
        last_run_at=row.last_run_at,
        last_outcome=Outcome.from_json(row.last_outcome),
        last_job_id=row.last_job_id,
    )
