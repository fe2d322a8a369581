"""PostgreSQL engine: one connection pool per process (psycopg 3, server-side prepared statements).

Dead pooled connections. When PostgreSQL restarts, every idle pooled connection is dead, and the
first request to check one out would fail. ``pool_pre_ping`` avoids that with a round trip
(``SELECT 1``) before every checkout, which costs the hot read path about as much as the read
itself. Instead each checkout polls the connection's socket without waiting: an idle connection
has nothing to read unless the server closed it (a shutdown sends ``FATAL 57P01`` then EOF; a
crash leaves EOF), so a readable socket means a dead connection, which SQLAlchemy then replaces
with a fresh one (``DisconnectionError`` at checkout). Cost: one ``poll`` system call.

``is_connection_error`` tells a lost or refused connection (the database is unreachable: 503)
from an error the server answered with (a bad statement, a timeout: the request's fault).
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

#: seconds to wait for a new connection (connection refused is immediate; an unreachable host is not)
CONNECT_TIMEOUT = 5
#: seconds a request waits for a free pooled connection before it is answered 503
POOL_TIMEOUT = 10
# SQLSTATEs that mean "this connection is gone or the server cannot take connections now":
# class 08 (connection exception), admin_shutdown, crash_shutdown, cannot_connect_now
_GONE_STATES = ("57P01", "57P02", "57P03")


def normalize_url(url: str) -> str:
    u = make_url(url.replace("postgres://", "postgresql://", 1))
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_pg_engine(url: str, *, pool_size: int, timeout_ms: int) -> Engine:
    connect_args: dict[str, Any] = {
        "options": f"-c statement_timeout={int(timeout_ms)} -c idle_in_transaction_session_timeout=60000",
        "prepare_threshold": 5,
        "connect_timeout": CONNECT_TIMEOUT,
        # a peer that vanished without closing (host down, network cut) is noticed in ~1 min
        "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
    }
    engine = create_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=POOL_TIMEOUT,
        pool_pre_ping=False,  # see the module docstring: a socket poll instead of a round trip
        connect_args=connect_args,
    )
    event.listen(engine, "checkout", _drop_if_closed)
    return engine


def _drop_if_closed(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    if _closed_by_server(dbapi_conn):
        raise DisconnectionError("the server closed this pooled connection")


def _closed_by_server(dbapi_conn: Any) -> bool:
    try:
        fd = dbapi_conn.fileno()
    except Exception:  # psycopg raises once the connection is closed
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (SQLAlchemy-wrapped or raw psycopg) means the database could not be
    reached: connection refused, lost or closed by a shutdown, or no pooled connection in time."""
    if isinstance(exc, PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig: Any = exc.orig
    else:
        orig = exc
    if isinstance(orig, psycopg.InterfaceError):  # "the connection is closed"
        return True
    if isinstance(orig, psycopg.OperationalError):
        state = orig.sqlstate
        return state is None or state.startswith("08") or state in _GONE_STATES
    return isinstance(orig, OSError)
