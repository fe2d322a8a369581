"""Build the realtime service for a Config: Redis pub/sub when a Redis URL is set, else LISTEN/NOTIFY on
PostgreSQL, else (SQLite) an in-memory broker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from ..core.config import Config
from ..core.events import Hooks
from ..store.records import RecordService
from .access import Project
from .broker import Broker, MemoryBroker
from .service import Realtime, RealtimeSettings, VerifyToken


def build_realtime(config: Config, records: RecordService, hooks: Hooks, *, verify_token: VerifyToken | None = None,
                   project: Project | None = None) -> Realtime:
    broker: Broker
    if config.redis_url:
        from ..store.instance import redis_namespace
        from .redis_broker import RedisBroker

        broker = RedisBroker(config.redis_url, redis_namespace(config, records.db, records.collections.params))
    elif config.db:
        from .pg_broker import PostgresBroker

        broker = PostgresBroker(config.db, notify_now=notify_with(records.db.writer))
    else:
        broker = MemoryBroker()
    settings = RealtimeSettings(
        max_clients=config.realtime_max_clients, queue_size=config.realtime_queue_size,
        ping_interval=float(config.realtime_ping_interval), idle_timeout=float(config.realtime_idle_timeout),
    )
    return Realtime(records, hooks, broker, settings, verify_token=verify_token, project=project)


def notify_with(engine: Any) -> Any:
    """Send NOTIFYs over a pooled connection of the app's engine (one short transaction)."""

    def notify(channel: str, payloads: list[str]) -> None:
        with engine.connect() as conn:
            for payload in payloads:
                conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})
            conn.commit()

    return notify
