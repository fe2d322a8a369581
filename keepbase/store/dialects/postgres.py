"""PostgreSQL engine: one connection pool per process (psycopg 3, server-side prepared statements).

Dead pooled connections. When PostgreSQL restarts, every idle pooled connection is dead, and the
first request to check one out would fail. ``pool_pre_ping`` avoids that with a round trip
(``SELECT 1``) before every checkout, which costs the hot read path about as much as the read
itself. Instead each checkout polls the connection's socket without waiting: an idle connection
has nothing to read unless the server closed it (a shutdown sends ``FATAL 57P01`` then EOF; a
crash leaves EOF), so a readable socket means a dead connection, which SQLAlchemy then replaces
with a fresh one (``DisconnectionError`` at checkout). Cost: one ``poll`` system call.

Prepared statements after a schema change. psycopg prepares a statement on the server once a
connection has run it ``prepare_threshold`` times, which is what makes the hot reads cheap. When a
view is dropped and recreated under its name with other column types, the statement text is the
same but its result type is not, and each pooled connection that prepared it fails once ("cached
plan must not change result type", SQLSTATE 0A000) before psycopg drops its cache. So every
committed schema change (``forget_prepared_statements``: the collections registry calls it after
each reload, on this node and on the others) starts a new *plan generation*; a pooled connection
from an older generation is replaced by a fresh one at its next checkout (the same
``DisconnectionError`` path as a dead connection), so its prepared statements go with it, and the
new connection prepares the hot statements again after a few uses. The 0A000 error itself also
starts a new generation: it covers a change made on another node that this node has not heard of
yet (that one request fails; the next ones get fresh connections).

``is_connection_error`` tells a lost or refused connection (the database is unreachable: 503)
from an error the server answered with (a bad statement, a timeout: the request's fault).
"""

from __future__ import annotations

import itertools
import select
import weakref
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
    generation = _PlanGeneration()
    _GENERATIONS[engine] = generation
    event.listen(engine, "connect", generation.stamp)
    event.listen(engine, "checkout", generation.check)
    event.listen(engine, "handle_error", generation.on_error)
    return engine


def forget_prepared_statements(engine: Engine) -> None:
    """After a committed schema change: every pooled connection of ``engine`` gives up the
    statements it prepared before its next use (see the module docstring)."""
    generation = _GENERATIONS.get(engine)
    if generation is not None:
        generation.advance()


#: key of a pooled connection's plan generation in its ``ConnectionRecord.info``
_GENERATION_KEY = "keepbase_plan_generation"
#: PostgreSQL's wording of SQLSTATE 0A000 for a prepared statement whose result type changed
_PLAN_CHANGED = "cached plan must not change result type"


class _PlanGeneration:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.value = 0

    def advance(self) -> None:
        self.value = next(self._counter)  # atomic under the GIL: two advances never share a value

    def stamp(self, dbapi_conn: Any, record: Any) -> None:
        record.info[_GENERATION_KEY] = self.value

    def check(self, dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if _closed_by_server(dbapi_conn):
            raise DisconnectionError("the server closed this pooled connection")
        if record.info.get(_GENERATION_KEY) != self.value:
            raise DisconnectionError("this pooled connection prepared statements before a schema change")

    def on_error(self, context: Any) -> None:
        orig = context.original_exception
        if isinstance(orig, psycopg.errors.FeatureNotSupported) and _PLAN_CHANGED in str(orig):
            self.advance()


_GENERATIONS: weakref.WeakKeyDictionary[Engine, _PlanGeneration] = weakref.WeakKeyDictionary()


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
