"""Build the realtime service for a Config: Redis pub/sub when a Redis URL is set, else LISTEN/NOTIFY on
PostgreSQL, else (SQLite) an in-memory broker. On PostgreSQL, whichever the broker, record changes
also go through the change log (``changelog``): the Database journals them in each write."""

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
    node = ""
    if config.redis_url:
        from ..store.instance import redis_namespace
        from .redis_broker import RedisBroker

        redis_broker = RedisBroker(config.redis_url, redis_namespace(config, records.db, records.collections.params))
        broker, node = redis_broker, redis_broker.node
    elif config.db:
        from .pg_broker import PostgresBroker

        pg_broker = PostgresBroker(config.db, notify_now=notify_with(records.db.writer), db=records.db)
        broker, node = pg_broker, pg_broker.node
    else:
        broker = MemoryBroker()
    feed = None
    if config.db:
        from . import changelog
        from .pg_broker import CHANNEL, conninfo_kwargs, encode

        changelog.ensure_table(records.db)
        feed = changelog.ChangeFeed(records.db, conninfo_kwargs(config.db), node)
        if config.redis_url:  # Redis wakes the nodes, after the commit
            records.db.journal = changelog.journal_writer(node, "", "")
        else:  # the writing transaction NOTIFYs them
            records.db.journal = changelog.journal_writer(node, CHANNEL, encode(node, changelog.WAKE)[0])
    settings = RealtimeSettings(
        max_clients=config.realtime_max_clients, queue_size=config.realtime_queue_size,
        ping_interval=float(config.realtime_ping_interval), idle_timeout=float(config.realtime_idle_timeout),
    )
    return Realtime(records, hooks, broker, settings, verify_token=verify_token, project=project, feed=feed,
                    wake_after_commit=bool(config.redis_url and config.db))


def notify_with(engine: Any) -> Any:
    """Send NOTIFYs over a pooled connection of the app's engine (one short transaction)."""

    def notify(channel: str, payloads: list[str]) -> None:
        with engine.connect() as conn:
            for payload in payloads:
                conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})
            conn.commit()

    return notify
