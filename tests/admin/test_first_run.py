"""The first-run page: ``keepbase serve`` with no superuser prints ``/_/#/pbinstall/<token>``.

A real ``keepbase serve`` (SQLite and PostgreSQL, fresh data each time) and Debian's chromium:
the printed link is opened, the first superuser is created through the page, and the test checks
through the API that the placeholder superuser is gone and its token dead, that the link a second
time only says so, and that the token never sat in the address bar nor left in a URL.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from keepbase.admin.dashboard import CSP, with_dashboard
from tests.server_process import ServerProcess

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install -e '.[dev]')")

from playwright.sync_api import (  # noqa: E402
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Request,
    expect,
)

from tests.admin.test_dashboard_browser import TIMEOUT_MS, Watch  # noqa: E402

EMAIL = "first@example.com"
PASSWORD = "first-password-123"
INSTALL_KEY = "keepbase.dashboard.install"
DASHBOARD_TOKEN_KEY = "keepbase.dashboard.token"

expect.set_options(timeout=TIMEOUT_MS)




@pytest.fixture(params=["sqlite", "postgres"])
def fresh_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """``keepbase serve`` on an empty data folder (or an empty PostgreSQL database): no superuser."""
    args: list[str] = []
    if request.param == "postgres":
        from tests.pg_server import create_database, drop_database

        db_url = create_database(request.getfixturevalue("pg_base_url"))
        request.addfinalizer(lambda: drop_database(db_url))
        args = ["--db", db_url]
    server = ServerProcess.start(tmp_path, *args)
    try:
        server.wait_ready(timeout=60)
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.kill()  # only if SIGTERM did not end it


def printed_link(server: ServerProcess, timeout: float = 30) -> str:
    """The one-time setup link from the start message (printed just after the server starts answering)."""
    pattern = re.compile(r"^(http://\S+/_/#/pbinstall/\S+)$", re.M)
    deadline = time.monotonic() + timeout
    while (match := pattern.search(server.output())) is None:
        assert time.monotonic() < deadline, f"no setup link printed:\n{server.output()}"
        time.sleep(0.05)
    return match.group(1)


class Tab:
    """A fresh browser context and page, with everything it requested and everything it did wrong."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context()
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.watch = Watch()
        self.requests: list[Request] = []

        def on_dialog(dialog: Dialog) -> None:
            self.watch.dialogs.append(dialog.message)
            dialog.dismiss()

        def on_console(msg: ConsoleMessage) -> None:
            if "Content Security Policy" in msg.text or "Trusted Type" in msg.text:
                self.watch.csp_violations.append(msg.text)

        self.page.on("dialog", on_dialog)
        self.page.on("console", on_console)
        self.page.on("pageerror", lambda exc: self.watch.page_errors.append(str(exc)))
        self.page.on("request", lambda req: self.requests.append(req))

    def session(self, key: str) -> Any:
        return self.page.evaluate("(key) => sessionStorage.getItem(key)", key)

    def address(self) -> str:
        return str(self.page.evaluate("() => window.location.href"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(browser: Browser) -> Iterator[list[Tab]]:
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        tab.close()


def superusers(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/collections/_superusers/records", headers={"Authorization": token},
                     timeout=30)


def test_the_printed_link_creates_the_first_superuser(fresh_server: ServerProcess, browser: Browser,
                                                     tabs: list[Tab]) -> None:
    server = fresh_server
    link = printed_link(server)
    assert link.startswith(f"{server.url}/_/#/pbinstall/")
    token = link.rsplit("/", 1)[1]
    assert len(token) > 40
    # while the link is unused its token works, and the only superuser is the placeholder
    before = superusers(server, token)
    assert before.status_code == 200, before.text
    assert [r["email"] for r in before.json()["items"]] == ["__pbinstaller@example.com"]

    tab = Tab(browser)
    tabs.append(tab)
    page = tab.page
    page.goto(link)
    form = page.locator("#install-form")
    expect(form).to_be_visible()
    # the token left the address bar as soon as it was read
    assert token not in tab.address() and token not in page.url
    assert tab.address() == f"{server.url}/_/#/pbinstall"
    expect(page.locator("#install-expired")).to_be_hidden()
    expect(page.locator("#login-view")).to_be_hidden()

    # labelled fields with the autocomplete hints password managers need
    view = page.locator("#install-view")
    expect(view.get_by_label("Email")).to_have_attribute("autocomplete", "username")
    expect(view.get_by_label("Password", exact=True)).to_have_attribute("autocomplete", "new-password")
    expect(view.get_by_label("Confirm password")).to_have_attribute("autocomplete", "new-password")

    # a reload keeps the page working (the token is in this tab's sessionStorage, not the address)
    page.reload()
    expect(form).to_be_visible()
    assert token not in tab.address()

    # the API's validation errors appear next to each field; nothing is created
    view.get_by_label("Email").fill(EMAIL)
    view.get_by_label("Password", exact=True).fill("short")
    view.get_by_label("Confirm password").fill("different")
    page.click("#install-form button[type=submit]")
    expect(page.locator("#install-password-error")).to_have_text(re.compile(r"\d"))  # "at least N characters"
    expect(page.locator("#install-passwordConfirm-error")).not_to_be_empty()
    expect(page.locator("#install-password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#install-error")).not_to_be_empty()
    expect(form).to_be_visible()
    still = superusers(server, token)
    assert [r["email"] for r in still.json()["items"]] == ["__pbinstaller@example.com"]

    view.get_by_label("Password", exact=True).fill(PASSWORD)
    view.get_by_label("Confirm password").fill(PASSWORD)
    page.click("#install-form button[type=submit]")

    # signed in on the normal dashboard
    expect(page.locator("#shell")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text(EMAIL)
    expect(page.locator("#system-collection-list button[data-collection='_superusers']")).to_be_visible()
    expect(page.locator("#install-view")).to_be_hidden()
    assert isinstance(tab.session(DASHBOARD_TOKEN_KEY), str) and tab.session(DASHBOARD_TOKEN_KEY)
    assert tab.session(INSTALL_KEY) is None
    assert "pbinstall" not in tab.address() and token not in tab.address()

    # the placeholder is gone: the new superuser lists exactly one superuser, itself
    auth = httpx.post(f"{server.url}/api/collections/_superusers/auth-with-password",
                      json={"identity": EMAIL, "password": PASSWORD}, timeout=30)
    assert auth.status_code == 200, auth.text
    listed = superusers(server, auth.json()["token"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["totalItems"] == 1
    assert [r["email"] for r in listed.json()["items"]] == [EMAIL]
    # and the setup token died with it
    assert superusers(server, token).status_code in (401, 403)

    # the token was only ever sent in the Authorization header, never in a URL or a Referer
    create = [r for r in tab.requests if r.method == "POST" and r.url.endswith("/api/collections/_superusers/records")]
    assert len(create) == 2 and all(r.all_headers().get("authorization") == token for r in create)
    for req in tab.requests:
        assert token not in req.url
        assert token not in req.all_headers().get("referer", "")
    tab.watch.assert_clean()

    # the same link again, in a fresh tab already on the dashboard (so the link arrives as a
    # hashchange): a clear message instead of a form or a raw error
    again = Tab(browser)
    tabs.append(again)
    again.page.goto(f"{server.url}/_/")
    expect(again.page.locator("#login-view")).to_be_visible()
    again.page.goto(link)
    expired = again.page.locator("#install-expired")
    expect(expired).to_be_visible()
    expect(expired).to_contain_text("This setup link has expired or was already used")
    expect(expired).to_contain_text("keepbase superuser upsert")
    expect(expired).to_contain_text("restart the server")
    expect(again.page.locator("#install-form")).to_be_hidden()
    assert token not in again.address()
    assert again.session(INSTALL_KEY) is None
    # the history entry holding the token was replaced, not added to: back is the page before it
    again.page.go_back()
    expect(again.page.locator("#login-view")).to_be_visible()
    assert again.address() == f"{server.url}/_/"
    again.page.go_forward()
    expect(expired).to_be_visible()
    assert again.address() == f"{server.url}/_/#/pbinstall"
    again.page.click("#install-to-login")
    expect(again.page.locator("#login-view")).to_be_visible()
    expect(again.page.locator("#install-view")).to_be_hidden()

    # a mangled link says the same
    again.page.goto(f"{server.url}/_/#/pbinstall/not-a-token")
    expect(expired).to_be_visible()
    expect(again.page.locator("#install-form")).to_be_hidden()
    again.watch.assert_clean()

    # nothing came from anywhere but this server, and nothing from PocketBase's own dashboard
    loaded = [r.url for t in tabs for r in t.requests]
    assert loaded and all(url.startswith(server.url + "/") for url in loaded), loaded
    paths = {url.removeprefix(server.url).split("?")[0] for url in loaded}
    assert {"/_/", "/_/app.js", "/_/install.js"} <= paths
    assert {p for p in paths if p.startswith("/_/")} <= {
        "/_/", "/_/app.js", "/_/api.js", "/_/dom.js", "/_/install.js", "/_/app.css", "/_/favicon.svg"}


def test_dashboard_scripts_never_parse_html_or_evaluate_strings() -> None:
    """The pattern checks test_dashboard_http applies to app.js, over every dashboard module."""
    static = Path(__file__).resolve().parents[2] / "keepbase" / "admin" / "static"
    scripts = sorted(static.glob("*.js"))
    assert {p.name for p in scripts} >= {"app.js", "api.js", "dom.js", "install.js"}
    for path in scripts:
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                     "createContextualFragment", "DOMParser", "srcdoc", "javascript:", "localStorage"):
            assert sink not in source.replace("no innerHTML", ""), (path.name, sink)
        assert not re.search(r"set(Timeout|Interval)\(\s*['\"`]", source), path.name
        assert not re.search(r"""(import|from)\s*\(?\s*['"](?!\./)""", source), path.name  # local modules only


async def _get_all(app: ASGIApp, paths: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return [await client.get(path) for path in paths]


def test_the_dashboard_modules_are_served_as_scripts_with_the_strict_headers() -> None:
    async def no_api(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"reached the API: {scope['path']}")

    static = Path(__file__).resolve().parents[2] / "keepbase" / "admin" / "static"
    names = ["app.js", "api.js", "dom.js", "install.js"]
    # on a thread of its own: Playwright's sync API keeps an event loop running on this one
    # while this module's browser is open
    with ThreadPoolExecutor(1) as pool:
        responses = pool.submit(asyncio.run, _get_all(with_dashboard(no_api), [f"/_/{n}" for n in names])).result()
    for name, r in zip(names, responses, strict=True):
        assert r.status_code == 200, name
        assert r.headers["content-type"] == "text/javascript; charset=utf-8", name
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.content == (static / name).read_bytes(), name
