"""The shipped template files: valid import bodies with consistent relation ids."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from keepbase.cli.templates import template_names

RULES = ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")


@pytest.mark.parametrize("name", ["blog", "shop", "team"])
def test_template_file_is_an_import_body(name: str) -> None:
    assert name in template_names()
    raw = (resources.files("keepbase") / "templates" / f"{name}.json").read_text()
    body = json.loads(raw)
    assert list(body) == ["collections"]
    items = body["collections"]
    ids = [c["id"] for c in items]
    assert len(set(ids)) == len(ids) and len({c["name"] for c in items}) == len(items)
    seen: set[str] = set()
    for c in items:
        assert c["type"] in ("base", "auth")
        assert all(rule in c for rule in RULES), c["name"]
        for f in c["fields"]:
            if f["type"] == "relation":
                # relations point at a collection of the same file, listed earlier (or itself)
                assert f["collectionId"] in seen | {c["id"]}, (c["name"], f["name"])
        seen.add(c["id"])
    assert any(c["type"] == "auth" for c in items)
