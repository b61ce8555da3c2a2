"""crosslist reaches PostgreSQL over TLS only, with the server's certificate and host name verified.

A real PostgreSQL with TLS on, its certificate signed by a throwaway CA: crosslist connects when given that CA
(as an operator gives RDS's), and refuses a server signed by any other CA, a certificate for another host, and a
server that offers no TLS at all (the session's PostgreSQL): it never carries on in clear text.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import InterfaceError

from crosslist import runtime
from crosslist.db.engine import make_engine, make_session_factory, transaction
from crosslist.db.tls import DatabaseTls, DatabaseTlsError
from devstack.postgres import Cluster, ServerCertificate, start_cluster
from tests.support.authority import CertificateAuthority

pytestmark = pytest.mark.integration

SERVER_NAME = "localhost"  # the name in the server's certificate; 127.0.0.1 reaches the same server by another name


@pytest.fixture(scope="module")
def authority() -> CertificateAuthority:
    return CertificateAuthority.create()


@pytest.fixture(scope="module")
def tls_server(authority: CertificateAuthority) -> Iterator[Cluster]:
    """PostgreSQL with ssl=on, presenting a certificate for SERVER_NAME that `authority` signed."""
    base = Path(tempfile.mkdtemp(prefix="crosslist-pg-tls-", dir="/tmp"))
    base.chmod(0o755)  # the postgres OS user must reach the data directory
    issued = authority.issue(SERVER_NAME)
    cluster = start_cluster(
        base / "data", certificate=ServerCertificate(issued.certificate_pem, issued.private_key_pem)
    )
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def _url(cluster: Cluster, host: str = SERVER_NAME, **query: str) -> str:
    return make_url(cluster.url()).set(host=host, query=query).render_as_string(hide_password=False)


def _encrypted(engine: Engine) -> bool:
    """Whether the server sees this session over TLS."""
    try:
        with engine.connect() as connection:
            return bool(
                connection.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar_one()
            )
    finally:
        engine.dispose()


def test_crosslist_connects_over_tls_to_a_server_the_given_ca_signed(
    tls_server: Cluster, authority: CertificateAuthority
) -> None:
    assert _encrypted(make_engine(_url(tls_server), tls=DatabaseTls(ca_bundle=authority.pem))) is True


def test_a_providers_url_asking_for_tls_connects_verified(tls_server: Cluster, authority: CertificateAuthority) -> None:
    # Neon hands out ...?sslmode=require: pg8000 knows no sslmode, and require must not mean "unverified" here.
    url = _url(tls_server, sslmode="require")
    assert _encrypted(make_engine(url, tls=DatabaseTls(ca_bundle=authority.pem))) is True
    with pytest.raises(ssl.SSLCertVerificationError):
        _encrypted(make_engine(url, tls=DatabaseTls(ca_bundle=CertificateAuthority.create("another").pem)))


@pytest.mark.parametrize(
    ("host", "trusted", "why"),
    [
        (SERVER_NAME, "another CA", "certificate verify failed"),
        (SERVER_NAME, "the system's CAs", "certificate verify failed"),
        ("127.0.0.1", "the server's CA", "mismatch"),  # signed by the right CA, for another name
    ],
)
def test_a_server_whose_certificate_does_not_check_out_is_refused(
    tls_server: Cluster, authority: CertificateAuthority, host: str, trusted: str, why: str
) -> None:
    bundle = {
        "another CA": CertificateAuthority.create("another").pem,
        "the system's CAs": None,
        "the server's CA": authority.pem,
    }[trusted]
    with pytest.raises(ssl.SSLCertVerificationError, match=why):
        _encrypted(make_engine(_url(tls_server, host=host), tls=DatabaseTls(ca_bundle=bundle)))


def test_a_server_without_tls_is_refused_never_spoken_to_in_clear_text(
    database_url: str, authority: CertificateAuthority
) -> None:
    # The session's PostgreSQL has ssl=off: pg8000 alone would carry on in clear text.
    with pytest.raises(InterfaceError, match="Server refuses SSL"):
        _encrypted(make_engine(database_url, tls=DatabaseTls(ca_bundle=authority.pem)))
    with pytest.raises(InterfaceError, match="Server refuses SSL"):
        _encrypted(make_engine(database_url, tls=DatabaseTls()))
    # Only the development setting talks to it.
    assert _encrypted(make_engine(database_url, tls=DatabaseTls(plaintext_allowed=True))) is False


def test_a_url_asking_for_clear_text_is_refused_before_connecting(database_url: str) -> None:
    for mode in ("disable", "allow", "prefer"):
        url = make_url(database_url).update_query_dict({"sslmode": mode}).render_as_string(hide_password=False)
        with pytest.raises(DatabaseTlsError, match=f"sslmode={mode}"):
            make_engine(url, tls=DatabaseTls())


@pytest.mark.parametrize("ca_given", [True, False], ids=["with the CA secret", "without it"])
def test_a_function_in_aws_trusts_the_ca_bundle_in_its_secret(
    tls_server: Cluster, authority: CertificateAuthority, monkeypatch: pytest.MonkeyPatch, ca_given: bool
) -> None:
    """DatabaseSecretArn holds the URL, DatabaseCaSecretArn the PEM bundle of a private CA (RDS's)."""
    with mock_aws():
        secrets = boto3.client("secretsmanager")
        suffix = "with-ca" if ca_given else "without-ca"
        url_arn = secrets.create_secret(Name=f"crosslist/url-{suffix}", SecretString=_url(tls_server))["ARN"]
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.delenv("CROSSLIST_DATABASE_SSLMODE", raising=False)  # as in AWS: the template never sets it
        monkeypatch.setenv("DATABASE_SECRET_ARN", url_arn)
        if ca_given:
            ca_arn = secrets.create_secret(Name="crosslist/ca", SecretString=authority.pem)["ARN"]
            monkeypatch.setenv("DATABASE_CA_SECRET_ARN", ca_arn)
        else:
            monkeypatch.delenv("DATABASE_CA_SECRET_ARN", raising=False)
        runtime.reset()
        try:
            if ca_given:
                with transaction(runtime.sessions()) as session:
                    assert session.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar()
            else:
                with pytest.raises(ssl.SSLCertVerificationError), transaction(runtime.sessions()) as session:
                    session.execute(text("SELECT 1"))
        finally:
            runtime.reset()


def test_the_engine_crosslist_makes_by_default_trusts_only_verified_servers(
    tls_server: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # make_engine without `tls`: the system's CAs, and clear text only under the development setting.
    monkeypatch.setenv("CROSSLIST_DATABASE_SSLMODE", "verify-full")
    sessions = make_session_factory(make_engine(_url(tls_server)))
    with pytest.raises(ssl.SSLCertVerificationError), transaction(sessions) as session:
        session.execute(text("SELECT 1"))
