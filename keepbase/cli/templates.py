"""``keepbase import FILE`` and ``keepbase new --template NAME``: load collection schemas.

A schema file is the body of ``PUT /api/collections/import`` (``{"collections": [...]}``) or a
bare array of collection objects (what the PocketBase dashboard exports). Shipped templates
live in ``keepbase/templates/*.json`` (package data).
"""

from __future__ import annotations

import sys
from importlib import resources
from typing import Any

import click
import orjson

from . import _common, _config, main


def template_names() -> list[str]:
    """The names of the shipped templates (``blog``, ``shop``, ...), sorted."""
    folder = resources.files("keepbase") / "templates"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_template(name: str) -> list[dict[str, Any]]:
    """The collection objects of the shipped template ``name``; KeyError if there is none."""
    if name not in template_names():
        raise KeyError(name)
    raw = (resources.files("keepbase") / "templates" / f"{name}.json").read_bytes()
    return collections_of(orjson.loads(raw))


def collections_of(data: Any) -> list[dict[str, Any]]:
    """The collection list of an import body or a bare array; ValueError if it is neither."""
    items = data.get("collections") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ValueError('expected {"collections": [...]} or a non-empty array of collection objects')
    return items


def _import(items: list[dict[str, Any]], dir_: str | None, db: str | None, delete_missing: bool) -> None:
    from .handoff import run_operation

    code, message = run_operation(_config(dir=dir_, db=db), "import_collections",
                                  {"collections": items, "delete_missing": delete_missing})
    click.echo(message, err=bool(code))
    if code:
        sys.exit(code)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--delete-missing", is_flag=True, default=False,
              help="Delete collections and fields that are not in FILE (system ones are kept).")
@_common
def import_cmd(file: str, delete_missing: bool, dir_: str | None, db: str | None) -> None:
    """Import the collections JSON FILE (the body of PUT /api/collections/import)."""
    try:
        with open(file, "rb") as fh:
            items = collections_of(orjson.loads(fh.read()))
    except (OSError, orjson.JSONDecodeError, ValueError) as exc:
        raise click.UsageError(f"cannot read {file}: {exc}") from exc
    _import(items, dir_, db, delete_missing)


@main.command("new")
@click.option("--template", "-t", "template", default=None, help="Name of a shipped template (see --list).")
@click.option("--list", "list_", is_flag=True, default=False, help="List the shipped templates and exit.")
@_common
def new(template: str | None, list_: bool, dir_: str | None, db: str | None) -> None:
    """Create the collections of a shipped schema template."""
    if list_:
        for name in template_names():
            names = ", ".join(str(c.get("name")) for c in load_template(name))
            click.echo(f"{name:<8} {names}")
        return
    if not template:
        raise click.UsageError("missing --template NAME (use --list to see the templates)")
    try:
        items = load_template(template)
    except KeyError as exc:
        raise click.UsageError(
            f"unknown template {template!r}; choose one of: {', '.join(template_names())}") from exc
    _import(items, dir_, db, delete_missing=False)
