"""Sync rules as the HTTP API accepts and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from crosslist.marketplaces import MARKETPLACES, Marketplace
from crosslist.sync_rules.rules import (
    KINDS,
    MAX_INTERVAL_MINUTES,
    MIN_INTERVAL_MINUTES,
    Connection,
    Kind,
    Outcome,
    OutcomeCode,
    SyncRule,
)
from crosslist.sync_rules.store import RuleChange


class SyncRuleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marketplace: Marketplace
    kind: Kind = Field(description="listings: a `sync` job; orders: `orders` on Vinted, `sync_orders` on eBay and Etsy")
    enabled: StrictBool | None = Field(default=None, description="Omitted: unchanged")
    interval_minutes: int | None = Field(
        default=None,
        ge=MIN_INTERVAL_MINUTES,
        le=MAX_INTERVAL_MINUTES,
        description=f"At least {MIN_INTERVAL_MINUTES}. Omitted: unchanged; null: back to the default"
        " (15 for orders, 60 for listings)",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> SyncRuleChange:
        if not self.model_fields_set & {"enabled", "interval_minutes"}:
            raise ValueError("a rule change needs enabled or interval_minutes")
        return self

    def as_change(self) -> RuleChange:
        return RuleChange(
            marketplace=self.marketplace,
            kind=self.kind,
            enabled=self.enabled,
            interval_minutes=self.interval_minutes,
            interval_given="interval_minutes" in self.model_fields_set,
        )


class ChangeSyncRulesRequest(BaseModel):
    """The rules to change; the others stay as they are."""

    model_config = ConfigDict(extra="forbid")

    rules: list[SyncRuleChange] = Field(min_length=1, max_length=len(MARKETPLACES) * len(KINDS))

    @field_validator("rules")
    @classmethod
    def _each_rule_once(cls, rules: list[SyncRuleChange]) -> list[SyncRuleChange]:
        named = [(rule.marketplace, rule.kind) for rule in rules]
        if len(set(named)) != len(named):
            raise ValueError("a rule (marketplace and kind) may appear only once")
        return rules


class SyncOutcomeView(BaseModel):
    code: OutcomeCode = Field(
        description="queued (job_id: the new job); skipped_active_job (job_id: the one still active);"
        " waiting_for_connection (Vinted: no open tab; eBay/Etsy: not connected); reauth_required;"
        " failed (reason, message)"
    )
    at: datetime
    job_id: uuid.UUID | None = None
    reason: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, outcome: Outcome) -> SyncOutcomeView:
        return cls(
            code=outcome.code, at=outcome.at, job_id=outcome.job_id, reason=outcome.reason, message=outcome.message
        )


class SyncRuleView(BaseModel):
    marketplace: Marketplace
    kind: Kind
    action: str = Field(description="The job it queues")
    enabled: bool
    interval_minutes: int
    connected: bool = Field(
        description="Whether it can run now: Vinted while a tab of the web app is open, eBay and Etsy while"
        " their connection works"
    )
    last_run_at: datetime | None = Field(description="The scheduler tick that last ran it")
    last_outcome: SyncOutcomeView | None
    next_run_at: datetime | None = Field(
        description="When it is due (the scheduler runs every minute); null while disabled or not connected"
    )

    @classmethod
    def of(cls, rule: SyncRule, connection: Connection, now: datetime) -> SyncRuleView:
        return cls(
            marketplace=rule.marketplace,
            kind=rule.kind,
            action=rule.action,
            enabled=rule.enabled,
            interval_minutes=rule.interval_minutes,
            connected=connection == "connected",
            last_run_at=rule.last_run_at,
            last_outcome=SyncOutcomeView.of(rule.last_outcome) if rule.last_outcome is not None else None,
            next_run_at=rule.next_run_at(now, connection),
        )


class SyncRules(BaseModel):
    rules: list[SyncRuleView] = Field(description="Every marketplace and kind, defaults included")
