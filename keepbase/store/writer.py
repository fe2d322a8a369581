"""Group commit for SQLite: concurrent writes share one transaction, each in its own savepoint.

Write jobs queue up for the single writer connection. The writer thread takes whatever is
waiting (up to ``MAX_BATCH``), runs each job inside a SAVEPOINT and commits once: one fsync
for the whole group instead of one per request. A job that fails is rolled back to its
savepoint and fails alone; its neighbours still commit. A job's future is resolved only after
the COMMIT returned, so "acknowledged" still means "durable" (synchronous=FULL).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db import Database

MAX_BATCH = 64


class _Job:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


class GroupWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="keepbase-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        job = _Job(fn)
        self._queue.put(job)
        return job.future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            while len(jobs) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._run(jobs)
                    return
                jobs.append(nxt)
            self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None, list[Callable[[], None]]]] = []
        try:
            for job, result, error, hooks in self.db.run_group([j.fn for j in jobs], jobs):
                outcomes.append((job, result, error, hooks))
        except BaseException as exc:  # the COMMIT itself failed: nothing was written
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, result, error, hooks in outcomes:
            if error is not None:
                job.future.set_exception(error)
                continue
            for hook in hooks:
                try:
                    hook()
                except Exception:  # an after-commit side effect must not fail a committed write
                    import logging

                    logging.getLogger("keepbase.store").exception("after-commit hook failed")
            job.future.set_result(result)
