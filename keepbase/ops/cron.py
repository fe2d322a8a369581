"""Scheduled jobs: a supervised scheduler thread, once per tick across nodes on PostgreSQL.

The scheduler wakes every ``poll`` seconds, and when the clock has entered a new minute it
starts every due job in its own thread. Nothing a job does can stop the server: an exception
is logged and counted, and the job simply runs again at its next tick (that is the restart).
The scheduler loop itself is supervised the same way: if it ever fails it is logged and
restarted after a short pause.

With PostgreSQL several keepbase nodes share one database, and a job must run once per tick,
not once per node. Before starting a job the scheduler takes a session-level
``pg_try_advisory_lock`` keyed on (job id, tick); the node that wins runs the job, the others
skip it. The lock is held until the next tick, so a node whose clock is a few seconds late
still finds it taken (clocks must agree to well under a minute). On SQLite there is one node.

The clock is injectable (``clock=``), so tests can drive ticks without waiting for minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from ..core.clock import now as utc_now
from ..core.cron import Schedule
from ..store.db import Database

log = logging.getLogger("keepbase.cron")


@dataclass
class Job:
    """A registered job and its run statistics."""

    id: str
    expression: str
    schedule: Schedule
    fn: Callable[[], Any]
    runs: int = 0
    failures: int = 0
    last_error: str = ""
    running: bool = field(default=False, repr=False)


def lock_key(job_id: str, tick: datetime) -> int:
    """A signed 64-bit advisory-lock key for one job at one tick."""
    digest = hashlib.blake2b(f"keepbase-cron:{job_id}@{tick:%Y-%m-%dT%H:%M}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Scheduler:
    def __init__(self, db: Database | None = None, *, clock: Callable[[], datetime] = utc_now,
                 poll: float = 1.0, restart_delay: float = 1.0) -> None:
        self.db = db
        self.clock = clock
        self.poll = poll
        self.restart_delay = restart_delay
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tick: datetime | None = None
        self._lock_conn: Connection | None = None
        self._held: list[int] = []
        self._workers: list[threading.Thread] = []

    # --- registry ---
    def add(self, job_id: str, expression: str, fn: Callable[[], Any]) -> Job:
        job = Job(job_id, expression, Schedule.parse(expression), fn)
        with self._lock:
            self._jobs[job_id] = job
        return job

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def jobs(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.id)

    # --- lifecycle ---
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name="keepbase-cron", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for worker in list(self._workers):
            worker.join(timeout)
        self._release_locks(close=True)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self._loop()
            except Exception:
                log.exception("cron scheduler failed; restarting it")
                self._stop.wait(self.restart_delay)

    def _loop(self) -> None:
        while not self._stop.is_set():
            minute = self.clock().replace(second=0, microsecond=0)
            if minute != self._last_tick:
                self._last_tick = minute
                self.tick(minute)
            self._stop.wait(self.poll)

    # --- one tick ---
    def tick(self, moment: datetime) -> list[threading.Thread]:
        """Start every job due at ``moment``; returns the started worker threads."""
        self._release_locks()
        started = []
        self._workers = [w for w in self._workers if w.is_alive()]
        for job in self.jobs():
            if not job.schedule.is_due(moment):
                continue
            if job.running:
                log.warning("cron job %s is still running; skipping the %s tick", job.id, moment)
                continue
            if not self._claim(job, moment):
                continue
            job.running = True
            worker = threading.Thread(target=self.run_job, args=(job,), name=f"keepbase-cron-{job.id}", daemon=True)
            self._workers.append(worker)
            worker.start()
            started.append(worker)
        return started

    def run_job(self, job: Job) -> bool:
        """Run ``job`` once, here; True on success. Failures are logged, never raised."""
        job.running = True
        try:
            result = job.fn()
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
            job.runs += 1
            return True
        except Exception as exc:
            job.failures += 1
            job.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("cron job %s failed; it will run again at its next tick", job.id)
            return False
        finally:
            job.running = False

    # --- once per tick across nodes (PostgreSQL) ---
    def _claim(self, job: Job, moment: datetime) -> bool:
        if self.db is None or self.db.is_sqlite:
            return True
        key = lock_key(job.id, moment)
        try:
            if self._lock_conn is None:
                self._lock_conn = self.db.writer.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = bool(self._lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        except Exception:
            log.exception("cron: cannot take the advisory lock for %s; skipping this tick", job.id)
            self._release_locks(close=True)
            return False
        if got:
            self._held.append(key)
        return got

    def _release_locks(self, close: bool = False) -> None:
        conn = self._lock_conn
        if conn is None:
            return
        try:
            for key in self._held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        except Exception:
            log.exception("cron: releasing advisory locks failed; dropping the connection")
            close = True
        self._held = []
        if close:
            self._lock_conn = None
            try:
                conn.close()  # closing the session releases whatever it still holds
            except Exception:
                log.debug("cron: closing the lock connection failed", exc_info=True)


async def _await(awaitable: Any) -> Any:
    return await awaitable
