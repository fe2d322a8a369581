"""PostgreSQL engine: one connection pool per process (psycopg 3, server-side prepared statements)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url


def normalize_url(url: str) -> str:
    u = make_url(url.replace("postgres://", "postgresql://", 1))
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_pg_engine(url: str, *, pool_size: int, timeout_ms: int) -> Engine:
    connect_args: dict[str, Any] = {
        "options": f"-c statement_timeout={int(timeout_ms)} -c idle_in_transaction_session_timeout=60000",
        "prepare_threshold": 5,
    }
    return create_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
