"""The ``keepbase`` command: serve, superuser, import, new. Options derive from the Config fields."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..core.config import ConfigError, load_config
from .tls_options import TlsOptions, plan_https, tls_options


def _config(**flags: Any) -> Any:
    try:
        return load_config(flags)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)  # one line, no usage text: the message names the setting
        sys.exit(2)


def _common(fn: Any) -> Any:
    fn = click.option("--dir", "dir_", default=None, help="Data folder (KEEPBASE_DIR). Default ./kb_data.")(fn)
    fn = click.option("--db", default=None, help="PostgreSQL URL (KEEPBASE_DB). Default: SQLite in --dir.")(fn)
    return fn


@click.group()
@click.version_option(package_name="keepbase", prog_name="keepbase", message="%(prog)s %(version)s")
def main() -> None:
    """keepbase: a backend that speaks the PocketBase HTTP API."""


@main.command()
@click.option("--http", default=None, help="HOST:PORT to listen on (KEEPBASE_HTTP). Default 127.0.0.1:8090.")
@click.option("--sqlite-sync", default=None, type=click.Choice(["full", "normal"]),
              help="SQLite synchronous mode (KEEPBASE_SQLITE_SYNC).")
@click.option("--dev", is_flag=True, default=None, help="Verbose logging.")
@click.option("--debug", is_flag=True, default=False, help="Print tracebacks of start-up failures.")
@click.option("--shutdown-timeout", type=int, default=None,
              help="Seconds in-flight requests get after SIGTERM/Ctrl-C (KEEPBASE_SHUTDOWN_TIMEOUT). Default 10.")
@click.option("--log-format", default=None, type=click.Choice(["text", "json"]),
              help="Format of the access log and server log lines (KEEPBASE_LOG_FORMAT). Default text.")
@click.option("--access-log/--no-access-log", default=None,
              help="One line per request on stdout (KEEPBASE_ACCESS_LOG). Default on.")
@click.option("--hooks", "hooks_dir", default=None, type=click.Path(exists=True, file_okay=False),
              help="Folder of hooks files: each *.py defines setup(app).")
@click.option("--encryptionEnv", "encryption_env", default=None, metavar="VAR",
              help="Name of an environment variable holding a 32-character key that encrypts the stored "
                   "settings' secrets (KEEPBASE_ENCRYPTION_ENV).")
@_common
@tls_options
def serve(http: str | None, sqlite_sync: str | None, dev: bool | None, debug: bool, shutdown_timeout: int | None,
          log_format: str | None, access_log: bool | None, hooks_dir: str | None, encryption_env: str | None,
          dir_: str | None, db: str | None, tls: TlsOptions) -> None:
    """Start the web server; with DOMAINS, over HTTPS with certificates from Let's Encrypt."""
    from .serve import exit_now, run_serve

    cfg = _config(http=http, sqlite_sync=sqlite_sync, dev=dev, dir=dir_, db=db, shutdown_timeout=shutdown_timeout,
                  log_format=log_format, access_log=access_log, encryption_env=encryption_env)
    try:
        cfg, https_plan = plan_https(cfg, tls, http_given=http is not None)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    exit_now(run_serve(cfg, hooks_dir, debug, https_plan))


@main.group()
def superuser() -> None:
    """Manage superusers."""


def _run_op(dir_: str | None, db: str | None, op: str, args: dict[str, Any]) -> None:
    from .handoff import run_operation

    code, message = run_operation(_config(dir=dir_, db=db), op, args)
    click.echo(message, err=bool(code))
    if code:
        sys.exit(code)


@superuser.command("upsert")
@click.argument("email")
@click.argument("password")
@_common
def su_upsert(email: str, password: str, dir_: str | None, db: str | None) -> None:
    """Create or update the superuser EMAIL with PASSWORD."""
    _run_op(dir_, db, "superuser_upsert", {"email": email, "password": password})


@superuser.command("create")
@click.argument("email")
@click.argument("password")
@_common
def su_create(email: str, password: str, dir_: str | None, db: str | None) -> None:
    """Create the superuser EMAIL (fails if it exists)."""
    _run_op(dir_, db, "superuser_create", {"email": email, "password": password})


@superuser.command("delete")
@click.argument("email")
@_common
def su_delete(email: str, dir_: str | None, db: str | None) -> None:
    """Delete the superuser EMAIL."""
    _run_op(dir_, db, "superuser_delete", {"email": email})


from . import audit as _audit  # noqa: E402, F401  (registers the audit commands)
from . import keys as _keys  # noqa: E402, F401  (registers the keys commands)
from . import templates as _templates  # noqa: E402, F401  (registers the import/new commands)
