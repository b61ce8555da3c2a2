"""PostgreSQL ends a crosslist connection left idle for a minute: a serverless database can pause.

A Lambda instance keeps its pooled connection between invocations, since a new one costs a TLS handshake and an
authentication on the next request's path. But a frozen instance never closes it, and Aurora Serverless v2 (auto-
pause) and Neon pause only after minutes with no connection at all: one warm instance kept the database, and its
minimum price, up for as long as Lambda kept the instance, hours after the last request. So every connection asks
the server, as it opens (a startup parameter: no extra round trip), to end the session after
IDLE_SESSION_TIMEOUT_MS without a query. The first checkout after that finds the connection closed (the engine's
pool_pre_ping) and opens another: one reconnection per instance after a minute of silence, none while it is busy.

*Rejected:* closing the pool at the end of every invocation (a new connection on every wake-up of a lane, which
is tens of ms against a few for the work); a client-side idle limit alone (a frozen instance cannot act on it).
Needs PostgreSQL 14 or later (`idle_session_timeout`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, event

# Well under the five idle minutes after which Aurora Serverless v2 and Neon may pause; long enough that a busy
# instance (a wake-up every few seconds) keeps its connection.
IDLE_SESSION_TIMEOUT_MS = 60_000


def end_idle_sessions(engine: Engine) -> None:
    """Every connection `engine` opens is ended by the server after IDLE_SESSION_TIMEOUT_MS idle."""

    def ask_server(dialect: Any, connection_record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        startup = dict(cparams.get("startup_params") or {})
        startup["idle_session_timeout"] = str(IDLE_SESSION_TIMEOUT_MS)
        cparams["startup_params"] = startup

    event.listen(engine, "do_connect", ask_server)
    # A logger's filters apply to its own records only: the pool's logger itself (sqlalchemy.pool.impl.QueuePool).
    pool_logger = getattr(engine.pool, "logger", None)
    if isinstance(pool_logger, logging.Logger) and _CLOSED_BY_SERVER not in pool_logger.filters:
        pool_logger.addFilter(_CLOSED_BY_SERVER)


class _ClosedByServer(logging.Filter):
    """Drops the pool's "Exception terminating connection" about a connection the server already ended.

    Discarding such a connection (after pre-ping, or at pool_recycle) makes pg8000 send a goodbye on a socket
    the server closed, which fails with a network error that SQLAlchemy logs with its traceback. That is the
    expected end of an idle session, not an error worth an operator's look; any other close failure still shows.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(("Exception terminating connection", "Exception closing connection")):
            return True
        error = record.exc_info[1] if record.exc_info else None
        return not _server_had_closed_it(error)


def _server_had_closed_it(error: BaseException | None) -> bool:
    """pg8000's InterfaceError("network error") raised by the socket refusing to send (the peer closed it)."""
    return (
        error is not None
        and type(error).__name__ == "InterfaceError"
        and "network error" in str(error)
        and isinstance(error.__cause__, OSError)
    )


_CLOSED_BY_SERVER = _ClosedByServer()
