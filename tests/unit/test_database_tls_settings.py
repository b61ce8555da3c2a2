"""What the operator's settings make of a database connection: always verified TLS, clear text only in development."""

from __future__ import annotations

import ssl

import pytest
from pydantic import ValidationError

from crosslist.db.tls import DatabaseTls, DatabaseTlsError
from crosslist.settings import Settings
from tests.support.authority import CertificateAuthority


@pytest.mark.parametrize("sslmode", [None, "require", "verify-ca", "verify-full"])
def test_every_mode_asking_for_tls_gets_the_chain_and_the_host_name_verified(sslmode: str | None) -> None:
    for tls in (DatabaseTls(), DatabaseTls(plaintext_allowed=sslmode is not None)):
        context = tls.connect_argument(sslmode)
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True


@pytest.mark.parametrize("sslmode", ["disable", "allow", "prefer"])
def test_a_mode_allowing_clear_text_is_refused_unless_in_development(sslmode: str) -> None:
    with pytest.raises(DatabaseTlsError, match="clear text"):
        DatabaseTls().connect_argument(sslmode)
    assert DatabaseTls(plaintext_allowed=True).connect_argument(sslmode) is False


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(DatabaseTlsError, match="unknown sslmode"):
        DatabaseTls(plaintext_allowed=True).connect_argument("verify_full")


def test_the_given_ca_bundle_replaces_the_system_cas() -> None:
    authority = CertificateAuthority.create()
    context = DatabaseTls(ca_bundle=authority.pem).ssl_context()
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "crosslist test authority"),),)]


def test_a_ca_bundle_that_is_not_pem_says_so() -> None:
    with pytest.raises(DatabaseTlsError, match="not PEM certificates"):
        DatabaseTls(ca_bundle="arn:aws:secretsmanager:eu-west-1:123456789012:secret:oops").ssl_context()


def test_the_development_switch_is_off_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSLIST_DATABASE_SSLMODE", raising=False)
    assert Settings().database_sslmode == "verify-full"
    assert DatabaseTls.from_environment().plaintext_allowed is False
    monkeypatch.setenv("CROSSLIST_DATABASE_SSLMODE", "disable")
    assert DatabaseTls.from_environment().plaintext_allowed is True
    # A typo fails every function at once rather than quietly meaning something else.
    monkeypatch.setenv("CROSSLIST_DATABASE_SSLMODE", "off")
    with pytest.raises(ValidationError):
        Settings()
