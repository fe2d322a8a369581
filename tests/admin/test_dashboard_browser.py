"""The dashboard in a real browser: Playwright driving Debian's ``chromium`` against ``keepbase serve``.

The browser is the system one (``/usr/bin/chromium``, apt package ``chromium``), launched through
``executable_path``, so ``playwright install`` (a download) is never needed. Without Playwright or
Chromium the tests skip with the reason. Every test opens a fresh browser context (fresh
sessionStorage), seeds its own collection through the API, and ends by checking that no JavaScript
dialog opened, no uncaught error happened and the page broke none of its own CSP rules.

Only Playwright's auto-waiting is used (``expect`` with generous timeouts): the machine is shared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.admin.conftest import SeedApi
from tests.auth.conftest import Mailbox, html_of, running_mailbox
from tests.js_harness import EMAIL, PASSWORD, Server

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install -e '.[dev]')")

from playwright.sync_api import (  # noqa: E402
    Browser,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    expect,
)

TIMEOUT_MS = 30_000

expect.set_options(timeout=TIMEOUT_MS)




@dataclass
class Watch:
    """What the page did that it never should: JS dialogs, uncaught errors, CSP violations."""

    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.dialogs == []
        assert self.page_errors == []
        assert self.csp_violations == []


@dataclass
class Dash:
    page: Page
    server: Server
    seed: SeedApi
    watch: Watch

    def open(self) -> None:
        self.page.goto(self.server.url + "/_/")

    def sign_in(self) -> None:
        self.open()
        self.page.fill("#login-identity", EMAIL)
        self.page.fill("#login-password", PASSWORD)
        self.page.click("#login-form button[type=submit]")
        expect(self.page.locator("#shell")).to_be_visible()

    def open_collection(self, name: str) -> None:
        self.page.click(f"#sidebar button[data-collection='{name}']")
        expect(self.page.locator("#collection-title")).to_have_text(name)
        expect(self.page.locator("#page-info")).not_to_be_empty()

    def rows(self) -> Locator:
        return self.page.locator("#records-table tbody tr[data-id]")

    def cells(self, field_name: str) -> Locator:
        return self.page.locator(f"#records-table tbody tr[data-id] td[data-field='{field_name}']")

    def token(self) -> object:
        return self.page.evaluate("() => sessionStorage.getItem('keepbase.dashboard.token')")


@pytest.fixture
def dash(browser: Browser, kb_server: Server, seed: SeedApi) -> Iterator[Dash]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch = Watch()

    def on_dialog(dialog: Dialog) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(msg: ConsoleMessage) -> None:
        text = msg.text
        if "Content Security Policy" in text or "Trusted Type" in text:
            watch.csp_violations.append(text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: watch.page_errors.append(str(exc)))
    try:
        yield Dash(page, kb_server, seed, watch)
    finally:
        context.close()


# ------------------------------------------------------------------ tests


def test_sign_in_session_and_sign_out(dash: Dash) -> None:
    page = dash.page
    page.goto(dash.server.url + "/_")  # redirected to /_/
    expect(page.locator("#login-view")).to_be_visible()
    assert page.url == dash.server.url + "/_/"

    page.fill("#login-identity", EMAIL)
    page.fill("#login-password", "wrong-password-123")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Invalid email or password.")
    expect(page.locator("#shell")).to_be_hidden()
    assert dash.token() is None

    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#shell")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text(EMAIL)
    expect(page.locator("#system-collection-list button[data-collection='_superusers']")).to_be_visible()
    assert isinstance(dash.token(), str) and dash.token()
    assert page.evaluate("() => localStorage.length") == 0

    page.reload()  # the token survives a reload (sessionStorage)
    expect(page.locator("#shell")).to_be_visible()
    expect(page.locator("#system-collection-list button[data-collection='_superusers']")).to_be_visible()

    page.click("#sign-out")
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#shell")).to_be_hidden()
    assert dash.token() is None
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    dash.watch.assert_clean()


def test_an_expired_or_revoked_token_returns_to_sign_in(dash: Dash) -> None:
    dash.sign_in()
    dash.page.evaluate("() => sessionStorage.setItem('keepbase.dashboard.token', 'not-a-valid-token')")
    dash.page.reload()
    expect(dash.page.locator("#login-view")).to_be_visible()
    expect(dash.page.locator("#login-error")).to_contain_text("sign in again")
    assert dash.token() is None
    dash.watch.assert_clean()


def test_browse_page_sort_and_filter(dash: Dash) -> None:
    dash.seed.create_collection("dash_posts", [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}])
    for i in range(25):
        dash.seed.create_record("dash_posts", {"title": f"post {i:02}", "n": i})
    page = dash.page
    dash.sign_in()
    expect(page.locator("#collection-list button[data-collection='dash_posts']")).to_be_visible()
    dash.open_collection("dash_posts")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2 · 25 records")
    expect(dash.rows()).to_have_count(20)
    expect(page.locator("#prev-page")).to_be_disabled()

    page.click("#next-page")
    expect(page.locator("#page-info")).to_have_text("Page 2 of 2 · 25 records")
    expect(dash.rows()).to_have_count(5)
    expect(page.locator("#next-page")).to_be_disabled()
    page.click("#prev-page")
    expect(dash.rows()).to_have_count(20)

    header = page.locator("#records-table th:has(button[data-sort='n'])")
    page.click("#records-table button[data-sort='n']")
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(dash.cells("n").first).to_have_text("0")
    page.click("#records-table button[data-sort='n']")
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(dash.cells("n").first).to_have_text("24")

    page.fill("#filter", "n >= 22 && title ~ 'post'")
    page.press("#filter", "Enter")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1 · 3 records")
    expect(dash.cells("title")).to_have_text(["post 24", "post 23", "post 22"])

    page.fill("#filter", "nosuchfield = 1")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#records-error")).to_be_visible()
    expect(page.locator("#records-error")).not_to_be_empty()
    expect(dash.rows()).to_have_count(0)

    page.fill("#filter", "")
    page.press("#filter", "Enter")
    expect(page.locator("#records-error")).to_be_hidden()
    expect(dash.rows()).to_have_count(20)
    dash.watch.assert_clean()


def test_create_with_validation_error_then_edit_and_delete(dash: Dash) -> None:
    people = dash.seed.create_collection("dash_people", [{"name": "name", "type": "text"}])
    person = dash.seed.create_record("dash_people", {"name": "Ada"})
    dash.seed.create_collection("dash_tasks", [
        {"name": "title", "type": "text", "required": True},
        {"name": "n", "type": "number"},
        {"name": "done", "type": "bool"},
        {"name": "contact", "type": "email"},
        {"name": "site", "type": "url"},
        {"name": "due", "type": "date"},
        {"name": "kind", "type": "select", "values": ["low", "high"], "maxSelect": 1},
        {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
        {"name": "meta", "type": "json"},
        {"name": "owner", "type": "relation", "collectionId": people["id"], "maxSelect": 1},
        {"name": "att", "type": "file", "maxSelect": 1},
    ])
    page = dash.page
    dialog = page.locator("#record-dialog")
    dash.sign_in()
    dash.open_collection("dash_tasks")
    expect(page.locator("#records-table td.empty")).to_have_text("No records found.")

    page.click("#new-record")
    expect(dialog).to_be_visible()
    expect(page.locator("#record-dialog-title")).to_have_text("New dash_tasks record")
    page.fill("#field-title", "first task")
    page.fill("#field-n", "7")
    page.check("#field-done")
    page.fill("#field-contact", "not-an-email")
    page.fill("#field-site", "https://example.com/x")
    page.fill("#field-due", "2024-05-06 07:08:09.000Z")
    page.select_option("#field-kind", "high")
    page.check("#field-tags input[value='a']")
    page.check("#field-tags input[value='c']")
    page.fill("#field-meta", '{"k": [1, 2]}')
    page.fill("#field-owner", person["id"])
    expect(page.locator(".field[data-field='att']")).to_contain_text("No files.")
    page.click("#record-form button[type=submit]")

    expect(page.locator("#field-contact-error")).to_have_text(re.compile("email", re.I))
    expect(page.locator("#field-contact")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#record-form-error")).not_to_be_empty()
    expect(page.locator("#field-title-error")).to_be_hidden()
    expect(dialog).to_be_visible()
    assert dash.seed.list_records("dash_tasks") == []

    page.fill("#field-contact", "ada@example.com")
    page.click("#record-form button[type=submit]")
    expect(dialog).to_be_hidden()
    expect(dash.cells("title")).to_have_text(["first task"])
    [saved] = dash.seed.list_records("dash_tasks")
    assert (saved["title"], saved["n"], saved["done"], saved["contact"]) == ("first task", 7, True, "ada@example.com")
    assert (saved["site"], saved["due"], saved["kind"]) == ("https://example.com/x", "2024-05-06 07:08:09.000Z", "high")
    assert (saved["tags"], saved["meta"], saved["owner"], saved["att"]) == (["a", "c"], {"k": [1, 2]}, person["id"], "")

    # edit: the form is filled from the record; a required field left blank is refused by the API
    page.click(f"#records-table tr[data-id='{saved['id']}'] button")
    expect(dialog).to_be_visible()
    expect(page.locator("#field-title")).to_have_value("first task")
    expect(page.locator("#field-kind")).to_have_value("high")
    expect(page.locator("#field-tags input[value='c']")).to_be_checked()
    expect(page.locator("#field-id")).to_have_count(0)
    page.fill("#field-title", "")
    page.click("#record-form button[type=submit]")
    expect(page.locator("#field-title-error")).not_to_be_empty()
    page.fill("#field-meta", "{not json")
    page.click("#record-form button[type=submit]")
    expect(page.locator("#field-meta-error")).to_have_text("Invalid JSON.")
    page.fill("#field-meta", '{"k": [1, 2]}')
    page.fill("#field-title", "renamed task")
    page.uncheck("#field-done")
    page.click("#record-form button[type=submit]")
    expect(dialog).to_be_hidden()
    expect(dash.cells("title")).to_have_text(["renamed task"])
    [edited] = dash.seed.list_records("dash_tasks")
    assert (edited["id"], edited["title"], edited["done"]) == (saved["id"], "renamed task", False)
    assert (edited["tags"], edited["meta"], edited["owner"]) == (["a", "c"], {"k": [1, 2]}, person["id"])

    # delete asks in the page (no window.confirm) and can be called off
    page.click(f"#records-table tr[data-id='{saved['id']}'] button")
    page.click("#record-delete")
    expect(page.locator("#delete-confirm")).to_be_visible()
    page.click("#delete-no")
    expect(page.locator("#delete-confirm")).to_be_hidden()
    page.click("#record-delete")
    page.click("#delete-yes")
    expect(dialog).to_be_hidden()
    expect(page.locator("#records-table td.empty")).to_have_text("No records found.")
    assert dash.seed.list_records("dash_tasks") == []
    dash.watch.assert_clean()


XSS_TITLE = '<img src=x onerror="window.__xss=1;alert(1)">'
XSS_OTHER = '"><svg onload="window.__xss=2;alert(2)"></svg><script>window.__xss=3</script>'


def test_hostile_values_render_as_text(dash: Dash) -> None:
    dash.seed.create_collection("dash_xss", [
        {"name": "title", "type": "text"},
        {"name": "meta", "type": "json"},
        {"name": "kind", "type": "select", "values": [XSS_TITLE, "plain"], "maxSelect": 1},
    ])
    rec = dash.seed.create_record("dash_xss", {"title": XSS_TITLE, "meta": {"html": XSS_OTHER}, "kind": XSS_TITLE})
    dash.seed.create_record("dash_xss", {"title": XSS_OTHER, "kind": "plain"})
    page = dash.page
    dash.sign_in()
    dash.open_collection("dash_xss")
    expect(dash.rows()).to_have_count(2)
    row = page.locator(f"#records-table tr[data-id='{rec['id']}']")
    expect(row.locator("td[data-field='title']")).to_have_text(XSS_TITLE)
    expect(row.locator("td[data-field='kind']")).to_have_text(XSS_TITLE)
    expect(row.locator("td[data-field='meta']")).to_contain_text("<script>window.__xss=3</script>")
    expect(page.locator("#records-table").get_by_text(XSS_OTHER, exact=True)).to_have_count(1)

    # in the form too: input values and option labels, never markup
    row.locator("button").click()
    expect(page.locator("#record-dialog")).to_be_visible()
    expect(page.locator("#field-title")).to_have_value(XSS_TITLE)
    expect(page.locator("#field-kind")).to_have_value(XSS_TITLE)
    expect(page.locator("#field-meta")).to_have_value(re.compile(re.escape("<svg onload=")))
    page.click("#record-cancel")

    # an error message echoing the filter is shown as text as well
    page.fill("#filter", XSS_TITLE)
    page.press("#filter", "Enter")
    expect(page.locator("#records-error")).not_to_be_empty()

    assert page.locator("img, svg, iframe, object, embed").count() == 0
    assert page.locator("script").count() == 1  # only app.js
    assert page.evaluate("() => window.__xss") is None
    dash.watch.assert_clean()


def test_create_a_collection(dash: Dash) -> None:
    page = dash.page
    dash.sign_in()
    page.click("#new-collection")
    expect(page.locator("#collection-dialog")).to_be_visible()
    page.fill("#collection-name", "bad name!")
    page.locator("#collection-fields input[name=fieldName]").nth(0).fill("headline")
    page.click("#collection-form button[type=submit]")
    expect(page.locator("#collection-name-error")).not_to_be_empty()

    page.fill("#collection-name", "dash_made_in_ui")
    page.click("#add-field")
    page.locator("#collection-fields input[name=fieldName]").nth(1).fill("score")
    page.locator("#collection-fields select[name=fieldType]").nth(1).select_option("number")
    page.click("#add-field")
    page.locator("#collection-fields input[name=fieldName]").nth(2).fill("flag")
    page.locator("#collection-fields select[name=fieldType]").nth(2).select_option("bool")
    page.click("#collection-form button[type=submit]")
    expect(page.locator("#collection-dialog")).to_be_hidden()
    expect(page.locator("#collection-list button[data-collection='dash_made_in_ui']")).to_have_attribute(
        "aria-current", "true")
    expect(page.locator("#collection-title")).to_have_text("dash_made_in_ui")
    expect(page.locator("#records-table thead button[data-sort]")).to_have_text(
        ["id", "headline", "score", "flag", "created", "updated"])

    coll = dash.seed.ok("GET", "/api/collections/dash_made_in_ui")
    assert coll["type"] == "base"
    assert [(f["name"], f["type"]) for f in coll["fields"]] == [
        ("id", "text"), ("headline", "text"), ("score", "number"), ("flag", "bool"), ("created", "autodate"),
        ("updated", "autodate")]

    # and it is usable at once
    page.click("#new-record")
    page.fill("#field-headline", "hello")
    page.fill("#field-score", "2.5")
    page.click("#record-form button[type=submit]")
    expect(dash.cells("headline")).to_have_text(["hello"])
    assert [(r["headline"], r["score"], r["flag"]) for r in dash.seed.list_records("dash_made_in_ui")] == [
        ("hello", 2.5, False)]
    dash.watch.assert_clean()


def _mail_link(mailbox: Mailbox, count: int, base_url: str, action: str) -> str:
    html = html_of(mailbox.wait(count, timeout=60)[count - 1])
    match = re.search(re.escape(base_url) + r"/_/#/auth/" + action + r"/[A-Za-z0-9._-]+", html)
    assert match, html
    return match.group(0)


def test_links_from_emails(dash: Dash) -> None:
    """Verification, password reset and email change mails link to /_/#/auth/<action>/<token>."""
    page, seed, url = dash.page, dash.seed, dash.server.url
    seed.ok("POST", "/api/collections", {"name": "dash_members", "type": "auth", "fields": []})
    user = seed.create_record("dash_members", {"email": "member@example.com", "password": "first-pass-123",
                                               "passwordConfirm": "first-pass-123"})
    with running_mailbox() as mailbox:
        seed.ok("PATCH", "/api/settings", {
            "smtp": {"enabled": True, "host": "127.0.0.1", "port": mailbox.port, "tls": False},
            "meta": {"appURL": url, "appName": "Acme", "senderAddress": "noreply@example.com"}})

        seed.ok("POST", "/api/collections/dash_members/request-verification", {"email": "member@example.com"})
        page.goto(_mail_link(mailbox, 1, url, "confirm-verification"))
        expect(page.locator("#auth-action-body .success")).to_have_text("Your email address has been verified.")
        expect(page.locator("#login-view")).to_be_hidden()
        assert seed.ok("GET", f"/api/collections/dash_members/records/{user['id']}")["verified"] is True

        seed.ok("POST", "/api/collections/dash_members/request-password-reset", {"email": "member@example.com"})
        page.goto(_mail_link(mailbox, 2, url, "confirm-password-reset"))
        page.fill("#field-password", "second-pass-456")
        page.fill("#field-passwordConfirm", "something-else")
        page.click("#auth-action-body button[type=submit]")
        expect(page.locator("#field-passwordConfirm-error")).not_to_be_empty()
        page.fill("#field-passwordConfirm", "second-pass-456")
        page.click("#auth-action-body button[type=submit]")
        expect(page.locator("#auth-action-body .success")).to_contain_text("Your password has been changed.")
        status, auth = seed.call("POST", "/api/collections/dash_members/auth-with-password",
                                 {"identity": "member@example.com", "password": "second-pass-456"}, auth=False)
        assert status == 200, auth

        status, _ = seed.call("POST", "/api/collections/dash_members/request-email-change",
                              {"newEmail": "renamed@example.com"}, token=auth["token"])
        assert status == 204
        page.goto(_mail_link(mailbox, 3, url, "confirm-email-change"))
        page.fill("#field-password", "wrong-password")
        page.click("#auth-action-body button[type=submit]")
        expect(page.locator("#auth-action-body .error")).not_to_be_empty()
        page.fill("#field-password", "second-pass-456")
        page.click("#auth-action-body button[type=submit]")
        expect(page.locator("#auth-action-body .success")).to_contain_text("Your email address has been changed.")
        assert seed.ok("GET", f"/api/collections/dash_members/records/{user['id']}")["email"] == "renamed@example.com"

    page.goto(url + "/_/#/auth/confirm-password-reset/not-a-token")
    expect(page.locator("#auth-action-title")).to_have_text("Invalid link")
    page.goto(url + "/_/#/auth/oauth2-redirect-success")
    expect(page.locator("#auth-action-title")).to_have_text("Signed in")
    page.goto(url + "/_/")  # leaving the link pages shows the sign-in again
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#auth-action-view")).to_be_hidden()
    dash.watch.assert_clean()
