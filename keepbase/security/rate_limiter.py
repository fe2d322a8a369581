"""Request counters for rate limits: the ``RateLimiter`` protocol and an in-process implementation.

The window is PocketBase's ``fixedWindow``: whole Unix seconds; a key gets ``max_requests``
tokens, and they are refilled when at least ``duration`` seconds have passed since the last
successful consume. ``consume`` answers 0 when the request may go on, otherwise the number of
seconds until it may retry (for ``Retry-After``).

``MemoryRateLimiter`` keeps its state in this process, as PocketBase does. Several keepbase
nodes behind one load balancer need a shared implementation of the same protocol (for example
on Redis: one small script per call) to keep the same global semantics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    def consume(self, key: str, max_requests: int, duration: int) -> int:
        """Take one token for ``key``: 0 if allowed, else seconds until a retry may succeed."""
        ...

    def release(self, key: str) -> None:
        """Give back one token taken by ``consume`` (a request that turned out not to count)."""
        ...

    def reset(self, prefix: str = "") -> None:
        """Forget the counters whose key starts with ``prefix`` (used when settings change)."""
        ...


class _Window:
    __slots__ = ("available", "duration", "last", "max")

    def __init__(self, max_requests: int, duration: int) -> None:
        self.max = max_requests
        self.duration = duration
        self.available = 0
        self.last = 0


class MemoryRateLimiter:
    """Fixed-window counters in a dict, swept of idle keys as it grows."""

    SWEEP_EVERY = 10_000
    IDLE_AFTER = 1800  # seconds past the window before an idle key is dropped (as PocketBase)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._next_sweep = self.SWEEP_EVERY

    def consume(self, key: str, max_requests: int, duration: int) -> int:
        now = int(self.clock())
        with self._lock:
            w = self._windows.get(key)
            if w is None:
                if len(self._windows) >= self._next_sweep:
                    self._sweep(now)
                w = self._windows[key] = _Window(max_requests, duration)
            if now - w.last >= w.duration:
                w.available = w.max
            if w.available > 0:
                w.available -= 1
                w.last = now
                return 0
            return max(1, w.duration - (now - w.last))

    def release(self, key: str) -> None:
        with self._lock:
            w = self._windows.get(key)
            if w is not None and w.available < w.max:
                w.available += 1

    def reset(self, prefix: str = "") -> None:
        with self._lock:
            for key in [k for k in self._windows if k.startswith(prefix)]:
                del self._windows[key]

    def _sweep(self, now: int) -> None:
        idle = [k for k, w in self._windows.items() if now - w.last > w.duration + self.IDLE_AFTER]
        for k in idle:
            del self._windows[k]
        self._next_sweep = max(self.SWEEP_EVERY, 2 * len(self._windows))
