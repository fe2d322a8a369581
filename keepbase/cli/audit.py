"""``keepbase audit verify``: walk the hash chain of the ``_audit`` trail (``store.audit``).

Read-only, so it opens the database directly, even while a server runs on it. Exit code 0 with
"N entries, chain intact" (and the head hash, to keep somewhere else: a later run that prints an
older head means the newest entries were removed); 1 with the first broken link; 2 when there is
no database to read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import _common, _config, main


@main.group()
def audit() -> None:
    """The tamper-evident audit trail (_audit)."""


@audit.command("verify")
@_common
def verify(dir_: str | None, db: str | None) -> None:
    """Check that no audit entry was changed or removed; report the first broken link."""
    from sqlalchemy import inspect

    from ..store.audit import verify_chain
    from ..store.db import Database

    cfg = _config(dir=dir_, db=db)
    sqlite_path = None if cfg.db else Path(cfg.dir) / "data.db"
    if sqlite_path is not None and not sqlite_path.is_file():
        click.echo(f"Error: no database at {sqlite_path}", err=True)
        sys.exit(2)
    database = Database(sqlite_path=sqlite_path, pg_url=cfg.db, readers=1, pool_size=1)
    try:
        with database.read() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("_audit")} \
                if inspect(conn).has_table("_audit") else set()
        if columns and "hash" not in columns:
            click.echo("Error: the audit trail is not chained yet: start keepbase once to seal it", err=True)
            sys.exit(2)
        report = verify_chain(database) if columns else None
    finally:
        database.dispose()
    if report is None:
        click.echo("0 entries, chain intact")
        return
    if report.broken is not None:
        b = report.broken
        click.echo(f"Broken link at entry {report.entries} of the chain: row {b.id} (seq {b.seq}, {b.created}) "
                   f"{b.reason}", err=True)
        sys.exit(1)
    click.echo(f"{report.entries} entries, chain intact")
    click.echo(f"head: {report.head}")
