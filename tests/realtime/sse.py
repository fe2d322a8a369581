"""A small SSE client for the tests: frames parsed exactly as sent (``id:``/``event:``/``data:``)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


@dataclass
class SSEEvent:
    id: str
    event: str
    data: Any
    raw: str


class SSEClient:
    """Connects, reads frames in a background task; ``next()`` waits for the next event."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0, read=None))
        self.events: asyncio.Queue[SSEEvent | None] = asyncio.Queue()
        self.client_id = ""
        self.headers: httpx.Headers | None = None
        self.comments = 0
        self.closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> SSEEvent:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read(ready))
        await asyncio.wait_for(ready, 10)
        first = await self.next()
        self.client_id = first.id
        return first

    async def _read(self, ready: asyncio.Future[None]) -> None:
        try:
            async with self.http.stream("GET", "/api/realtime") as resp:
                self.headers = resp.headers
                ready.set_result(None)
                fields: dict[str, str] = {}
                lines: list[str] = []
                async for line in resp.aiter_lines():
                    if line == "":
                        if fields:
                            data = fields.get("data", "")
                            self.events.put_nowait(SSEEvent(fields.get("id", ""), fields.get("event", ""),
                                                            orjson.loads(data) if data else None, "\n".join(lines)))
                        fields, lines = {}, []
                        continue
                    if line.startswith(":"):
                        self.comments += 1
                        continue
                    lines.append(line)
                    key, _, value = line.partition(":")
                    fields[key] = value
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            if not ready.done():
                ready.set_result(None)
            self.closed.set()
            self.events.put_nowait(None)

    async def next(self, timeout: float = 10.0) -> SSEEvent:
        event = await asyncio.wait_for(self.events.get(), timeout)
        if event is None:
            raise ConnectionError("the SSE stream ended")
        return event

    async def subscribe(self, *topics: str, token: str = "") -> httpx.Response:
        headers = {"Authorization": token} if token else {}
        return await self.http.post("/api/realtime", json={"clientId": self.client_id,
                                                           "subscriptions": list(topics)}, headers=headers)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.http.aclose()
