"""``keepbase keys rotate``: re-encrypt every encrypted value under the newest key.

Online: while a server runs on the data folder (SQLite), each step is sent to it over the control
socket and runs on its one writer (``handoff``); on PostgreSQL it writes directly, like any node.
Each step re-encrypts a few batches, each in its own transaction, and reports what is left, so an
interrupted rotation simply resumes, and values already under the newest key are never touched.
"""

from __future__ import annotations

import contextlib
import sys

import click
import orjson

from . import _common, _config, main


@main.group()
def keys() -> None:
    """Manage the keys of encrypted fields (docs/security.md)."""


def _step(cfg: object, batch: int) -> dict[str, object]:
    from .handoff import run_operation

    code, message = run_operation(cfg, "keys_rotate", {"batch": batch})  # type: ignore[arg-type]
    if code:
        click.echo(message, err=True)
        sys.exit(code)
    answer: dict[str, object] = orjson.loads(message)
    return answer


@keys.command("rotate")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 100_000),
              help="Records re-encrypted per transaction.")
@_common
def rotate(batch: int, dir_: str | None, db: str | None) -> None:
    """Re-encrypt every encrypted value under the first key of KEEPBASE_ENCRYPTION_KEYS.

    Put the new key first (keep the old ones after it), restart the server, then run this; once
    it reports nothing left, the old keys may be removed. Safe to interrupt and run again."""
    cfg = _config(dir=dir_, db=db)
    first = _step(cfg, 0)
    total = int(str(first["remaining"]))
    if total == 0:
        click.echo(f"Nothing to do: every encrypted value is under the key {first['key']!r}.")
        return
    done = 0
    label = f"Re-encrypting under {first['key']!r}"
    # a bar on a terminal; one line per step otherwise (logs, CI), where a bar would print nothing
    bar = click.progressbar(length=total, label=label, show_pos=True, file=sys.stderr) if sys.stderr.isatty() \
        else None
    with bar if bar is not None else contextlib.nullcontext():
        while True:
            step = _step(cfg, batch)
            rotated, remaining = int(str(step["rotated"])), int(str(step["remaining"]))
            done += rotated
            if bar is not None:
                bar.update(rotated)
            else:
                click.echo(f"{label}: {done}/{done + remaining} record(s)", err=True)
            if remaining == 0:
                break
            if rotated == 0:
                click.echo(f"\nError: {remaining} record(s) could not be re-encrypted", err=True)
                sys.exit(1)
    click.echo(f"Re-encrypted {done} record(s); every encrypted value is under the key {step['key']!r}.")
