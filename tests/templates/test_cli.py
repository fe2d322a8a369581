"""``keepbase import`` and ``keepbase new`` through click's CliRunner, on a temp data folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from keepbase.app import create_app
from keepbase.cli import main
from keepbase.cli.templates import load_template, template_names
from keepbase.core.config import Config


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _collections(data_dir: Path, db: str = "") -> dict[str, dict]:
    app = create_app(Config(dir=str(data_dir), db=db))
    try:
        return {c.name: {"id": c.id, "rules": dict(c.rules)} for c in app.collections.all()}
    finally:
        app.close()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEPBASE_DB", raising=False)
    monkeypatch.delenv("KEEPBASE_DIR", raising=False)


def test_new_list() -> None:
    code, out = _run("new", "--list")
    assert code == 0, out
    assert template_names() == ["blog", "shop", "team"]
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["blog", "shop", "team"]
    assert "authors, posts, comments" in lines[0]


def test_new_template_imports_it(tmp_path: Path) -> None:
    code, out = _run("new", "--template", "blog", "--dir", str(tmp_path))
    assert code == 0, out
    assert "Imported 3 collection(s): authors, posts, comments" in out
    got = _collections(tmp_path)
    assert got["posts"]["id"] == "pbc_blog_posts"
    assert got["posts"]["rules"]["listRule"] == "published = true || author = @request.auth.id"
    # running it again is harmless (collections are matched by id)
    code, out = _run("new", "-t", "blog", "--dir", str(tmp_path))
    assert code == 0, out


def test_every_template_imports_together(tmp_path: Path) -> None:
    for name in template_names():
        code, out = _run("new", "--template", name, "--dir", str(tmp_path))
        assert code == 0, (name, out)
    got = _collections(tmp_path)
    assert {"authors", "posts", "comments", "customers", "products", "orders", "settings",
            "projects", "tasks", "reports", "feedback", "documents"} <= set(got)
    assert got["users"]["rules"]["manageRule"] == '@request.auth.role = "admin"'


def test_new_errors(tmp_path: Path) -> None:
    code, out = _run("new", "--template", "nope", "--dir", str(tmp_path))
    assert code == 2 and "unknown template 'nope'" in out and "blog, shop, team" in out
    code, out = _run("new", "--dir", str(tmp_path))
    assert code == 2 and "missing --template" in out


def test_import_body_and_bare_array(tmp_path: Path) -> None:
    body = tmp_path / "shop.json"
    body.write_text(json.dumps({"collections": load_template("shop")}))
    code, out = _run("import", str(body), "--dir", str(tmp_path / "a"))
    assert code == 0, out
    assert "Imported 3 collection(s): customers, products, orders" in out
    assert _collections(tmp_path / "a")["orders"]["rules"]["listRule"] == "customer = @request.auth.id"
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(load_template("shop")))
    code, out = _run("import", str(bare), "--dir", str(tmp_path / "b"))
    assert code == 0, out
    assert "products" in _collections(tmp_path / "b")


def test_import_delete_missing(tmp_path: Path) -> None:
    assert _run("new", "-t", "shop", "--dir", str(tmp_path))[0] == 0
    only = tmp_path / "only.json"
    only.write_text(json.dumps({"collections": load_template("shop")[:1]}))
    code, out = _run("import", str(only), "--delete-missing", "--dir", str(tmp_path))
    assert code == 0, out
    got = _collections(tmp_path)
    assert "customers" in got and "products" not in got and "orders" not in got
    assert "_superusers" in got  # system collections stay


def test_import_delete_missing_referenced_collections(tmp_path: Path) -> None:
    assert _run("new", "-t", "blog", "--dir", str(tmp_path))[0] == 0
    only = tmp_path / "only.json"
    only.write_text(json.dumps({"collections": load_template("blog")[:1]}))
    code, out = _run("import", str(only), "--delete-missing", "--dir", str(tmp_path))
    assert code == 0, out
    got = _collections(tmp_path)
    assert "authors" in got and "posts" not in got and "comments" not in got


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    items = load_template("blog")
    items[2] = {**items[2], "listRule": "nofield = 1"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"collections": items}))
    code, out = _run("import", str(bad), "--dir", str(tmp_path))
    assert code == 1
    assert "validation_collections_import_failure" in out and "comments" in out
    assert "authors" not in _collections(tmp_path)


@pytest.mark.parametrize("content", ["{not json", "{}", "[]", '{"collections": [1]}'])
def test_import_rejects_malformed_files(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, out = _run("import", str(bad), "--dir", str(tmp_path))
    assert code == 2 and "cannot read" in out


def test_import_missing_file(tmp_path: Path) -> None:
    code, out = _run("import", str(tmp_path / "missing.json"), "--dir", str(tmp_path))
    assert code == 2 and "does not exist" in out


def test_new_on_postgres(tmp_path: Path, pg_base_url: str) -> None:
    from tests.pg_server import create_database, drop_database

    url = create_database(pg_base_url)
    try:
        code, out = _run("new", "--template", "team", "--dir", str(tmp_path), "--db", url)
        assert code == 0, out
        got = _collections(tmp_path, url)
        assert got["documents"]["rules"]["listRule"] == (
            '@request.auth.id != "" && department = @request.auth.department')
    finally:
        drop_database(url)
