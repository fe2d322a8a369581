"""A bounded, fair, retrying queue of outgoing mail, sent by a few worker threads.

* **Bounded.** At most ``max_size`` mails wait (queued, waiting for a retry, or being sent).
  A mail beyond that is dropped with a log line and ``submit`` returns False: the auth
  requests that queue mail answer 204 either way (PocketBase sends them in the background,
  and an error would tell a caller that the address has an account).
* **Fair.** Each mail has a *client* key (the requesting IP) and its recipients. No client
  and no recipient may hold more than ``max_per_key`` of the waiting mails, and workers take
  mails round-robin across clients, so one client flooding the queue neither fills it nor
  delays the mail of everybody else.
* **Retried.** A transient failure (``MailError.transient``: 4xx reply, refused or timed-out
  connection) is tried again after 1 s, 2 s, 4 s… (``backoff`` doubling, capped at
  ``max_backoff``) up to ``attempts`` tries in all; a permanent one (5xx, no transport) is not.
* **Drained on shutdown.** ``close(timeout)`` stops new mail, gives each waiting mail one
  last try (pending retries are tried at once, no more backoff) within ``timeout`` seconds,
  and logs how many were left unsent.

``len(queue)`` is the number of mails waiting (for health and metrics).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .sender import MailError, Message, NoTransportError

log = logging.getLogger("keepbase.mail")

DEFAULT_MAX_SIZE = 1000
DEFAULT_MAX_PER_KEY = 10
DEFAULT_ATTEMPTS = 4


@dataclass
class _Job:
    message: Message
    client: str
    what: str
    on_failure: Callable[[MailError], None] | None
    attempts: int = 0
    keys: tuple[str, ...] = field(default=())


class MailQueue:
    """``submit`` mail from request handlers; worker threads send it with ``send``.

    Example::

        queue = MailQueue(mailer.send, max_size=500)
        queue.submit(message, client="203.0.113.9", what="verification")
        queue.close(timeout=10)  # on shutdown: send what is pending
    """

    def __init__(self, send: Callable[[Message], None], *, max_size: int = DEFAULT_MAX_SIZE,
                 max_per_key: int = DEFAULT_MAX_PER_KEY, workers: int = 2, attempts: int = DEFAULT_ATTEMPTS,
                 backoff: float = 1.0, max_backoff: float = 60.0) -> None:
        self._send = send
        self.max_size = max_size
        self.max_per_key = max_per_key
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._workers_wanted = max(1, workers)
        self._cond = threading.Condition()
        self._ready: OrderedDict[str, deque[_Job]] = OrderedDict()  # client -> its mails, round-robin
        self._delayed: list[tuple[float, int, _Job]] = []  # (due, seq, job): waiting for a retry
        self._seq = itertools.count()
        self._per_key: Counter[str] = Counter()
        self._pending = 0  # ready + delayed + being sent
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._stopped = False
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    # --- producers ---
    def submit(self, message: Message, *, client: str = "", what: str = "",
               on_failure: Callable[[MailError], None] | None = None) -> bool:
        """Queue ``message``; False (and a log line) when it was dropped instead."""
        keys = (f"client:{client}",) if client else ()
        keys += tuple(f"to:{addr.lower()}" for addr in message.to)
        label = what or "queued"
        with self._cond:
            reason = ""
            if self._closing:
                reason = "the mail queue is closed"
            elif self._pending >= self.max_size:
                reason = f"the mail queue is full ({self._pending} mails waiting)"
            elif any(self._per_key[k] >= self.max_per_key for k in keys):
                reason = f"too many mails waiting for the same client or recipient (max {self.max_per_key})"
            if reason:
                self.dropped += 1
                log.warning("dropped the %s email to %s: %s", label, ", ".join(message.to), reason)
                return False
            job = _Job(message, client or (message.to[0].lower() if message.to else ""), label, on_failure,
                       keys=keys)
            self._pending += 1
            self._per_key.update(keys)
            self._ready.setdefault(job.client, deque()).append(job)
            self._start_workers()
            self._cond.notify()
        return True

    def __len__(self) -> int:
        with self._cond:
            return self._pending

    # --- shutdown ---
    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is waiting; True when the queue is empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Refuse new mail, try each waiting mail once more within ``timeout`` seconds, stop the
        workers. True when nothing was left unsent."""
        with self._cond:
            self._closing = True
            for _due, _seq, job in self._delayed:  # retry now: there is no "later" any more
                self._ready.setdefault(job.client, deque()).appendleft(job)
            self._delayed.clear()
            self._cond.notify_all()
        done = self.flush(timeout)
        with self._cond:
            self._stopped = True
            left = self._pending
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=0.5)
        if left:
            log.warning("shutdown: %d queued mail(s) were not sent within %gs", left, timeout)
        return done

    # --- workers ---
    def _start_workers(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self._workers_wanted:
            t = threading.Thread(target=self._work, name=f"keepbase-mail-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    def _next(self) -> _Job | None:
        """The next mail to send, round-robin over clients (called with the lock held)."""
        while not self._stopped:
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                _due, _seq, job = heapq.heappop(self._delayed)
                self._ready.setdefault(job.client, deque()).appendleft(job)
            if self._ready:
                client, jobs = next(iter(self._ready.items()))
                job = jobs.popleft()
                del self._ready[client]
                if jobs:
                    self._ready[client] = jobs  # back of the line
                return job
            wait = self._delayed[0][0] - now if self._delayed else None
            self._cond.wait(wait)
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._next()
            if job is None:
                return
            job.attempts += 1
            try:
                self._send(job.message)
            except MailError as exc:
                self._failed(job, exc)
            except Exception as exc:  # a bug, not a mail server answer: never kill the worker
                log.exception("unexpected error sending the %s email", job.what)
                self._failed(job, MailError(f"{type(exc).__name__}: {exc}"))
            else:
                with self._cond:
                    self.sent += 1
                    self._done(job)

    def _failed(self, job: _Job, exc: MailError) -> None:
        with self._cond:
            if exc.transient and job.attempts < self.attempts and not self._closing:
                delay = min(self.max_backoff, self.backoff * 2 ** (job.attempts - 1))
                log.warning("sending the %s email to %s failed (try %d of %d), retrying in %gs: %s", job.what,
                            ", ".join(job.message.to), job.attempts, self.attempts, delay, exc)
                heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._seq), job))
                self._cond.notify()
                return
        if isinstance(exc, NoTransportError):
            log.debug("the %s email to %s was not sent: %s", job.what, ", ".join(job.message.to), exc)
        else:
            log.error("failed to send the %s email to %s after %d tr%s: %s", job.what, ", ".join(job.message.to),
                      job.attempts, "y" if job.attempts == 1 else "ies", exc)
        if job.on_failure is not None:
            try:
                job.on_failure(exc)
            except Exception:
                log.exception("the failure callback of the %s email failed", job.what)
        with self._cond:  # only now, so that flush() returning means the callbacks ran too
            self.failed += 1
            self._done(job)

    def _done(self, job: _Job) -> None:
        """Forget ``job`` (called with the lock held)."""
        self._pending -= 1
        self._per_key.subtract(job.keys)
        for k in job.keys:
            if self._per_key[k] <= 0:
                del self._per_key[k]
        self._cond.notify_all()
