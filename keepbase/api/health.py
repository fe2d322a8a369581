"""GET /api/health: PocketBase's answer, plus whether this node can serve at all.

Everyone gets PocketBase's body, ``{"message":"API is healthy.","code":200,"data":{}}``; a
superuser also gets ``canBackup``, ``realIP`` and ``possibleProxyHeader`` (as PocketBase), and
with ``?detail=1`` also ``detail``: the database, the data folder, the realtime broker, file
storage, mail, the log queue and realtime clients (docs/deployment.md says what each means).
``detail`` is asked for, not always sent, so the default answer stays byte for byte PocketBase's
(the oracle tests compare it) and the dashboard's health polls stay cheap.

When the database does not answer or the data folder cannot be written, the answer is a 503
error envelope naming the problem (``{"data":{},"message":"The database is unreachable.",
"status":503}``), so a load balancer takes the node out.

The checks (a ``SELECT 1`` and rewriting a small file in the data folder) run in a thread of
their own, at most once a second, bounded by ``CHECK_TIMEOUT``: a result under a second old is
reused as is, an older one is served while a new check runs, and only a result older than
``STALE_AFTER`` (a node nobody polled for a while) makes the request wait for a fresh one. So the
anonymous path costs a dictionary look-up and a clock read, and health under load does not hammer
the database. ``monitor_of(app).snapshot()`` gives the same answer to code outside the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import ServiceUnavailableError
from .client_ip import client_ip
from .deps import app_of, current_auth
from .errors import error_response
from .responses import json_response

if TYPE_CHECKING:
    from ..app import App
    from ..store.db import Database

FRESH_FOR = 1.0  # seconds a check result is reused without starting another
STALE_AFTER = 5.0  # past this age a request waits for a fresh check instead of serving the last one
CHECK_TIMEOUT = 2.0  # seconds a check may take before the node counts as unhealthy
PROBE_FILE = ".kb_health"  # rewritten in the data folder by every check (backups leave it out)
# PocketBase's list, after the configured trusted-proxy headers
COMMON_PROXY_HEADERS = ("CF-Connecting-IP", "Fly-Client-IP", "X-Forwarded-For")
DB_DOWN = "The database is unreachable."
DIR_READONLY = "The data folder is not writable."
_HEALTHY = orjson.dumps({"message": "API is healthy.", "code": 200, "data": {}})


@dataclass(frozen=True)
class DatabaseProbe:
    reachable: bool
    latency_ms: float
    error: str = ""


@dataclass(frozen=True)
class FolderProbe:
    writable: bool
    free_bytes: int
    error: str = ""


@dataclass(frozen=True)
class Snapshot:
    """One check's result; ``problem`` is the 503 message, or "" when the node is healthy."""

    database: DatabaseProbe
    data_dir: FolderProbe
    checked_at: float  # time.time()
    monotonic: float

    @property
    def problem(self) -> str:
        if not self.database.reachable:
            return DB_DOWN
        if not self.data_dir.writable:
            return DIR_READONLY
        return ""


def probe_database(db: Database) -> DatabaseProbe:
    """``SELECT 1`` on a pooled reader connection (blocking, not bounded: see ``HealthMonitor``)."""
    started = time.perf_counter()
    try:
        with db.reader.connect() as conn:
            conn.execute(text("SELECT 1")).scalar()
    except Exception as exc:  # any failure means "cannot serve": the reason goes to superusers
        db.connection_failed(exc)  # the outage is noticed (and logged) once
        return DatabaseProbe(False, (time.perf_counter() - started) * 1000, _short(exc))
    db.reachable()
    return DatabaseProbe(True, (time.perf_counter() - started) * 1000)


