"""The ``keepbase`` command: serve, superuser. Options derive from the Config fields."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..core.config import ConfigError, load_config


def _config(**flags: Any) -> Any:
    try:
        return load_config(flags)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _common(fn: Any) -> Any:
    fn = click.option("--dir", "dir_", default=None, help="Data folder (KEEPBASE_DIR). Default ./kb_data.")(fn)
    fn = click.option("--db", default=None, help="PostgreSQL URL (KEEPBASE_DB). Default: SQLite in --dir.")(fn)
    return fn


@click.group()
def main() -> None:
    """keepbase: a backend that speaks the PocketBase HTTP API."""


@main.command()
@click.option("--http", default=None, help="HOST:PORT to listen on (KEEPBASE_HTTP). Default 127.0.0.1:8090.")
@click.option("--sqlite-sync", default=None, type=click.Choice(["full", "normal"]),
              help="SQLite synchronous mode (KEEPBASE_SQLITE_SYNC).")
@click.option("--dev", is_flag=True, default=None, help="Verbose logging.")
@click.option("--hooks", "hooks_dir", default=None, type=click.Path(exists=True, file_okay=False),
              help="Folder of hooks files: each *.py defines setup(app).")
@_common
def serve(http: str | None, sqlite_sync: str | None, dev: bool | None, hooks_dir: str | None,
          dir_: str | None, db: str | None) -> None:
    """Start the web server."""
    import logging

    import uvicorn

    from ..app import create_app

    cfg = _config(http=http, sqlite_sync=sqlite_sync, dev=dev, dir=dir_, db=db)
    logging.basicConfig(level=logging.DEBUG if cfg.dev else logging.INFO)
    app = create_app(cfg)
    if hooks_dir:
        from ..app import HooksError

        try:
            names = app.load_hooks(hooks_dir)
        except HooksError as exc:
            app.close()
            raise click.ClickException(f"cannot load hooks: {exc}") from exc
        click.echo(f"hooks: {', '.join(names) or 'none'} from {hooks_dir}")
    base = f"http://{cfg.http}"
    click.echo(f"keepbase server started at {base}\n├─ REST API:  {base}/api/\n└─ Dashboard: {base}/_/")
    click.echo(f"storage: {'PostgreSQL' if cfg.is_postgres else 'SQLite in ' + cfg.dir}")
    try:
        uvicorn.run(app.asgi, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
                    http="httptools" if _has("httptools") else "h11", loop="uvloop" if _has("uvloop") else "asyncio")
    finally:
        app.close()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@main.group()
def superuser() -> None:
    """Manage superusers."""


def _su_app(dir_: str | None, db: str | None) -> Any:
    from ..app import create_app

    return create_app(_config(dir=dir_, db=db))


def _save_superuser(dir_: str | None, db: str | None, save: Any, email: str, password: str) -> None:
    from ..core.errors import ApiError

    app = _su_app(dir_, db)
    try:
        save(app, email, password)
    except ApiError as exc:
        click.echo(f"Error: {exc.to_dict()}", err=True)
        sys.exit(1)
    finally:
        app.close()
    click.echo(f"Successfully saved superuser {email!r}!")


@superuser.command("upsert")
@click.argument("email")
@click.argument("password")
@_common
def su_upsert(email: str, password: str, dir_: str | None, db: str | None) -> None:
    """Create or update the superuser EMAIL with PASSWORD."""
    _save_superuser(dir_, db, lambda app, e, p: app.upsert_superuser(e, p), email, password)


@superuser.command("create")
@click.argument("email")
@click.argument("password")
@_common
def su_create(email: str, password: str, dir_: str | None, db: str | None) -> None:
    """Create the superuser EMAIL (fails if it exists)."""
    _save_superuser(dir_, db, lambda app, e, p: app.create_superuser(e, p), email, password)


@superuser.command("delete")
@click.argument("email")
@_common
def su_delete(email: str, dir_: str | None, db: str | None) -> None:
    """Delete the superuser EMAIL."""
    app = _su_app(dir_, db)
    try:
        found = app.delete_superuser(email)
    finally:
        app.close()
    if not found:
        click.echo(f"Error: superuser {email!r} not found", err=True)
        sys.exit(1)
    click.echo(f"Successfully deleted superuser {email!r}!")


from . import templates as _templates  # noqa: E402, F401  (registers the import/new commands)
