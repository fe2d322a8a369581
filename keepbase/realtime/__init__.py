"""Realtime: SSE subscriptions fed by record events, fanned out across nodes by a Broker."""

from .broker import Broker, MemoryBroker
from .build import build_realtime
from .service import Realtime, RealtimeSettings

__all__ = ["Broker", "MemoryBroker", "Realtime", "RealtimeSettings", "build_realtime"]