def probe_folder(path: Path) -> FolderProbe:
    """Rewrite a two-byte file in ``path``: the honest test (permissions, read-only mounts and a
    full disk all fail it, for root too), and cheap at once a second."""
    free = _free_bytes(path)
    try:
        fd = os.open(path / PROBE_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
    except OSError as exc:
        return FolderProbe(False, free, f"{type(exc).__name__}: {exc.strerror or exc}")
    return FolderProbe(True, free)


def folder_writable(path: Path) -> bool:
    """Whether files could be created under ``path`` (or its nearest existing parent), without
    writing anything: a read-only mount or missing permission says no."""
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _free_bytes(path: Path) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def _short(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


class HealthMonitor:
    """The cached result of the database and data-folder checks of one App."""

    def __init__(self, db: Database, data_dir: Path, *, timeout: float = CHECK_TIMEOUT) -> None:
        self.db = db
        self.data_dir = data_dir
        self.timeout = timeout
        self._last: Snapshot | None = None
        self._inflight: concurrent.futures.Future[Snapshot] | None = None
        self._lock = threading.Lock()

    @property
    def last(self) -> Snapshot | None:
        """The latest result, however old (never starts a check)."""
        return self._last

    def _start(self) -> concurrent.futures.Future[Snapshot]:
        """The running check, or a new one (at most one at a time per App)."""
        with self._lock:
            fut = self._inflight
            if fut is None:
                fut = self._inflight = concurrent.futures.Future()
                fut.set_running_or_notify_cancel()  # a waiter giving up cannot cancel it
                threading.Thread(target=self._run, args=(fut,), name="keepbase-health", daemon=True).start()
            return fut

    def _run(self, fut: concurrent.futures.Future[Snapshot]) -> None:
        try:
            snap = Snapshot(probe_database(self.db), probe_folder(self.data_dir), time.time(), time.monotonic())
        except BaseException as exc:  # never leave a waiter hanging
            snap = Snapshot(DatabaseProbe(False, 0.0, _short(exc)), FolderProbe(False, 0), time.time(),
                            time.monotonic())
        self._last = snap
        with self._lock:
            self._inflight = None
        fut.set_result(snap)

    def _timed_out(self) -> Snapshot:
        """What a check that has not answered within ``timeout`` means: the node cannot serve."""
        last = self._last
        snap = Snapshot(DatabaseProbe(False, self.timeout * 1000, f"no answer within {self.timeout:g} s"),
                        last.data_dir if last else FolderProbe(True, 0), time.time(), time.monotonic())
        self._last = snap
        return snap

    def cached(self) -> Snapshot | None:
        """The latest result if recent enough to answer with (a stale one starts a new check)."""
        last = self._last
        if last is None:
            return None
        age = time.monotonic() - last.monotonic
        if age < FRESH_FOR:
            return last
        if age < STALE_AFTER:
            self._start()  # serve this one; the next request sees the new result
            return last
        return None

    async def current(self) -> Snapshot:
        """The latest result, checking first when there is none recent enough (event loop)."""
        cached = self.cached()
        if cached is not None:
            return cached
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._start())), self.timeout)
        except TimeoutError:
            return self._timed_out()

    def snapshot(self) -> Snapshot:
        """As ``current``, for code off the event loop (blocks at most ``timeout`` seconds)."""
        cached = self.cached()
        if cached is not None:
            return cached
        try:
            return self._start().result(self.timeout)
        except concurrent.futures.TimeoutError:
            return self._timed_out()


_MONITORS: weakref.WeakKeyDictionary[App, HealthMonitor] = weakref.WeakKeyDictionary()


def monitor_of(app: App) -> HealthMonitor:
    """The App's HealthMonitor (made on first use; it holds no reference back to the App)."""
    monitor = _MONITORS.get(app)
    if monitor is None:
        monitor = _MONITORS[app] = HealthMonitor(app.db, Path(app.config.dir))
    return monitor


async def health(request: Request) -> Response:
    app = app_of(request)
    monitor = monitor_of(app)
    snap = monitor.cached() or await monitor.current()
    superuser = False
    if request.headers.get("authorization") and not snap.problem:
        # a token is checked against the database: while that is down everyone is a guest
        auth = await current_auth(request)
        superuser = auth is not None and auth.is_superuser
    if not superuser:
        if snap.problem:
            return error_response(ServiceUnavailableError(snap.problem))
        fields = request.query_params.get("fields", "") if request.scope.get("query_string") else ""
        if not fields:
            return Response(_HEALTHY, media_type="application/json")
        return json_response(orjson.loads(_HEALTHY), fields)
    data: dict[str, Any] = {"canBackup": not app.backups.busy, "realIP": _real_ip(request, app),
                            "possibleProxyHeader": _proxy_header(request, app)}
    if request.query_params.get("detail", "") not in ("", "0", "false"):
        data["detail"] = detail(app, snap)
    return json_response({"message": "API is healthy.", "code": 200, "data": data},
                         request.query_params.get("fields", ""))


