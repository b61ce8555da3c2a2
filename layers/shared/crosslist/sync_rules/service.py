"""Use cases of the `/sync-rules` API: show a user's rules (defaults included) and change them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from crosslist.marketplaces import MARKETPLACES
from crosslist.sync_rules.rules import KINDS, Connection, default_rule
from crosslist.sync_rules.schemas import ChangeSyncRulesRequest, SyncRules, SyncRuleView
from crosslist.sync_rules.store import PostgresSyncRuleStore


class SyncRuleService:
    def __init__(
        self,
        store: PostgresSyncRuleStore,
        vinted_live: Callable[[str], bool],  # the user has an open WebSocket connection
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._vinted_live = vinted_live
        self._clock = clock

    def rules(self, user_id: str) -> SyncRules:
        """All six rules (each marketplace and kind), the ones never changed at their defaults."""
        stored = {(rule.marketplace, rule.kind): rule for rule in self._store.rules_of(user_id)}
        connections: dict[str, Connection] = {
            "vinted": "connected" if self._vinted_live(user_id) else "not_connected",
            **self._store.credential_connections(user_id),
        }
        now = self._clock()
        return SyncRules(
            rules=[
                SyncRuleView.of(
                    stored.get((marketplace, kind)) or default_rule(user_id, marketplace, kind),
                    connections.get(marketplace, "not_connected"),
                    now,
                )
                for marketplace in MARKETPLACES
                for kind in KINDS
            ]
        )

    def change(self, user_id: str, request: ChangeSyncRulesRequest) -> SyncRules:
        self._store.change(user_id, [change.as_change() for change in request.rules])
        return self.rules(user_id)
