"""The dashboard as served by a real ``keepbase serve`` (uvicorn): start message, raw paths on the wire."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from tests.admin.test_dashboard_http import TRAVERSALS
from tests.js_harness import Server


def raw_request(server: Server, method: str, raw_path: str) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        # http.client sends the path as given: no dot-segment removal, no re-encoding
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_start_message_points_at_the_dashboard(kb_server: Server) -> None:
    log = kb_server.log_path.read_text(errors="replace")  # the whole log: access-log lines follow the start
    assert f"└─ Dashboard: {kb_server.url}/_/" in log
    assert "not part of this release" not in log


def test_served_over_http(kb_server: Server) -> None:
    status, headers, body = raw_request(kb_server, "GET", "/_/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b'src="app.js"' in body
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert "default-src 'self'" in headers["content-security-policy"]
    status, headers, _ = raw_request(kb_server, "GET", "/_")
    assert status == 301 and headers["location"] == "/_/"


def test_no_raw_path_escapes_the_static_folder(kb_server: Server) -> None:
    for raw_path in [*TRAVERSALS, "/_/%2e%2e", "/_/.%2e/.%2e/pyproject.toml"]:
        status, _, body = raw_request(kb_server, "GET", raw_path)
        assert status in (400, 404), (raw_path, status)
        assert b"[build-system]" not in body and b"import" not in body, raw_path
