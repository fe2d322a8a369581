"""Realtime clients and their subscriptions (per node, in memory).

A subscription is the exact string a client sent (it is also the SSE event name). Its topic is
the part before ``?``: ``<collection>/*`` or ``<collection>`` (list rule), ``<collection>/<id>``
(view rule), or anything else (custom messages). ``?options=<url-encoded JSON>`` may carry
``{"query": {...}, "headers": {...}}``; values are stringified and header names snake_cased.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..core.ids import random_string
from ..core.types import AuthInfo
from .outbox import Outbox
from .sse import frame_head

MAX_SUBSCRIPTIONS = 1000  # per client, as PocketBase
MAX_TOPIC_LENGTH = 2500
CLIENT_ID_LENGTH = 40


def snake_case(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"[^A-Za-z0-9]+", "_", name)
    return name.strip("_").lower()


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class Subscription:
    raw: str  # exactly as subscribed: the SSE event name
    collection: str  # name or id as written ("" for custom topics)
    record_id: str  # "" for list topics
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def rule_name(self) -> str:
        return "viewRule" if self.record_id else "listRule"

    @property
    def query_dict(self) -> dict[str, str]:
        return dict(self.query)


def parse_subscription(raw: str) -> Subscription:
    base, _, qs = raw.partition("?")
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    if qs:
        options = parse_qs(qs, keep_blank_values=True).get("options")
        if options:
            try:
                parsed = orjson.loads(options[-1])
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                if isinstance(parsed.get("query"), dict):
                    query = {str(k): _stringify(v) for k, v in parsed["query"].items()}
                if isinstance(parsed.get("headers"), dict):
                    headers = {snake_case(str(k)): _stringify(v) for k, v in parsed["headers"].items()}
    collection, sep, rest = base.partition("/")
    record_id = "" if not sep or rest == "*" else rest
    if not collection or "/" in rest:
        collection, record_id = "", ""
    return Subscription(raw, collection, record_id, tuple(sorted(query.items())), tuple(sorted(headers.items())))


@dataclass(eq=False)
class Client:
    """One SSE connection. Touched only on the event loop thread."""

    id: str
    ip: str
    queue: Outbox
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    auth: AuthInfo | None = None
    token: str = ""
    created: float = field(default_factory=time.monotonic)
    dropped: str = ""  # why the server dropped it ("" while alive)
    cancel: Any = None  # anyio CancelScope of the stream, set by the SSE response
    head: bytes = b""  # the start of every frame sent to this client (see sse.frame_head)

    def __post_init__(self) -> None:
        self.head = frame_head(self.id)

    def push(self, frame: bytes) -> bool:
        """Queue a frame; a client whose queue is full is dropped (never buffer without bound)."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.drop("slow client: send queue full")
            return False
        return True

    def drop(self, reason: str) -> None:
        if self.dropped:
            return
        self.dropped = reason
        self.queue.close()
        if self.cancel is not None:  # a writer stuck on a full socket is cancelled, not awaited
            self.cancel.cancel()


class TooManyClients(Exception):
    pass


class ClientRegistry:
    """The clients of this node, with an index collection key → clients subscribed to it."""

    def __init__(self, *, max_clients: int, queue_size: int) -> None:
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.clients: dict[str, Client] = {}
        self._by_collection: dict[str, set[Client]] = {}
        # per collection keys: its (client, subscription) pairs, and whether any names one record;
        # cleared whenever a subscription set changes
        self._pairs: dict[tuple[str, ...], tuple[list[tuple[Client, Subscription]], bool]] = {}
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self.clients)

    def register(self, ip: str) -> Client:
        if len(self.clients) >= self.max_clients:
            raise TooManyClients()
        client = Client(random_string(CLIENT_ID_LENGTH), ip, Outbox(self.queue_size))
        self.clients[client.id] = client
        return client

    def unregister(self, client: Client) -> None:
        if self.clients.get(client.id) is client:
            del self.clients[client.id]
        if client.dropped:
            self.dropped_total += 1
        client.queue.close()  # its stream has ended
        self._index(client, {})

    def get(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def set_subscriptions(self, client: Client, raws: list[str]) -> None:
        subs = {raw: parse_subscription(raw) for raw in raws if raw}
        self._index(client, subs)
        client.subscriptions = subs

    def _index(self, client: Client, new: dict[str, Subscription]) -> None:
        self._pairs.clear()
        for sub in client.subscriptions.values():
            if sub.collection:
                members = self._by_collection.get(sub.collection)
                if members is not None:
                    members.discard(client)
                    if not members:
                        del self._by_collection[sub.collection]
        for sub in new.values():
            if sub.collection and self.clients.get(client.id) is client:
                self._by_collection.setdefault(sub.collection, set()).add(client)

    def targets(self, keys: tuple[str, ...], record_id: str) -> list[tuple[Client, Subscription]]:
        """(client, subscription) pairs a record event of a collection known by ``keys`` may reach."""
        cached = self._pairs.get(keys)
        if cached is None:
            cached = self._pairs[keys] = self._collect(keys)
        pairs, by_record = cached
        if by_record:
            return [(c, sub) for c, sub in pairs if not c.dropped and sub.record_id in ("", record_id)]
        return [(c, sub) for c, sub in pairs if not c.dropped]

    def _collect(self, keys: tuple[str, ...]) -> tuple[list[tuple[Client, Subscription]], bool]:
        pairs: list[tuple[Client, Subscription]] = []
        seen: set[Client] = set()
        for key in keys:
            for client in self._by_collection.get(key, ()):
                if client in seen:
                    continue
                seen.add(client)
                pairs.extend((client, sub) for sub in client.subscriptions.values() if sub.collection in keys)
        return pairs, any(sub.record_id for _, sub in pairs)

    def with_auth_record(self, collection_id: str, record_id: str) -> list[Client]:
        return [c for c in self.clients.values()
                if c.auth is not None and c.auth.collection_id == collection_id and c.auth.id == record_id]
