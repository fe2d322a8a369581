"""GET /api/metrics: Prometheus metrics of this node (prometheus_client, one registry per App).

Readable by a superuser, or with ``Authorization: Bearer <metrics_token>`` when the config sets
one (compared in constant time); others get PocketBase's 401/403 envelopes.

Per request (``observe``, called by ``api.access_log``) the cost is a dictionary look-up and a
few additions; the counter and histogram families are built when Prometheus scrapes. Labels stay bounded: the
route is the matched route's *template* (``/api/collections/{collection}/records/{id}``), never
the raw path; unmatched paths share ``route="none"``; methods outside the standard set are
``other``. Realtime streams are counted but kept out of the latency histogram (they last minutes).

Everything else (database pool, realtime clients, queues, the last health check) is read when
Prometheus scrapes, by a collector: nothing is kept up to date on the hot path.
"""

from __future__ import annotations

import hmac
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import QueuePool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from .deps import app_of, require_superuser
from .health import broker_state, mail_queued, monitor_of

if TYPE_CHECKING:
    from ..app import App

# seconds; PocketBase-class latencies sit in the first buckets, slow queries in the last ones
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
NO_ROUTE = "none"
_CUSTOM_SCOPE_KEY = "kb_custom_route"  # set by api.custom on a matched custom route


class Metrics:
    """The registry of one App and the request counts the access-log middleware feeds.

    Requests are counted in plain lists on the event loop (``observe``: a dict look-up, a bisect and
    three additions, several times cheaper than prometheus_client's locked children) and turned
    into a counter and a histogram family when Prometheus scrapes, also on the event loop."""

    def __init__(self, app: App, routes: list[BaseRoute]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_RequestCollector(self))
        self.registry.register(_StateCollector(app))
        self._templates: dict[Any, str] = {r.endpoint: r.path for r in routes if isinstance(r, Route)}
        # (method, route, status) -> [count, sum of seconds, per-bucket counts..., over the last bound]
        self.counts: dict[tuple[str, str, int], list[Any]] = {}

    def route_of(self, scope: Scope) -> str:
        """The template of the route that served ``scope`` (after the request ran)."""
        endpoint = scope.get("endpoint")
        template = self._templates.get(endpoint)
        if template is not None:
            return template
        custom = scope.get(_CUSTOM_SCOPE_KEY)
        if custom is not None:
            return str(custom.path)
        return NO_ROUTE

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        entry = self.counts.get(key)
        if entry is None:
            if method not in METHODS:
                key = ("other", route, status)
            entry = self.counts.setdefault(key, [0, 0.0] + [0] * (len(BUCKETS) + 1))
        entry[0] += 1
        entry[1] += seconds
        entry[2 + bisect_left(BUCKETS, seconds)] += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RequestCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        total = CounterMetricFamily("keepbase_http_requests", "HTTP requests served, by route template and status.",
                                    labels=["method", "route", "status"])
        latency = HistogramMetricFamily("keepbase_http_request_duration_seconds",
                                        "Time to serve a request (realtime streams excluded), by route template.",
                                        labels=["method", "route"])
        merged: dict[tuple[str, str], list[Any]] = {}
        for (method, route, status), entry in list(self.metrics.counts.items()):
            total.add_metric([method, route, str(status)], entry[0])
            if route == "/api/realtime" and method == "GET":
                continue  # streams last minutes: they would drown every other latency
            acc = merged.setdefault((method, route), [0, 0.0] + [0] * (len(BUCKETS) + 1))
            for i, value in enumerate(entry):
                acc[i] += value
        for (method, route), acc in merged.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), acc[2:], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([method, route], buckets, acc[1])
        yield total
        yield latency


class _StateCollector(Collector):
    """Gauges read at scrape time from the App's parts."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> list[Any]:
        return []  # unchecked collector: its families are only known at collect time

    def collect(self) -> Iterator[GaugeMetricFamily]:
        app = self.app
        size = GaugeMetricFamily("keepbase_db_pool_size", "Connections the pool keeps (PostgreSQL pool, "
                                 "or SQLite readers and the one writer).", labels=["pool"])
        used = GaugeMetricFamily("keepbase_db_pool_checked_out", "Pooled connections in use now.", labels=["pool"])
        overflow = GaugeMetricFamily("keepbase_db_pool_overflow",
                                     "Connections open beyond the pool size (negative: not yet opened).",
                                     labels=["pool"])
        engines = [("main", app.db.writer)] if app.db.writer is app.db.reader else [
            ("reader", app.db.reader), ("writer", app.db.writer)]
        for name, engine in engines:
            pool = engine.pool
            if not isinstance(pool, QueuePool):  # SQLite's one writer connection (a StaticPool)
                size.add_metric([name], 1.0)
                continue
            size.add_metric([name], float(pool.size()))
            used.add_metric([name], float(pool.checkedout()))
            overflow.add_metric([name], float(pool.overflow()))
        yield size
        yield used
        yield overflow
        yield _gauge("keepbase_realtime_clients", "Realtime (SSE) clients connected to this node.",
                     len(app.realtime.clients))
        yield _gauge("keepbase_realtime_broker_connected",
                     "1 while the realtime broker is connected (always 1 for the in-memory one).",
                     1 if broker_state(app)["connected"] else 0)
        yield _gauge("keepbase_log_queue_length", "Request-log rows waiting to be written.", app.logs.writer.pending)
        yield _gauge("keepbase_mail_queue_length", "Mails waiting to be handed to the SMTP server.", mail_queued(app))
        snap = monitor_of(app).last  # the last health check: never starts one from a scrape
        if snap is not None:
            yield _gauge("keepbase_database_up", "1 if the last health check reached the database.",
                         1 if snap.database.reachable else 0)
            yield _gauge("keepbase_database_check_seconds", "Duration of the last health check's SELECT 1.",
                         snap.database.latency_ms / 1000)
            yield _gauge("keepbase_data_dir_writable", "1 if the last health check could write the data folder.",
                         1 if snap.data_dir.writable else 0)
            yield _gauge("keepbase_data_dir_free_bytes", "Free space of the data folder's file system.",
                         snap.data_dir.free_bytes)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _token_ok(request: Request, token: str) -> bool:
    if not token:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def metrics(request: Request) -> Response:
    app = app_of(request)
    if not _token_ok(request, app.config.metrics_token):
        await require_superuser(request)
    registry: Metrics = request.app.state.metrics
    monitor = monitor_of(app)
    if monitor.last is None:
        await monitor.current()  # the first scrape has database_up too
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/api/metrics", metrics, methods=["GET"])]
