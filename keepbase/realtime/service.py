"""The realtime service: record events → broker → access checks → each client's queue.

Record changes arrive through the after-commit hooks (``record_after_*``; they run on whichever
thread committed) and schema changes through ``collection_after_change``. Both go to the
broker, which brings every node's messages back to each node's event loop, where one dispatcher
task handles them in order, taking whatever has piled up at once: each event's access checks are
decided per distinct viewer (``access``), on the loop when no query is needed, otherwise in one
worker-thread hop for the whole batch; then each event is encoded once per viewer and queued on
the clients, which write all they have queued in one go (``outbox``). Background tasks
(dispatcher, housekeeping, the broker's connections) run under a :class:`Supervisor` that logs
and restarts them.

On PostgreSQL, record changes reach the other nodes through the change log (``changelog``): the
writing transaction stores them, the broker only wakes the nodes, and each node's ``ChangeFeed``
reads what it has not dispatched yet (also after reconnecting to a database that was down). A
node delivers its own changes to its clients at once, from the after-commit hook.

The stored auth of a client follows its record: an update with a new ``tokenKey`` (password or
email change) or a delete drops it (the client continues as a guest, like PocketBase), any
other update refreshes it; tokens are also re-verified periodically (collection secret changes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import orjson
from sqlalchemy import func, select

from ..core.errors import DatabaseUnavailableError
from ..core.events import Event, Hooks, RecordEvent
from ..core.types import AuthInfo
from ..store.models import Collection
from ..store.record_input import row_values
from ..store.records import RecordService
from .access import EventRender, Project, Viewer, ViewerKey, finish, prepare, stored_values
from .broker import Broker, Message
from .changelog import JOURNALED, WAKE, ChangeFeed
from .sse import PING, frame, frame_tail
from .subscriptions import Client, ClientRegistry, Subscription
from .supervisor import Supervisor

log = logging.getLogger("keepbase.realtime")

VerifyToken = Callable[[str], AuthInfo | None]
Targets = list[tuple[Client, Subscription, ViewerKey]]  # who an event may reach, as which viewer
_MAX_WRITE = 64 * 1024  # bytes coalesced into one write of an SSE stream
_MAX_BATCH = 64  # broker messages the dispatcher takes at once
SHUTDOWN = "server shutting down"  # the drop reason of streams ended by a server shutdown


@dataclass(frozen=True)
class RealtimeSettings:
    max_clients: int = 10000
    queue_size: int = 512
    ping_interval: float = 25.0  # 0 disables keep-alive comments
    idle_timeout: float = 300.0  # PocketBase: 5 minutes without a delivered message
    max_lifetime: float = 1800.0  # PocketBase: 30 minutes at most
    auth_check_interval: float = 60.0
    schema_check_interval: float = 15.0
    inbox_size: int = 50_000


class Realtime:
    def __init__(self, records: RecordService, hooks: Hooks, broker: Broker, settings: RealtimeSettings,
                 *, verify_token: VerifyToken | None = None, project: Project | None = None,
                 feed: ChangeFeed | None = None, wake_after_commit: bool = False) -> None:
        """``feed``: the change log reader (PostgreSQL); ``wake_after_commit``: tell the other nodes
        through the broker after each journaled commit (Redis; a PostgreSQL transaction NOTIFYs itself)."""
        self.records = records
        self.feed = feed
        self.wake_after_commit = wake_after_commit
        self.collections = records.collections
        self.broker = broker
        self.settings = settings
        self.verify_token = verify_token
        self.project = project
        self.clients = ClientRegistry(max_clients=settings.max_clients, queue_size=settings.queue_size)
        self.supervisor = Supervisor(quiet=lambda exc: isinstance(exc, DatabaseUnavailableError))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[Message] | None = None
        self._start_lock: asyncio.Lock | None = None
        self._fingerprint: Any = None
        self.delivered = 0
        self.closing = False  # set at shutdown: no new streams
        for hook in (hooks.record_after_create, hooks.record_after_update, hooks.record_after_delete):
            hook.bind(self._on_record, id="keepbase-realtime")
        hooks.collection_after_change.bind(self._on_collections, id="keepbase-realtime")

    # --- lifecycle (event loop) ---
    @property
    def started(self) -> bool:
        return self._loop is not None

    async def ensure_started(self) -> None:
        if self._loop is not None:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._loop is None:
                await self.start()

    async def start(self) -> None:
        self._inbox = asyncio.Queue(maxsize=self.settings.inbox_size)
        await self.broker.start(self._deliver, self._on_broker_connect)
        if self.feed is not None:
            await self.feed.start(self._deliver)
        self._loop = asyncio.get_running_loop()
        self.supervisor.start("realtime-dispatch", self._dispatch)
        self.supervisor.start("realtime-housekeeping", self._housekeeping)

    def close_streams(self) -> None:
        """Server shutdown: end every stream now (clients reconnect, to another node if there is one)
        and refuse new ones (503)."""
        self.closing = True
        for client in list(self.clients.clients.values()):
            client.drop(SHUTDOWN)

    async def stop(self) -> None:
        self.closing = True
        self._loop = None
        for client in list(self.clients.clients.values()):
            client.drop(SHUTDOWN)
        await self.supervisor.stop()
        if self.feed is not None:
            await self.feed.stop()
        await self.broker.stop()

    # --- hooks (any thread) ---
    def _on_record(self, e: RecordEvent) -> None:
        loop = self._loop
        if loop is None:
            return
        c: Collection = e.collection
        if c is None or c.is_view:
            return
        if self.feed is not None and getattr(e, JOURNALED, False):  # the other nodes read the change log
            if self.wake_after_commit:
                self.broker.publish(WAKE, local=False)
            if self.clients.clients:
                message = {"type": "record", "action": e.action, "collection": c.id,
                           "record": stored_values(c, e.record)}
                try:
                    loop.call_soon_threadsafe(self._deliver, message)
                except RuntimeError:  # the loop has closed: the server is shutting down
                    pass
            return
        if not self.broker.shared and not self.clients.clients:
            return
        self.broker.publish({"type": "record", "action": e.action, "collection": c.id,
                             "record": stored_values(c, e.record)})

    def _on_collections(self, e: Event) -> None:
        if self._loop is not None:
            self.broker.publish({"type": "collections"}, local=False)

    # --- broker side (event loop) ---
    def _deliver(self, message: Message) -> None:
        if self._inbox is None:
            return
        try:
            self._inbox.put_nowait(message)
        except asyncio.QueueFull:
            log.error("realtime: dispatcher is %d messages behind; message dropped", self._inbox.qsize())

    def _on_broker_connect(self) -> None:
        # notifications sent while this node was not listening are lost: reload the schema, and
        # read the change log for the record changes
        self._deliver({"type": "collections"})
        if self.feed is not None:
            self.feed.wake()

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    async def _dispatch(self) -> None:
        assert self._inbox is not None
        inbox = self._inbox
        while True:
            batch = [await inbox.get()]
            while len(batch) < _MAX_BATCH and not inbox.empty():
                batch.append(inbox.get_nowait())
            try:
                await self._handle_batch(batch)
            except DatabaseUnavailableError:  # the outage itself is logged once by the Database
                log.warning("realtime: %d messages not dispatched: the database is unreachable", len(batch))
            except Exception:
                log.exception("realtime: failed to dispatch %d messages", len(batch))

    async def _handle_batch(self, batch: list[Message]) -> None:
        """Handle messages in order; the access checks of consecutive record events share one thread hop."""
        ready: list[tuple[EventRender, Targets]] = []
        for message in batch:
            kind = message.get("type")
            try:
                if kind == "changes":
                    if self.feed is not None:
                        self.feed.wake()
                elif kind == "collections":
                    await self._flush(ready)
                    await self._thread(self.collections.refresh)
                elif kind == "record":
                    if self.collections.find(str(message.get("collection", ""))) is None or message.get("ref"):
                        await self._flush(ready)  # needs the database before the event can be read
                    event = await self._prepare(message)
                    if event is not None:
                        ready.append(event)
            except DatabaseUnavailableError:
                log.warning("realtime: a %s message was not dispatched: the database is unreachable", kind)
            except Exception:
                log.exception("realtime: failed to dispatch %s message", kind)
        await self._flush(ready)

    async def _prepare(self, message: Message) -> tuple[EventRender, Targets] | None:
        """The event's subscriptions, with every access check decided that needs no query."""
        c = self.collections.find(str(message.get("collection", "")))
        if c is None:  # created on another node a moment ago
            await self._thread(self.collections.refresh)
            c = self.collections.find(str(message.get("collection", "")))
            if c is None:
                return None
        action = str(message.get("action", ""))
        values: dict[str, Any] | None = message.get("record")
        if message.get("ref"):
            values = await self._thread(self._load, c, str(message.get("id", "")))
        if not values:
            return None
        record_id = str(values.get("id", ""))
        if c.is_auth:
            self._follow_auth(c, action, values)
        targets = self.clients.targets((c.name, c.id), record_id)
        if not targets:
            return None
        # the viewers are taken now: a later event (_follow_auth) or a subscribe call may change a client's auth
        viewers = [Viewer(client.auth, sub) for client, sub in targets]
        event = prepare(c, action, values, viewers, self.project)
        return event, [(client, sub, viewer.key) for (client, sub), viewer in zip(targets, viewers, strict=True)]

    async def _flush(self, ready: list[tuple[EventRender, Targets]]) -> None:
        """Finish the access checks of ``ready`` (one thread hop, if any needs a query), then queue the frames."""
        if not ready:
            return
        events = [event for event, _ in ready]
        if any(event.pending for event in events):
            await self._thread(finish, self.records, events, self.project)
        for event, targets in ready:
            self._push(event, targets)
        ready.clear()

    def _push(self, event: EventRender, targets: Targets) -> None:
        tails: dict[tuple[str, int], bytes] = {}  # one frame tail per (event name, payload)
        payloads = event.out
        for client, sub, key in targets:
            data = payloads.get(key)
            if data is None:
                continue
            tail_key = (sub.raw, id(data))
            tail = tails.get(tail_key)
            if tail is None:
                tail = tails[tail_key] = frame_tail(sub.raw, data)
            if client.push(client.head + tail):
                self.delivered += 1

    def _load(self, c: Collection, record_id: str) -> dict[str, Any] | None:
        table = self.records.table(c)
        with self.records.db.read() as conn:
            row = conn.execute(select(table).where(table.c.id == record_id)).first()
        return None if row is None else stored_values(c, row_values(c, row))

    def _follow_auth(self, c: Collection, action: str, values: dict[str, Any]) -> None:
        record_id = str(values.get("id", ""))
        for client in self.clients.with_auth_record(c.id, record_id):
            assert client.auth is not None
            if action == "delete" or values.get("tokenKey") != client.auth.record.get("tokenKey"):
                client.auth, client.token = None, ""
            else:
                record = row_values(c, values)
                record["password"] = client.auth.record.get("password", "")
                client.auth = AuthInfo(c.id, c.name, record)

    # --- housekeeping ---
    async def _housekeeping(self) -> None:
        last_auth = last_schema = time.monotonic()
        while True:
            await asyncio.sleep(min(5.0, self.settings.auth_check_interval, self.settings.schema_check_interval))
            now = time.monotonic()
            if now - last_auth >= self.settings.auth_check_interval:
                last_auth = now
                await self._recheck_tokens()
            if self.broker.shared and now - last_schema >= self.settings.schema_check_interval:
                last_schema = now
                fingerprint = await self._thread(self._schema_fingerprint)
                if self._fingerprint is not None and fingerprint != self._fingerprint:
                    await self._thread(self.collections.refresh)
                self._fingerprint = fingerprint

    async def _recheck_tokens(self) -> None:
        if self.verify_token is None:
            return
        for client in [c for c in self.clients.clients.values() if c.token]:
            token = client.token
            auth = await self._thread(self.verify_token, token)
            if client.token != token:  # changed meanwhile
                continue
            if auth is None or client.auth is None or auth.id != client.auth.id:
                client.auth, client.token = None, ""
            else:
                client.auth = auth

    def _schema_fingerprint(self) -> Any:
        table = self.collections.table
        with self.records.db.read() as conn:
            return tuple(conn.execute(select(func.count(), func.max(table.c.updated))).one())

    # --- clients (event loop) ---
    def connect(self, ip: str) -> Client:
        return self.clients.register(ip)

    def disconnect(self, client: Client) -> None:
        self.clients.unregister(client)

    def send(self, client_id: str, topic: str, data: Any) -> bool:
        """Push a custom message (e.g. ``@oauth2``) to one local client, if it subscribed to it."""
        client = self.clients.get(client_id)
        if client is None or topic not in client.subscriptions:
            return False
        return client.push(frame(client.id, topic, orjson.dumps(data)))

    async def pump(self, client: Client, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write the client's queued frames until it is dropped, idles out or reaches its lifetime."""
        s = self.settings
        clock = asyncio.get_running_loop().time
        started = last_message = last_write = clock()
        outbox = client.queue
        while True:
            deadline = min(last_message + s.idle_timeout, started + s.max_lifetime)
            if clock() >= deadline:
                return
            if s.ping_interval > 0:
                deadline = min(deadline, last_write + s.ping_interval)
            await outbox.wait(deadline)
            if outbox.closed:
                return
            # everything queued goes out in one write, but a bounded one: a client that does not
            # read must block us here (and then overflow its outbox), not grow our buffers
            chunks = outbox.take(_MAX_WRITE)
            if not chunks:
                if s.ping_interval > 0 and clock() - last_write >= s.ping_interval:
                    await write(PING)
                    last_write = clock()
                continue
            await write(b"".join(chunks) if len(chunks) > 1 else chunks[0])
            last_message = last_write = clock()


@asynccontextmanager
async def running(realtime: Realtime) -> AsyncIterator[None]:
    """A Starlette lifespan: the service runs while the server does."""
    await realtime.ensure_started()
    try:
        yield
    finally:
        await realtime.stop()
