"""A client's send buffer: bounded, drained in bulk by the one task that writes its SSE stream.

Lighter than ``asyncio.Queue`` plus ``asyncio.wait_for`` (a task and a timer per message): frames
go into a deque, and the writer waits on one future, woken by the first frame after it emptied the
buffer, by :meth:`Outbox.close`, or by its deadline. The deadline's timer is kept while it is not
later than the one asked for (waking early is harmless: the writer checks the time), so a busy
stream does not arm and cancel a timer for every message. Only the event loop thread touches it.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Outbox:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.closed = False
        self._frames: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def qsize(self) -> int:
        return len(self._frames)

    def empty(self) -> bool:
        return not self._frames

    def put_nowait(self, frame: bytes) -> None:
        """Queue a frame; raises ``asyncio.QueueFull`` at ``maxsize`` frames (the caller drops the client)."""
        if self.closed:
            return
        if len(self._frames) >= self.maxsize:
            raise asyncio.QueueFull()
        self._frames.append(frame)
        self._wake()

    def get_nowait(self) -> bytes:
        if not self._frames:
            raise asyncio.QueueEmpty()
        return self._frames.popleft()

    def close(self) -> None:
        """Discard what is queued and end the writer."""
        self.closed = True
        self._frames.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()

    async def wait(self, deadline: float) -> None:
        """Return when a frame is queued, the outbox is closed, or (about) at ``deadline``
        (``loop.time()``); possibly earlier, never much later."""
        if self._frames or self.closed:
            return
        loop = asyncio.get_running_loop()
        if self._timer is None or self._timer.when() > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._on_timer)
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def take(self, max_bytes: int) -> list[bytes]:
        """Queued frames, oldest first, up to about ``max_bytes`` (at least one frame if any)."""
        frames = self._frames
        if not frames:
            return []
        out = [frames.popleft()]
        size = len(out[0])
        while frames and size < max_bytes:
            nxt = frames.popleft()
            out.append(nxt)
            size += len(nxt)
        return out
