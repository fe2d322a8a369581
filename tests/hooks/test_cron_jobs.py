"""Scheduled jobs: ``App.cron`` with an injectable clock, the supervisor, once per tick on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from keepbase import App
from keepbase.ops.cron import Job, Scheduler


class FastClock:
    """Every call is one minute later: each scheduler poll is a new tick."""

    def __init__(self, start: datetime = datetime(2024, 1, 1, 0, 0, tzinfo=UTC), fail_at: int = -1) -> None:
        self.t = start
        self.calls = 0
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.calls += 1
            if self.calls == self.fail_at:
                raise RuntimeError("clock glitch")
            self.t += timedelta(minutes=1)
            return self.t


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def user_jobs(app: App) -> list[Job]:
    """The jobs registered by the test (built-in ones such as ``__kbAuthCleanup__`` left out)."""
    return [j for j in app.scheduler.jobs() if not j.id.startswith("__")]


def fast(app: App, clock: FastClock | None = None) -> None:
    app.scheduler.clock = clock or FastClock()
    app.scheduler.poll = 0.01
    app.scheduler.restart_delay = 0.01


async def test_cron_job_runs_on_schedule(app: App) -> None:
    fast(app)
    ticks: list[int] = []
    every_five: list[int] = []

    @app.cron("* * * * *")
    def each_minute() -> None:
        ticks.append(1)

    @app.cron("*/5 * * * *", id="five")
    async def async_job() -> None:  # coroutine jobs are awaited in the job's thread
        every_five.append(1)

    assert app.scheduler.running
    wait_for(lambda: len(ticks) >= 10 and len(every_five) >= 2)
    assert [j.id for j in user_jobs(app)] == ["each_minute", "five"]
    app.close()  # stops the scheduler (the fixture's close is harmless afterwards)
    assert not app.scheduler.running


async def test_failing_job_is_restarted_and_never_stops_the_server(app: App, client: httpx.AsyncClient,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    fast(app)
    attempts: list[int] = []

    @app.cron("* * * * *")
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) <= 3:
            raise RuntimeError("boom")

    wait_for(lambda: len(attempts) >= 6)
    job = user_jobs(app)[0]
    assert job.failures == 3 and job.runs >= 2
    assert job.last_error == "RuntimeError: boom"
    assert "cron job flaky failed" in caplog.text
    assert (await client.get("/api/health")).status_code == 200


async def test_supervisor_restarts_a_crashed_scheduler_loop(app: App, caplog: pytest.LogCaptureFixture) -> None:
    fast(app, FastClock(fail_at=3))
    runs: list[int] = []
    app.cron("* * * * *", id="counter")(lambda: runs.append(1))
    wait_for(lambda: len(runs) >= 5)
    assert "cron scheduler failed; restarting it" in caplog.text


async def test_a_running_job_is_not_started_twice(app: App) -> None:
    release = threading.Event()
    started: list[int] = []

    def slow() -> None:
        started.append(1)
        release.wait(5)

    s = Scheduler(app.db)
    s.add("slow", "* * * * *", slow)
    t0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    workers = s.tick(t0)
    wait_for(lambda: started == [1])
    assert s.tick(t0 + timedelta(minutes=1)) == []  # still running: skipped
    release.set()
    for w in workers:
        w.join(5)
    assert len(s.tick(t0 + timedelta(minutes=2))) == 1
    s.stop()


async def test_once_per_tick_across_nodes(app: App, engine: str) -> None:
    """Two schedulers on one database (two nodes): on PostgreSQL the advisory lock lets one run."""
    runs: list[str] = []
    lock = threading.Lock()

    def job(node: str) -> Callable[[], None]:
        def run() -> None:
            with lock:
                runs.append(node)
        return run

    a, b = Scheduler(app.db), Scheduler(app.db)
    a.add("report", "* * * * *", job("a"))
    b.add("report", "* * * * *", job("b"))
    t0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    try:
        for minute in range(3):
            moment = t0 + timedelta(minutes=minute)
            for w in a.tick(moment) + b.tick(moment):
                w.join(5)
    finally:
        a.stop()
        b.stop()
    if engine == "postgres":
        assert len(runs) == 3  # once per tick, whichever node won
    else:
        assert len(runs) == 6  # SQLite: one node per database; no cross-node lock
