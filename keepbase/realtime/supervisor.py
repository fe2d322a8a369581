"""A small supervisor for background tasks: log exceptions and restart with a capped backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("keepbase.realtime")


class Supervisor:
    """Runs named coroutines forever; one that raises is logged and started again.

    A task that returns normally is not restarted (it finished its job). ``quiet(exc)`` returning
    True marks an expected failure (the database or broker is unreachable: its owner reports the
    outage once, e.g. ``Database.connection_failed``): no traceback, only a debug line, and the
    task is retried with the same capped backoff.
    """

    def __init__(self, *, min_delay: float = 0.2, max_delay: float = 10.0,
                 quiet: Callable[[BaseException], bool] | None = None) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.quiet = quiet
        self.restarts: dict[str, int] = {}

    def start(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        if name in self._tasks and not self._tasks[name].done():
            return
        self._tasks[name] = asyncio.get_running_loop().create_task(self._run(name, fn), name=f"keepbase:{name}")

    async def _run(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        delay = self.min_delay
        while True:
            started = asyncio.get_running_loop().time()
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.quiet is not None and self._is_quiet(exc):
                    log.debug("background task %s: %s; retrying in %.1fs", name, exc, delay)
                else:
                    log.exception("background task %s failed; restarting in %.1fs", name, delay)
            self.restarts[name] = self.restarts.get(name, 0) + 1
            if asyncio.get_running_loop().time() - started > 60:
                delay = self.min_delay  # it ran fine for a while: start over with a short delay
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)

    def _is_quiet(self, exc: BaseException) -> bool:
        assert self.quiet is not None
        try:
            return self.quiet(exc)
        except Exception:  # a broken predicate must not kill the task
            log.exception("supervisor: quiet() failed")
            return False

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except BaseException:  # cancelled, or already logged by _run
                pass
