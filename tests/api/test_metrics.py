"""GET /api/metrics (SQLite + PostgreSQL): who may read it, and what Prometheus gets."""

from __future__ import annotations

import dataclasses

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from keepbase.api.metrics import Metrics
from keepbase.app import App

PW = "userpass123"
RECORD_ROUTE = "/api/collections/{collection}/records/{id}"


def _samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


async def _scrape(client: httpx.AsyncClient, headers: dict[str, str]) -> list[Sample]:
    r = await client.get("/api/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return _samples(r.text)


async def test_guest_and_non_superuser_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/metrics")
    assert r.status_code == 401
    assert r.json() == {"data": {}, "message": "The request requires valid record authorization token.",
                        "status": 401}
    r = await client.post("/api/collections/users/records",
                          json={"email": "metrics-user@example.com", "password": PW, "passwordConfirm": PW})
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "metrics-user@example.com", "password": PW})
    r = await client.get("/api/metrics", headers={"Authorization": r.json()["token"]})
    assert r.status_code == 403
    assert r.json() == {"data": {}, "message": "The authorized record is not allowed to perform this action.",
                        "status": 403}


async def test_metrics_token(client: httpx.AsyncClient, app: App) -> None:
    # without a configured token, no bearer value opens it (an empty one least of all)
    assert (await client.get("/api/metrics", headers={"Authorization": "Bearer "})).status_code == 401
    app.config = dataclasses.replace(app.config, metrics_token="s3cret-metrics")
    assert (await client.get("/api/metrics", headers={"Authorization": "Bearer s3cret-metrics"})).status_code == 200
    assert (await client.get("/api/metrics", headers={"Authorization": "bearer s3cret-metrics"})).status_code == 200
    for wrong in ("Bearer s3cret-metric", "Bearer s3cret-metrics2", "s3cret-metrics", "Basic s3cret-metrics"):
        r = await client.get("/api/metrics", headers={"Authorization": wrong})
        assert r.status_code == 401, wrong


async def test_requests_by_route_template(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    for record_id in ("aaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbb", "ccccccccccccccc"):
        r = await client.get(f"/api/collections/users/records/{record_id}", headers=su_headers)
        assert r.status_code == 404
    assert (await client.get("/api/collections/users/records", headers=su_headers)).status_code == 200
    assert (await client.get("/api/no/such/path")).status_code == 404
    assert (await client.request("BREW", "/api/health")).status_code == 404
    samples = await _scrape(client, su_headers)
    total = "keepbase_http_requests_total"
    assert _value(samples, total, method="GET", route=RECORD_ROUTE, status="404") == 3
    assert _value(samples, total, method="GET", route="/api/collections/{collection}/records", status="200") == 1
    assert _value(samples, total, method="GET", route="none", status="404") == 1
    # a method outside the standard set is "other"; the path matched a route, so it keeps its template
    assert _value(samples, total, method="other", route="/api/health", status="404") == 1
    assert not [s for s in samples if s.labels.get("method") == "BREW"]
    # bounded labels: raw paths and ids never become label values
    assert not [s for s in samples if "aaaaaaaaaaaaaaa" in str(s.labels) or "users" in str(s.labels)]
    count = _value(samples, "keepbase_http_request_duration_seconds_count", method="GET", route=RECORD_ROUTE)
    assert count == 3
    inf = _value(samples, "keepbase_http_request_duration_seconds_bucket", method="GET", route=RECORD_ROUTE, le="+Inf")
    assert inf == 3
    assert (_value(samples, "keepbase_http_request_duration_seconds_sum", method="GET", route=RECORD_ROUTE)
            or 0) > 0
    # the scrape itself was counted on the next one
    again = await _scrape(client, su_headers)
    assert _value(again, total, method="GET", route="/api/metrics", status="200") == 1


async def test_state_gauges(client: httpx.AsyncClient, su_headers: dict[str, str], app: App) -> None:
    samples = await _scrape(client, su_headers)
    if app.db.is_sqlite:
        assert _value(samples, "keepbase_db_pool_size", pool="writer") == 1  # the one writer connection
    for pool in ["reader"] if app.db.is_sqlite else ["main"]:
        size = _value(samples, "keepbase_db_pool_size", pool=pool)
        assert size is not None and size >= 1
        used = _value(samples, "keepbase_db_pool_checked_out", pool=pool)
        assert used is not None and 0 <= used <= size * 3
    assert _value(samples, "keepbase_realtime_clients") == 0
    assert _value(samples, "keepbase_mail_queue_length") == 0
    queued = _value(samples, "keepbase_log_queue_length")
    assert queued is not None and queued >= 1  # this test's own requests wait for the log writer
    assert _value(samples, "keepbase_database_up") == 1
    assert _value(samples, "keepbase_data_dir_writable") == 1
    assert (_value(samples, "keepbase_data_dir_free_bytes") or 0) > 0
    assert _value(samples, "keepbase_realtime_broker_connected") in (0, 1)


def test_registries_are_per_app(app: App) -> None:
    one = Metrics(app, [])
    two = Metrics(app, [])  # a second registry with the same metric names: no clash
    one.observe("GET", "/api/health", 200, 0.001)
    assert b'route="/api/health"' in one.render()
    assert b'route="/api/health"' not in two.render()
