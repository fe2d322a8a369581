"""The dashboard's HTTP surface at ``/_/``: routes, content types, security headers, no path traversal.

Run through the full ASGI app (``app.asgi``) on SQLite and PostgreSQL. Raw request paths that
httpx would normalise (``..`` segments) are sent by calling the ASGI app directly with the scope a
server would build (``path`` percent-decoded, ``raw_path`` as received).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import Message

from keepbase.admin.dashboard import CSP
from keepbase.app import App
from tests.conftest import make_collection

ASSETS = {
    "/_/": "text/html; charset=utf-8",
    "/_/index.html": "text/html; charset=utf-8",
    "/_/app.js": "text/javascript; charset=utf-8",
    "/_/app.css": "text/css; charset=utf-8",
    "/_/favicon.svg": "image/svg+xml",
}

PYPROJECT_MARKER = b"[build-system]"


def assert_dashboard_headers(headers: httpx.Headers) -> None:
    csp = headers.get_list("content-security-policy")
    assert csp == [CSP]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "*" not in CSP
    assert headers.get_list("x-frame-options") == ["DENY"]
    assert headers.get_list("x-content-type-options") == ["nosniff"]
    assert headers.get_list("referrer-policy") == ["no-referrer"]


# ------------------------------------------------------------------ routes and headers


async def test_assets_are_served_with_their_type_and_strict_headers(client: httpx.AsyncClient) -> None:
    for path, content_type in ASSETS.items():
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"] == content_type, path
        assert r.headers["cache-control"] == "no-cache"
        assert int(r.headers["content-length"]) == len(r.content) > 0
        assert_dashboard_headers(r.headers)


async def test_slashless_path_redirects_to_the_dashboard(client: httpx.AsyncClient) -> None:
    r = await client.get("/_")
    assert r.status_code == 301
    assert r.headers["location"] == "/_/"
    assert_dashboard_headers(r.headers)
    r = await client.get("/_?x=1")
    assert r.headers["location"] == "/_/?x=1"
    r = await client.get("/_", follow_redirects=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


async def test_index_loads_its_module_and_stylesheet(client: httpx.AsyncClient) -> None:
    html = (await client.get("/_/")).text
    assert '<script type="module" src="app.js"></script>' in html
    assert '<link rel="stylesheet" href="app.css">' in html


async def test_head_etag_and_methods(client: httpx.AsyncClient) -> None:
    full = await client.get("/_/app.js")
    head = await client.head("/_/app.js")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    etag = full.headers["etag"]
    r = await client.get("/_/app.js", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == etag
    assert_dashboard_headers(r.headers)
    r = await client.get("/_/app.js", headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = await client.request(method, "/_/")
        assert r.status_code == 405, method
        assert r.headers["allow"] == "GET, HEAD"
        assert_dashboard_headers(r.headers)


async def test_unknown_files_are_404_with_strict_headers(client: httpx.AsyncClient) -> None:
    for path in ("/_/nope.js", "/_/static/app.js", "/_/APP.JS", "/_/app.js/", "/_//app.js", "/_/app.js.map",
                 "/_/__init__.py", "/_/dashboard.py", "/_/static/"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert_dashboard_headers(r.headers)


async def test_api_keeps_its_own_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health")
    assert r.status_code == 200
    assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert "content-security-policy" not in r.headers
    # paths that merely start with /_ are not the dashboard
    for path in ("/_x", "/__/", "/_admin/"):
        r = await client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/json"
        assert "content-security-policy" not in r.headers


# ------------------------------------------------------------------ path traversal

TRAVERSALS = [
    "/_/../pyproject.toml",
    "/_/../../pyproject.toml",
    "/_/../../../pyproject.toml",
    "/_/./../../pyproject.toml",
    "/_/static/../../../pyproject.toml",
    "/_/app.js/../../../pyproject.toml",
    "/_/%2e%2e/%2e%2e/pyproject.toml",
    "/_/%2E%2E/%2E%2E/%2E%2E/pyproject.toml",
    "/_/..%2f..%2fpyproject.toml",
    "/_/..%2F..%2F..%2Fpyproject.toml",
    "/_/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/_/%252e%252e/%252e%252e/pyproject.toml",
    "/_/..%5c..%5cpyproject.toml",
    "/_/..\\..\\pyproject.toml",
    "/_/....//....//pyproject.toml",
    "/_/%c0%ae%c0%ae/%c0%ae%c0%ae/pyproject.toml",
    "/_//work/main/pyproject.toml",
    "/_/%2fetc%2fpasswd",
    "/_/app.js%00",
    "/_/app.js%00.css",
    "/_/../admin/dashboard.py",
    "/_/../__init__.py",
]


async def raw_get(app: App, raw_path: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``raw_path`` exactly as sent on the wire, the way uvicorn hands it to the app."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": unquote(raw_path), "raw_path": raw_path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80), "state": {},
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app.asgi(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body


async def test_no_path_escapes_the_static_folder(app: App) -> None:
    for raw_path in TRAVERSALS:
        status, headers, body = await raw_get(app, raw_path)
        assert status == 404, (raw_path, status)
        assert PYPROJECT_MARKER not in body and b"import" not in body and b"root:" not in body, raw_path
        assert headers["x-frame-options"] == "DENY", raw_path


async def test_raw_get_serves_the_real_files(app: App) -> None:
    """The traversal helper itself reaches the dashboard (or the tests above would pass vacuously)."""
    status, headers, body = await raw_get(app, "/_/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"textContent" in body


# ------------------------------------------------------------------ the assets themselves


def static_text(name: str) -> str:
    return (resources.files("keepbase.admin") / "static" / name).read_text(encoding="utf-8")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def test_index_has_no_inline_code_and_only_local_references() -> None:
    parser = _Tags()
    parser.feed(static_text("index.html"))
    assert parser.script_text == []
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "app.js"}]
    served = {path.removeprefix("/_/") for path in ASSETS}
    for tag, attrs in parser.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            if name in ("src", "href"):
                assert value in served, (tag, name, value)


def test_script_never_parses_html_or_evaluates_strings() -> None:
    source = static_text("app.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "createContextualFragment", "DOMParser", "srcdoc", "javascript:"):
        assert sink not in source.replace("no innerHTML", ""), sink
    assert not re.search(r"set(Timeout|Interval)\(\s*['\"`]", source)
    assert "localStorage" not in source  # the token lives in sessionStorage only
    assert "sessionStorage.setItem(TOKEN_KEY" in source


# ------------------------------------------------------------------ the API calls the dashboard makes


async def test_the_api_answers_the_dashboards_calls(client: httpx.AsyncClient, su_headers: dict[str, str]) -> None:
    await make_collection(client, su_headers, name="notes",
                          fields=[{"name": "title", "type": "text", "required": True},
                                  {"name": "contact", "type": "email"}])
    for i in range(3):
        r = await client.post("/api/collections/notes/records", json={"title": f"n{i}"}, headers=su_headers)
        assert r.status_code == 200, r.text
    r = await client.get("/api/collections", params={"perPage": "500", "sort": "name"}, headers=su_headers)
    assert r.status_code == 200
    names = [c["name"] for c in r.json()["items"]]
    assert "notes" in names and "_superusers" in names and names == sorted(names)
    r = await client.get("/api/collections/notes/records",
                         params={"page": "1", "perPage": "20", "sort": "-title", "filter": "title != 'n1'"},
                         headers=su_headers)
    body = r.json()
    assert [rec["title"] for rec in body["items"]] == ["n2", "n0"]
    assert (body["page"], body["perPage"], body["totalItems"], body["totalPages"]) == (1, 20, 2, 1)
    # the form shows data.<field>.message next to each field
    r = await client.post("/api/collections/notes/records", json={"title": "", "contact": "nope"},
                          headers=su_headers)
    assert r.status_code == 400
    data = r.json()["data"]
    assert set(data) == {"title", "contact"}
    assert all(isinstance(err["message"], str) and err["message"] for err in data.values())
    # the dashboard itself is public static content: no data, same bytes with or without a token
    anon = await client.get("/_/")
    authed = await client.get("/_/", headers=su_headers)
    assert anon.content == authed.content and b"notes" not in anon.content
