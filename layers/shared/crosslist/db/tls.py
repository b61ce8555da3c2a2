"""TLS to PostgreSQL: always on, the server's certificate and host name verified, never clear text by accident.

Left to itself (no `ssl_context`), pg8000 asks the server for TLS but verifies nothing, and carries on in clear
text when the server says no: whoever sits on the path reads and changes every query, passwords included. Here
every connection gets a context that verifies the server's chain, against the system's CAs or, when the operator
gives one, against their CA bundle alone (a private CA such as RDS's or Supabase's), and checks the host name.
A server that refuses TLS, or whose certificate does not check out, is refused: there is no fallback.

Clear text is for development only, and explicit: CROSSLIST_DATABASE_SSLMODE=disable (the devstack and the tests
set it for their own PostgreSQL, which has no certificate; the deployed template never sets it). A URL may carry
libpq's `sslmode`, as providers hand them out (Neon's: `?sslmode=require`): `require`, `verify-ca` and
`verify-full` all get the full verification; a mode that lets a connection go in clear text (`disable`, `allow`,
`prefer`) is refused unless that development setting is on.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, event

# The development switch (crosslist.settings.Settings.database_sslmode) and the one value that turns TLS off.
PLAINTEXT_SETTING = "CROSSLIST_DATABASE_SSLMODE"
PLAINTEXT = "disable"
# libpq's modes a URL may carry: those asking for TLS (all verified in full here), and those allowing clear text.
TLS_MODES = frozenset({"require", "verify-ca", "verify-full"})
PLAINTEXT_MODES = frozenset({"disable", "allow", "prefer"})
# Read once per engine (once per Lambda instance); a rotated bundle reaches instances started after it.
CA_SECRET_MAX_AGE_SECONDS = 300


class DatabaseTlsError(ValueError):
    """The TLS settings of the database connection are wrong: no connection is attempted."""


@dataclass(frozen=True)
class DatabaseTls:
    """How crosslist connects to PostgreSQL.

    `ca_bundle`: PEM certificates of the CA(s) that sign the server's certificate; None trusts the system's CAs
    (a server with a publicly trusted certificate: Neon, RDS Proxy). `plaintext_allowed`: development only.
    """

    ca_bundle: str | None = None
    plaintext_allowed: bool = False

    @classmethod
    def from_environment(cls) -> DatabaseTls:
        """As the function's settings say, wherever the engine is made (the functions, the migration function):
        the operator's CA bundle (the secret DATABASE_CA_SECRET_ARN) or the system's CAs; clear text only under
        the development setting."""
        from crosslist.settings import Settings

        config = Settings()
        ca_bundle = None
        if config.database_ca_secret_arn:
            from aws_lambda_powertools.utilities import parameters

            ca_bundle = str(parameters.get_secret(config.database_ca_secret_arn, max_age=CA_SECRET_MAX_AGE_SECONDS))
        return cls(ca_bundle=ca_bundle, plaintext_allowed=config.database_sslmode == PLAINTEXT)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the chain and the host name (Python's defaults, stated)."""
        try:
            context = (
                ssl.create_default_context(cadata=self.ca_bundle) if self.ca_bundle else ssl.create_default_context()
            )
        except (ssl.SSLError, ValueError) as error:
            raise DatabaseTlsError(f"the database CA bundle is not PEM certificates: {error}") from error
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def connect_argument(self, sslmode: str | None) -> ssl.SSLContext | Literal[False]:
        """pg8000's `ssl_context` for a URL carrying `sslmode` (None: none given): a verifying context, or False
        (no TLS at all) when clear text is allowed here and the URL does not ask for TLS."""
        if sslmode is not None and sslmode not in TLS_MODES | PLAINTEXT_MODES:
            raise DatabaseTlsError(f"unknown sslmode {sslmode!r} in the database URL")
        if self.plaintext_allowed and sslmode not in TLS_MODES:
            return False
        if sslmode in PLAINTEXT_MODES:
            raise DatabaseTlsError(
                f"the database URL says sslmode={sslmode}, which allows clear text: crosslist always uses TLS and"
                f" verifies the server (remove it, or use sslmode=verify-full); clear text is for development only"
                f" ({PLAINTEXT_SETTING}={PLAINTEXT})"
            )
        return self.ssl_context()


def require_tls(engine: Engine, tls: DatabaseTls) -> None:
    """Every connection `engine` opens goes as `tls` says. The settings are checked now: a wrong one fails at once,
    not at the first query."""
    sslmode = engine.url.query.get("sslmode")
    if isinstance(sslmode, tuple):
        raise DatabaseTlsError("the database URL gives sslmode more than once")
    ssl_context = tls.connect_argument(sslmode)

    def use_tls(dialect: Any, connection_record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        cparams.pop("sslmode", None)  # libpq's word, unknown to pg8000
        cparams["ssl_context"] = ssl_context

    event.listen(engine, "do_connect", use_tls)
