"""PostgreSQL LISTEN/NOTIFY broker: every node of one database sees every node's changes.

Each process keeps two dedicated async psycopg connections (outside the SQLAlchemy pool): one
LISTENs, one sends ``pg_notify`` in small batches. Both run under the supervisor, so a lost
connection is logged and reopened; after each (re)connection ``on_connect`` runs, and the
realtime service uses it to reload the collections it may have missed changes to.

Wire format of a payload (NOTIFY allows < 8000 bytes): ``<node>|m|<json>`` for a message that
fits, else ``<node>|c|<msg id>|<i>|<n>|<base64 part>`` chunks reassembled by the receiver.
A record create/update too large to ship is sent as a reference (collection, id, action) and
the receiving node re-reads the row; deletes are chunked since the row is gone.
Messages a node sent itself are skipped on receipt: they were already delivered locally.

Record changes do not depend on these notifications on PostgreSQL: they are rows of the change
log (``changelog``), written by the transaction that made them, which also NOTIFYs a
``{"type": "changes"}`` wake-up in this wire format. A notification lost while a node was not
listening costs nothing but a little latency: the node reads the log after it reconnects.

While the database is unreachable both connections are retried with a backoff capped at 2 s;
the failures are not logged one by one: ``Database.connection_failed`` writes one line when the
outage starts, and ``Database.reachable`` one when the listener is back.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from sqlalchemy.engine import make_url

from ..core.ids import random_string
from ..store.db import Database
from ..store.dialects.postgres import is_connection_error
from .broker import Deliver, Message
from .supervisor import Supervisor

log = logging.getLogger("keepbase.realtime")

CHANNEL = "keepbase_events"
PAYLOAD_LIMIT = 7900  # PostgreSQL's limit is 8000 bytes including the channel name
_PART = (PAYLOAD_LIMIT - 100) // 4 * 3  # raw bytes per chunk, base64 grows them by 4/3
_OUTBOX_MAX = 100_000
_PARTIAL_TTL = 30.0


def conninfo_kwargs(url: str) -> dict[str, Any]:
    """psycopg connect() keywords for a SQLAlchemy URL (``postgresql+psycopg://...``)."""
    u = make_url(url.replace("postgres://", "postgresql://", 1))
    kwargs: dict[str, Any] = {"dbname": u.database or "postgres", "autocommit": True,
                              "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                              "keepalives_count": 3, "connect_timeout": 10}
    if u.host:
        kwargs["host"] = u.host
    if u.port:
        kwargs["port"] = u.port
    if u.username:
        kwargs["user"] = u.username
    if u.password is not None:
        kwargs["password"] = u.password
    for key, value in u.query.items():
        kwargs[key] = value if isinstance(value, str) else value[-1]
    return kwargs


def encode(node: str, message: Message) -> list[str]:
    """The NOTIFY payloads of one message (usually exactly one)."""
    body = orjson.dumps(message)
    if len(body) + len(node) + 3 <= PAYLOAD_LIMIT:
        return [f"{node}|m|{body.decode()}"]
    if message.get("type") == "record" and message.get("action") != "delete" and "record" in message:
        ref = {k: v for k, v in message.items() if k != "record"}
        ref["ref"] = True
        ref["id"] = message["record"].get("id", "")
        return encode(node, ref)
    msg_id = random_string(12)
    parts = [body[i:i + _PART] for i in range(0, len(body), _PART)]
    return [f"{node}|c|{msg_id}|{i}|{len(parts)}|{base64.b64encode(p).decode()}" for i, p in enumerate(parts)]


class Decoder:
    """Payloads → messages; chunks are held until complete (and forgotten after a while)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._partial: dict[str, tuple[float, list[bytes | None]]] = {}

    def feed(self, payload: str) -> Message | None:
        node, _, rest = payload.partition("|")
        if node == self.node:
            return None
        kind, _, rest = rest.partition("|")
        if kind == "m":
            msg: Message = orjson.loads(rest)
            return msg
        if kind != "c":
            return None
        msg_id, index, total, data = rest.split("|", 3)
        now = time.monotonic()
        for key in [k for k, (t, _) in self._partial.items() if now - t > _PARTIAL_TTL]:
            del self._partial[key]
        started, parts = self._partial.setdefault(msg_id, (now, [None] * int(total)))
        parts[int(index)] = base64.b64decode(data)
        if any(p is None for p in parts):
            return None
        del self._partial[msg_id]
        msg = orjson.loads(b"".join(p for p in parts if p is not None))
        return msg


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class PostgresBroker:
    """LISTEN/NOTIFY over two dedicated connections; see the module docstring."""

    shared = True

    def __init__(self, url: str, *, node: str | None = None,
                 notify_now: Callable[[str, list[str]], None] | None = None, db: Database | None = None) -> None:
        """``notify_now(channel, payloads)``, when given, sends NOTIFYs synchronously: it is used on
        the thread that committed a write, so the notification is out before the write is
        acknowledged (a node killed right after answering loses no event of an answered write)."""
        self.url = url
        self._notify_now = notify_now
        self.node = node or random_string(12)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None
        self._on_connect: Callable[[], None] | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self.db = db
        self._supervisor = Supervisor(max_delay=2.0, quiet=db.connection_failed if db is not None
                                      else is_connection_error)
        self.listening = asyncio.Event()
        self.connections = 0  # successful LISTENs so far (1 + reconnections)

    async def start(self, deliver: Deliver, on_connect: Callable[[], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        self._on_connect = on_connect
        self._outbox = asyncio.Queue(maxsize=_OUTBOX_MAX)
        self._supervisor.start("pg-listen", self._listen)
        self._supervisor.start("pg-notify", self._send)

    async def stop(self) -> None:
        await self._supervisor.stop()
        self._loop = None
        self._deliver = None

    def publish(self, message: Message, *, local: bool = True) -> None:
        loop = self._loop
        if loop is None:
            return
        payloads = encode(self.node, message)
        sent = False
        if self._notify_now is not None and not _on_loop():
            try:
                self._notify_now(CHANNEL, payloads)
                sent = True
            except Exception as exc:
                if self.db is not None and self.db.connection_failed(exc):
                    log.debug("realtime: synchronous NOTIFY failed (database unreachable); queued instead")
                else:
                    log.exception("realtime: synchronous NOTIFY failed; queued instead")
        try:
            if local and self._deliver is not None:
                loop.call_soon_threadsafe(self._deliver, message)
            if not sent:
                loop.call_soon_threadsafe(self._enqueue, payloads)
        except RuntimeError:
            log.debug("realtime message dropped: event loop closed")

    def _enqueue(self, payloads: list[str]) -> None:
        assert self._outbox is not None
        for p in payloads:
            try:
                self._outbox.put_nowait(p)
            except asyncio.QueueFull:
                log.error("realtime: NOTIFY outbox full (database unreachable?); message dropped")
                return

    async def _listen(self) -> None:
        decoder = Decoder(self.node)
        conn = await psycopg.AsyncConnection.connect(**conninfo_kwargs(self.url))
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.connections += 1
            if self.db is not None:
                self.db.reachable()
            self.listening.set()
            if self._on_connect is not None:
                self._on_connect()
            async for notify in conn.notifies():
                try:
                    msg = decoder.feed(notify.payload)
                except (ValueError, orjson.JSONDecodeError):
                    log.warning("realtime: malformed notification ignored")
                    continue
                if msg is not None and self._deliver is not None:
                    self._deliver(msg)
        finally:
            self.listening.clear()
            await conn.close()

    async def _send(self) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        conn = await psycopg.AsyncConnection.connect(**conninfo_kwargs(self.url))
        try:
            while True:
                batch = [await outbox.get()]
                while len(batch) < 200 and not outbox.empty():
                    batch.append(outbox.get_nowait())
                try:
                    async with conn.transaction():
                        for payload in batch:
                            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                except psycopg.Error:
                    log.error("realtime: %d notification(s) lost with the database connection", len(batch))
                    raise
        finally:
            await conn.close()
