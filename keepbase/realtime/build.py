"""Build the realtime service for a Config: in-memory broker on SQLite, LISTEN/NOTIFY on PostgreSQL."""

from __future__ import annotations

from ..core.config import Config
from ..core.events import Hooks
from ..store.records import RecordService
from .access import Project
from .broker import Broker, MemoryBroker
from .service import Realtime, RealtimeSettings, VerifyToken


def build_realtime(config: Config, records: RecordService, hooks: Hooks, *, verify_token: VerifyToken | None = None,
                   project: Project | None = None) -> Realtime:
    broker: Broker
    if config.db:
        from .pg_broker import PostgresBroker

        broker = PostgresBroker(config.db)
    else:
        broker = MemoryBroker()
    settings = RealtimeSettings(
        max_clients=config.realtime_max_clients, queue_size=config.realtime_queue_size,
        ping_interval=float(config.realtime_ping_interval), idle_timeout=float(config.realtime_idle_timeout),
    )
    return Realtime(records, hooks, broker, settings, verify_token=verify_token, project=project)
