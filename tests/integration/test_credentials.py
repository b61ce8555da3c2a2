"""OAuth credentials against real PostgreSQL and moto's KMS: sealed at rest, refreshed one at a time
(Etsy rotates its refresh token: a lost rotation locks the user out), and `invalid_grant` asks the user
to connect again instead of failing forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import text

from crosslist.auth.credentials import CredentialStore, InvalidGrant, NeedsReauth, TokenSet
from crosslist.auth.vault import KmsKeys, VaultError, open_sealed
from crosslist.db.engine import make_engine, make_session_factory

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


class RotatingEtsy:
    """Etsy's token endpoint: every refresh retires the refresh token it was given (invalid_grant after)."""

    def __init__(self, refresh_token: str, *, delay: float = 0.0) -> None:
        self.live_refresh_token = refresh_token
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def refresh(self, refresh_token: str) -> TokenSet:
        with self._lock:
            self.calls += 1
            if refresh_token != self.live_refresh_token:
                raise InvalidGrant("invalid_grant: refresh token already used")
            self.live_refresh_token = f"refresh-{self.calls + 1}"
        time.sleep(self.delay)  # the HTTP round trip, during which others may ask too
        return TokenSet(f"access-{self.calls + 1}", NOW + timedelta(hours=1), refresh_token=self.live_refresh_token)


@pytest.fixture
def store(database: str) -> Iterator[CredentialStore]:
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key(Description="crosslist credentials")["KeyMetadata"]["KeyId"]
        engine = make_engine(database)
        yield CredentialStore(make_session_factory(engine), KmsKeys(kms, key_id))
        engine.dispose()


def stale(store: CredentialStore, user: str = "alice") -> None:
    store.save(user, "etsy", TokenSet("access-1", NOW - timedelta(minutes=1), refresh_token="refresh-1"))


def test_tokens_are_never_stored_in_clear_and_do_not_open_under_another_credential(
    store: CredentialStore, sql: Any
) -> None:
    secret = "ya29.a-very-secret-access-token"
    alice = store.save("alice", "etsy", TokenSet(secret, NOW + timedelta(hours=1), refresh_token="r-secret"))
    store.save("bob", "etsy", TokenSet("bob-token", NOW + timedelta(hours=1), refresh_token="r-bob"))

    with sql.connect() as connection:
        rows = connection.execute(text("SELECT * FROM oauth_credentials")).all()
    stored = b"".join(bytes(value) for row in rows for value in row if isinstance(value, (bytes, memoryview)))
    assert secret.encode() not in stored
    assert b"r-secret" not in stored
    assert store.access_token("alice", "etsy", RotatingEtsy("unused")) == secret

    with sql.connect() as connection:
        data_key = connection.execute(
            text("SELECT data_key_encrypted FROM oauth_credentials WHERE user_id = 'bob'")
        ).scalar_one()
    keys = store._keys
    with pytest.raises(VaultError):
        keys.key(str(alice), bytes(data_key))  # bob's data key is bound to bob's credential


def test_ten_concurrent_refreshes_call_etsy_once_and_all_get_the_new_token(store: CredentialStore) -> None:
    stale(store)
    etsy = RotatingEtsy("refresh-1", delay=0.2)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            tokens.append(store.access_token("alice", "etsy", etsy))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert errors == []
    assert etsy.calls == 1
    assert tokens == ["access-2"] * 10
    # The rotated refresh token was kept: the next refresh works.
    assert store.refresh("alice", "etsy", etsy) == "access-3"
    assert etsy.calls == 2


def test_a_refused_refresh_token_asks_the_user_to_connect_again_and_stays_refused(
    store: CredentialStore, sql: Any
) -> None:
    stale(store)
    etsy = RotatingEtsy("a-token-etsy-no-longer-knows")

    with pytest.raises(NeedsReauth):
        store.access_token("alice", "etsy", etsy)
    with pytest.raises(NeedsReauth):  # from the database, without calling Etsy again
        store.access_token("alice", "etsy", etsy)
    assert etsy.calls == 1
    with sql.connect() as connection:
        assert connection.execute(text("SELECT status FROM oauth_credentials")).scalar_one() == "needs_reauth"
        # Recorded once, for the app's webhooks (its connections are told by the jobs that wait).
        recorded = connection.execute(text("SELECT user_id, type, payload FROM outbox")).all()
    assert [tuple(row) for row in recorded] == [
        ("alice", "marketplace.reauth_required", {"marketplace": "etsy", "message": None})
    ]

    # Connecting again makes it usable.
    store.save("alice", "etsy", TokenSet("fresh", NOW + timedelta(hours=1), refresh_token="r-new"))
    assert store.access_token("alice", "etsy", etsy) == "fresh"


def test_a_caller_whose_token_was_replaced_meanwhile_takes_the_new_one_without_a_call(store: CredentialStore) -> None:
    store.save("alice", "etsy", TokenSet("access-1", NOW + timedelta(hours=1), refresh_token="refresh-1"))
    etsy = RotatingEtsy("refresh-1")
    first = store.refresh("alice", "etsy", etsy)  # say, on a 401
    # Another job got a 401 with access-1 too, having read the credential (version 0) before that refresh.
    assert store.refresh("alice", "etsy", etsy, seen_version=0) == first
    assert etsy.calls == 1


def test_the_vault_refuses_a_token_moved_to_another_field() -> None:
    from crosslist.auth.vault import seal

    key = bytes(32)
    sealed = seal(key, "c1", "access", "t")
    assert open_sealed(key, "c1", "access", sealed) == "t"
    for credential, field in (("c2", "access"), ("c1", "refresh")):
        with pytest.raises(VaultError):
            open_sealed(key, credential, field, sealed)


def test_the_scheduled_refresh_renews_what_expires_soon_and_reports_who_must_reconnect(
    store: CredentialStore, database: str
) -> None:
    from crosslist.auth.credentials import credentials_due_for_refresh
    from crosslist.auth.refresh import refresh_due

    sessions = make_session_factory(make_engine(database))
    store.save("alice", "etsy", TokenSet("a", NOW + timedelta(minutes=5), refresh_token="refresh-1"))
    store.save("bob", "etsy", TokenSet("b", NOW + timedelta(minutes=5), refresh_token="revoked"))
    store.save("carol", "ebay", TokenSet("c", NOW + timedelta(minutes=5), refresh_token="r-ebay"))
    store.save("dave", "etsy", TokenSet("d", NOW + timedelta(days=1), refresh_token="r-later"))  # not due
    etsy = RotatingEtsy("refresh-1")

    report = refresh_due(store, credentials_due_for_refresh(sessions), {"etsy": etsy}.get)

    assert (report.due, report.refreshed, report.failed, report.not_configured) == (3, 1, 0, 1)
    assert report.reauth_required == [("bob", "etsy")]
    assert store.access_token("alice", "etsy", etsy) == "access-2"
    assert [c.user_id for c in credentials_due_for_refresh(sessions)] == ["carol"]  # eBay: no app here
