"""The scheduled refresh (oauth_refresh, every 15 minutes): every credential expiring soon is refreshed
before a job needs it. A credential a job refreshed meanwhile is left alone (its version moved)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from crosslist.auth.credentials import CredentialStore, DueCredential, NeedsReauth, TokenEndpoint

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
