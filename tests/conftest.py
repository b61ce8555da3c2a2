"""Test environment: set before any handler is imported (Powertools reads some settings at import)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
JWT_SECRET = "test-secret-with-enough-bytes-for-hs256"

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "crosslist",
        "POWERTOOLS_METRICS_NAMESPACE": "Crosslist",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "JWT_ALGORITHM": "HS256",
        "JWT_SECRET": JWT_SECRET,
        "CONNECTIONS_TABLE": "ConnectionsTable",
        "PENDING_COMMANDS_TABLE": "PendingCommandsTable",
        "WEBSOCKET_ENDPOINT": "https://websocket.invalid/prod",
        # Unpaced and with short backoffs unless a test asks otherwise (each builds its Settings anew).
        "CROSSLIST_PACING": "off",
        "CROSSLIST_BACKOFF": "1,1,1",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
# The session's throwaway PostgreSQL has no certificate: clear text, which crosslist refuses unless told
# (crosslist.db.tls). A TEST_DATABASE_URL with TLS can say otherwise (CROSSLIST_DATABASE_SSLMODE=verify-full).
os.environ.setdefault("CROSSLIST_DATABASE_SSLMODE", "disable")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated PostgreSQL database: TEST_DATABASE_URL, or a throwaway cluster for this session."""
    from devstack.database import migrate

    given = os.environ.get("TEST_DATABASE_URL")
    cluster = None
    if given:
        url = given
    else:
        from devstack.postgres import start_cluster

        # The postgres OS user must reach the data directory: pytest's own temp dir is private.
        base = Path(tempfile.mkdtemp(prefix="crosslist-pg-", dir="/tmp"))
        base.chmod(0o755)
        cluster = start_cluster(base / "data")
        cluster.create_database("crosslist_test")
        url = cluster.url("crosslist_test")
    migrate(url)
    os.environ["DATABASE_URL"] = url  # what the handlers under test connect to
    try:
        yield url
    finally:
        if cluster is not None:
            cluster.stop()
            import shutil

            shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


# The fake eBay and Etsy (devstack.fake_ebay, devstack.fake_etsy): one server each for the session, reset
# before every test that asks for it.

from devstack.fake_ebay import FakeEbay  # noqa: E402 (appended with its fixtures)
from devstack.fake_etsy import FakeEtsy  # noqa: E402


@pytest.fixture(scope="session")
def fake_ebay_server() -> Iterator[FakeEbay]:
    with FakeEbay() as fake:
        yield fake


@pytest.fixture
def fake_ebay(fake_ebay_server: FakeEbay) -> FakeEbay:
    fake_ebay_server.reset()
    return fake_ebay_server


@pytest.fixture(scope="session")
def fake_etsy_server() -> Iterator[FakeEtsy]:
    with FakeEtsy() as fake:
        yield fake


@pytest.fixture
def fake_etsy(fake_etsy_server: FakeEtsy) -> FakeEtsy:
    fake_etsy_server.reset()
    return fake_etsy_server
