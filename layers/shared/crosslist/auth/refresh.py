"""The scheduled refresh (oauth_refresh, every 15 minutes): every credential expiring soon is refreshed
before a job needs it. A credential a job refreshed meanwhile is left alone (its version moved).

A run opens PostgreSQL only when a credential can be due: its due time (crosslist.due_times, `tokens`) holds
when the soonest token enters the refresh window; connecting an account announces a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from crosslist.auth.credentials import (
    CredentialStore,
    DueCredential,
    NeedsReauth,
    TokenEndpoint,
    credentials_due_for_refresh,
    next_refresh_due,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from crosslist.due_times import DueTimes

logger = Logger(child=True)


@dataclass(frozen=True)
class RefreshReport:
    due: int
    refreshed: int
    reauth_required: list[tuple[str, str]]  # (user, marketplace): they must connect again
    failed: int  # the token endpoint did not answer: the next run tries again
    not_configured: int  # no app registered for that marketplace here


def refresh_due(
    store: CredentialStore, due: list[DueCredential], endpoints: Callable[[str], TokenEndpoint | None]
) -> RefreshReport:
    refreshed = failed = not_configured = 0
    reauth: list[tuple[str, str]] = []
    for credential in due:
        endpoint = endpoints(credential.marketplace)
        if endpoint is None:
            not_configured += 1
            continue
        try:
            store.refresh(credential.user_id, credential.marketplace, endpoint, seen_version=credential.version)
            refreshed += 1
        except NeedsReauth:
            reauth.append((credential.user_id, credential.marketplace))
        except Exception:  # one credential's failure must not stop the others'
            logger.exception("refresh failed", extra={"marketplace": credential.marketplace})
            failed += 1
    return RefreshReport(len(due), refreshed, reauth, failed, not_configured)


def scheduled_refresh[Report](
    sessions: sessionmaker[Session],
    due_times: DueTimes | None,
    refresh: Callable[[list[DueCredential]], Report],
    now: datetime,
) -> Report | None:
    """One run of the schedule: the credentials due for refresh (maybe none) handed to `refresh`, whose report is
    returned; None when the due time proves that none can be due (PostgreSQL is left alone). `due_times` None:
    always look."""
    look = due_times.look(now) if due_times is not None else None
    if due_times is not None and look is None:
        return None
    report = refresh(credentials_due_for_refresh(sessions, now))
    if look is not None:  # after the refreshes: their new expiries count
        look.found(next_refresh_due(sessions))
    return report
