"""Redis pub/sub broker: every node of one database sees every node's changes, through Redis.

Chosen instead of PostgreSQL LISTEN/NOTIFY (and instead of the in-memory broker on SQLite) when
``KEEPBASE_REDIS_URL`` is set. All nodes of one database publish to and subscribe to one channel,
``<namespace>:events``; the namespace holds a random id stored in the database, so deployments
sharing one Redis never see each other's events.

Wire format: ``<node>|<json>``, one PUBLISH per message whatever its size (Redis takes up to
512 MB), so unlike NOTIFY there are no references or chunks. A node delivers its own messages
locally at once and skips them on receipt, like the PostgreSQL broker.

Publishing: from the thread that committed a write, the message is PUBLISHed synchronously
before the write is acknowledged (a node killed right after answering loses no event of an
answered write); from the event loop, or while Redis fails to answer, it goes through an
in-memory outbox drained by a sender task. The subscriber and the sender run under the
supervisor: a lost connection is logged and reopened, and ``on_connect`` runs after each
(re)subscription so the realtime service reloads what it may have missed. A subscriber that
hears nothing, not even the answer to its own PING, for ``_DEAD_AFTER`` seconds reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

from ..core.ids import random_string
from .broker import Deliver, Message
from .supervisor import Supervisor

log = logging.getLogger("keepbase.realtime")

_OUTBOX_MAX = 100_000
_PING_EVERY = 5.0  # seconds of silence before the subscriber PINGs Redis
_DEAD_AFTER = 15.0  # seconds without any answer before the subscriber reconnects
_SYNC_BACKOFF = 5.0  # after a failed synchronous PUBLISH, queue messages for this long
_TIMEOUT = 10.0
_SYNC_TIMEOUT = 5.0  # bounds how long a write's answer can wait on an unreachable Redis


def channel_name(namespace: str) -> str:
    return f"{namespace}:events"


def encode(node: str, message: Message) -> bytes:
    return node.encode() + b"|" + orjson.dumps(message)


def decode(node: str, payload: bytes) -> Message | None:
    """The message of a payload, or None for one this node sent itself."""
    sender, _, body = payload.partition(b"|")
    if sender.decode(errors="replace") == node:
        return None
    msg: Message = orjson.loads(body)
    return msg


def _client_kwargs(timeout: float) -> dict[str, Any]:
    # retries=0: a failure surfaces to the supervisor, which reconnects and re-runs on_connect
    # (redis-py's own silent reconnection would resubscribe without telling us)
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout, "socket_keepalive": True,
            "health_check_interval": 0}


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RedisBroker:
    """Redis PUBLISH/SUBSCRIBE on one channel per database; see the module docstring."""

    shared = True

    def __init__(self, url: str, namespace: str, *, node: str | None = None) -> None:
        self.url = url
        self.channel = channel_name(namespace)
        self.node = node or random_string(12)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None
        self._on_connect: Callable[[], None] | None = None
        self._outbox: asyncio.Queue[bytes] | None = None
        self._supervisor = Supervisor()
        self._sync: redis.Redis | None = None
        self._sync_down_until = 0.0
        self.listening = asyncio.Event()
        self.connections = 0  # successful subscriptions so far (1 + reconnections)

    async def start(self, deliver: Deliver, on_connect: Callable[[], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._deliver = deliver
        self._on_connect = on_connect
        self._outbox = asyncio.Queue(maxsize=_OUTBOX_MAX)
        self._sync = redis.Redis.from_url(self.url, retry=redis.retry.Retry(NoBackoff(), 0),
                                          **_client_kwargs(_SYNC_TIMEOUT))
        self._supervisor.start("redis-subscribe", self._listen)
        self._supervisor.start("redis-publish", self._send)

    async def stop(self) -> None:
        await self._supervisor.stop()
        self._loop = None
        self._deliver = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def publish(self, message: Message, *, local: bool = True) -> None:
        loop = self._loop
        if loop is None:
            return
        payload = encode(self.node, message)
        sent = False
        sync = self._sync
        if sync is not None and not _on_loop() and time.monotonic() >= self._sync_down_until:
            try:
                sync.publish(self.channel, payload)
                sent = True
            except Exception:
                self._sync_down_until = time.monotonic() + _SYNC_BACKOFF
                log.exception("realtime: synchronous PUBLISH failed; queued instead")
        try:
            if local and self._deliver is not None:
                loop.call_soon_threadsafe(self._deliver, message)
            if not sent:
                loop.call_soon_threadsafe(self._enqueue, payload)
        except RuntimeError:
            log.debug("realtime message dropped: event loop closed")

    def _enqueue(self, payload: bytes) -> None:
        if self._outbox is None:
            return
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            log.error("realtime: PUBLISH outbox full (Redis unreachable?); message dropped")

    def _client(self) -> redis.asyncio.Redis:
        return redis.asyncio.Redis.from_url(self.url, retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
                                            **_client_kwargs(_TIMEOUT))

    async def _listen(self) -> None:
        client = self._client()
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            loop = asyncio.get_running_loop()
            last_heard = last_ping = loop.time()
            while True:
                item = await pubsub.get_message(timeout=1.0)
                now = loop.time()
                if item is not None:
                    last_heard = now
                    kind = item["type"]
                    if kind == "subscribe":
                        self.connections += 1
                        self.listening.set()
                        if self._on_connect is not None:
                            self._on_connect()
                    elif kind == "message":
                        self._receive(item["data"])
                    continue
                if now - last_heard >= _DEAD_AFTER:
                    raise ConnectionError(f"no answer from Redis for {_DEAD_AFTER:.0f}s")
                if now - last_heard >= _PING_EVERY and now - last_ping >= _PING_EVERY:
                    last_ping = now
                    await pubsub.ping()
        finally:
            self.listening.clear()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    def _receive(self, payload: bytes) -> None:
        try:
            msg = decode(self.node, payload)
        except (ValueError, orjson.JSONDecodeError):
            log.warning("realtime: malformed Redis message ignored")
            return
        if msg is not None and self._deliver is not None:
            self._deliver(msg)

    async def _send(self) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        client = self._client()
        try:
            while True:
                batch = [await outbox.get()]
                while len(batch) < 200 and not outbox.empty():
                    batch.append(outbox.get_nowait())
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        for payload in batch:
                            pipe.publish(self.channel, payload)
                        await pipe.execute()
                except redis.RedisError:
                    log.error("realtime: %d message(s) lost with the Redis connection", len(batch))
                    raise
        finally:
            await client.aclose()
