"""The Broker seam: how one node's record and schema changes reach every node.

A message is a small JSON-able dict:

* ``{"type": "record", "action": "create"|"update"|"delete", "collection": <id>, "record": {...}}``
  where ``record`` holds the stored (column) values of the record as committed;
* ``{"type": "record", ..., "ref": true}`` without ``record``: too large to ship, the receiving
  node re-reads the row (never used for deletes);
* ``{"type": "collections"}``: the schema changed, drop cached collections;
* ``{"type": "changes"}``: a wake-up: the change log in PostgreSQL has new rows (``changelog``).
  On PostgreSQL record changes travel that way, whichever the broker: the broker only wakes.

``publish`` is called from any thread (after-commit hooks run on worker threads) and never
blocks. ``deliver`` (given to ``start``) is always called on the event loop; a broker calls it
for local messages too, unless ``publish(..., local=False)``.

Implementations: :class:`MemoryBroker` (one process), and for several processes
:class:`keepbase.realtime.pg_broker.PostgresBroker` (LISTEN/NOTIFY) and
:class:`keepbase.realtime.redis_broker.RedisBroker` (Redis pub/sub).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("keepbase.realtime")

Message = dict[str, Any]
Deliver = Callable[[Message], None]


class Broker(Protocol):
    #: True when messages reach other processes (then events are published even without local clients)
    shared: bool

    async def start(self, deliver: Deliver, on_connect: Callable[[], None] | None = None) -> None:
        """Begin delivering; ``on_connect`` runs (on the loop) after each (re)connection."""

    async def stop(self) -> None: ...

    def publish(self, message: Message, *, local: bool = True) -> None:
        """Thread-safe, non-blocking."""


class MemoryBroker:
    """Delivers to this process only."""

    shared = False

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, on_connect: Callable[[], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver

    async def stop(self) -> None:
        self._loop = None
        self._deliver = None

    def publish(self, message: Message, *, local: bool = True) -> None:
        loop, deliver = self._loop, self._deliver
        if not local or loop is None or deliver is None:
            return
        try:
            loop.call_soon_threadsafe(deliver, message)
        except RuntimeError:  # the loop has closed: the server is shutting down
            log.debug("realtime message dropped: event loop closed")
