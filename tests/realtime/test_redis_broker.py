"""The Redis broker on its own: two brokers on one channel stand for two nodes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from keepbase.realtime.broker import Message
from keepbase.realtime.redis_broker import RedisBroker
from tests.redis_server import RedisServer, redis_url  # noqa: F401  (the session fixture)


class Node:
    """One broker and what it delivered."""

    def __init__(self, url: str, namespace: str) -> None:
        self.broker = RedisBroker(url, namespace)
        self.got: asyncio.Queue[Message] = asyncio.Queue()
        self.connects = 0

    async def start(self) -> None:
        def on_connect() -> None:
            self.connects += 1

        await self.broker.start(self.got.put_nowait, on_connect)
        await asyncio.wait_for(self.broker.listening.wait(), 30)

    async def next(self, timeout: float = 15.0) -> Message:
        return await asyncio.wait_for(self.got.get(), timeout)


async def _in_thread(fn: Callable[[], Any]) -> None:
    """Publish as the after-commit hooks do: from a worker thread."""
    await asyncio.to_thread(fn)


async def _nodes(url: str) -> tuple[Node, Node]:
    namespace = f"kbtest:{secrets.token_hex(4)}"
    a, b = Node(url, namespace), Node(url, namespace)
    await a.start()
    await b.start()
    return a, b


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[tuple[Node, Node]]:  # noqa: F811
    a, b = await _nodes(redis_url)
    try:
        yield a, b
    finally:
        await a.broker.stop()
        await b.broker.stop()


async def test_every_node_gets_each_message_once(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    msg = {"type": "record", "action": "create", "collection": "c1", "record": {"id": "r1", "n": 1}}
    await _in_thread(lambda: a.broker.publish(msg))  # synchronous PUBLISH from the committing thread
    assert await a.next() == msg  # delivered locally ...
    assert await b.next() == msg  # ... and through Redis
    a.broker.publish({"type": "record", "action": "delete", "collection": "c1", "record": {"id": "r2"}})  # on loop
    assert (await b.next())["record"] == {"id": "r2"}
    assert (await a.next())["record"] == {"id": "r2"}
    await asyncio.sleep(0.5)
    assert a.got.empty() and b.got.empty()  # a skipped its own messages coming back from Redis


async def test_local_false_reaches_only_the_others(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    await _in_thread(lambda: a.broker.publish({"type": "collections"}, local=False))
    assert await b.next() == {"type": "collections"}
    await asyncio.sleep(0.5)
    assert a.got.empty()


async def test_large_messages_travel_whole(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    big = {"type": "record", "action": "delete", "collection": "c1",
           "record": {"id": "big", "data": "x" * 2_000_000}}
    await _in_thread(lambda: a.broker.publish(big))
    assert await b.next() == big  # no reference, no chunks: one PUBLISH


async def test_other_namespaces_are_not_heard(nodes: tuple[Node, Node], redis_url: str) -> None:  # noqa: F811
    a, b = nodes
    other = Node(redis_url, "kbtest:other")
    await other.start()
    try:
        await _in_thread(lambda: other.broker.publish({"type": "collections"}, local=False))
        await _in_thread(lambda: a.broker.publish({"type": "collections", "n": 1}, local=False))
        assert await b.next() == {"type": "collections", "n": 1}
    finally:
        await other.broker.stop()


async def test_reconnects_after_redis_restarts() -> None:
    server = RedisServer()
    server.start()
    started: list[Node] = []
    try:
        a, b = await _nodes(server.url)
        started += [a, b]
        assert (a.connects, b.connects) == (1, 1)
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
        for node in (a, b):  # both resubscribe, and tell the service so (it reloads the schema)
            for _ in range(600):
                if node.connects >= 2 and node.broker.listening.is_set():
                    break
                await asyncio.sleep(0.05)
            assert node.connects >= 2, "the broker did not resubscribe after Redis restarted"
        msg = {"type": "record", "action": "update", "collection": "c1", "record": {"id": "after"}}
        await _in_thread(lambda: a.broker.publish(msg))
        assert await b.next() == msg
        assert await a.next() == msg  # (delivered locally)
        b.broker.publish({"type": "collections", "from": "b"}, local=False)  # b's sender reconnects too
        assert await a.next() == {"type": "collections", "from": "b"}
    finally:
        for node in started:
            await node.broker.stop()
        server.close()