def _real_ip(request: Request, app: App) -> str:
    ip = request.scope.get("kb_client_ip")
    return str(ip) if ip is not None else client_ip(request.scope, app.settings.get())


def _proxy_header(request: Request, app: App) -> str:
    """PocketBase's loose "behind a reverse proxy?" hint for the dashboard."""
    configured = (app.settings.get().get("trustedProxy") or {}).get("headers") or []
    for name in [*configured, *COMMON_PROXY_HEADERS]:
        if request.headers.get(str(name)):
            return str(name)
    return ""


def detail(app: App, snap: Snapshot) -> dict[str, Any]:
    """What a superuser (or an operator's dashboard) sees about this node's parts."""
    return {
        "healthy": not snap.problem,
        "checkedAt": round(snap.checked_at, 3),
        "database": {"engine": app.db.dialect, "reachable": snap.database.reachable,
                     "latencyMs": round(snap.database.latency_ms, 3), "error": snap.database.error},
        "dataDir": {"writable": snap.data_dir.writable, "freeBytes": snap.data_dir.free_bytes,
                    "error": snap.data_dir.error},
        "broker": broker_state(app),
        "storage": storage_state(app),
        "mail": {"smtpEnabled": bool((app.settings.get().get("smtp") or {}).get("enabled")),
                 "queued": mail_queued(app)},
        "logs": {"queued": app.logs.writer.pending},
        "writers": writers_state(app),
        "realtime": {"clients": len(app.realtime.clients)},
    }


_BROKER_KINDS = {"MemoryBroker": "memory", "PostgresBroker": "postgres", "RedisBroker": "redis"}


def broker_state(app: App) -> dict[str, Any]:
    """Which broker carries realtime events, and whether it is connected. The in-memory broker
    (SQLite, one node) always is; a shared one is while its listener holds a connection. Realtime
    starts with the server, so an App not being served reports a shared broker as disconnected."""
    broker = app.realtime.broker
    kind = _BROKER_KINDS.get(type(broker).__name__, type(broker).__name__)
    listening = getattr(broker, "listening", None)
    connected = bool(listening.is_set()) if listening is not None else True
    return {"type": kind, "started": app.realtime.started, "connected": connected and app.realtime.started}


def storage_state(app: App) -> dict[str, Any]:
    """Where uploaded files go. S3 is not probed (a round trip per look would be slow and cost
    requests); a local folder is checked for a read-only mount or missing permission."""
    s3 = app.settings.get().get("s3") or {}
    if s3.get("enabled"):
        return {"type": "s3", "bucket": str(s3.get("bucket", "")), "endpoint": str(s3.get("endpoint", ""))}
    return {"type": "local", "writable": folder_writable(Path(app.storage.local.root))}


def mail_queued(app: App) -> int:
    """Mails accepted but not yet handed to the SMTP server."""
    queue_size = getattr(app.accounts, "queue_size", None)  # the auth mail queue
    if callable(queue_size):
        return int(queue_size())
    pool = getattr(app.accounts, "_pool", None)  # before the queue: the sender threads' backlog
    work = getattr(pool, "_work_queue", None)
    return int(work.qsize()) if work is not None else 0


def writers_state(app: App) -> dict[str, Any]:
    """The best-effort side writers (request logs, audit rows): ``degraded`` while their writes
    fail (a full or read-only disk), with the reason and the rows lost meanwhile."""
    out: dict[str, Any] = {}
    for name, owner in (("logs", app.logs), ("audit", app.audit)):
        state = getattr(owner, "health", None)
        if state is not None and callable(getattr(state, "status", None)):
            out[name] = state.status()
    return out


ROUTES = [Route("/api/health", health, methods=["GET"])]
