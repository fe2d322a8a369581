"""Run a data-changing command without ever becoming a second writer.

SQLite: take the data folder's lock and work on the folder directly; when a server holds the
lock, send the operation to it over its control socket instead, so the server's one writer does
the write and its caches see the change at once. A lock held by another command (or a server
still starting) is waited for a few seconds. PostgreSQL: write directly (any number of nodes may),
then wake the running nodes so they reload the schema at once.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from ..core.config import Config
from .control import ControlError, call
from .folder_lock import FolderBusy, FolderLock
from .operations import OPERATIONS
from .startup_errors import explain

_WAIT = 15.0  # seconds to wait for a starting server's control socket or another command
_SCHEMA_OPS = {"import_collections"}


def run_operation(cfg: Config, op: str, args: dict[str, Any]) -> tuple[int, str]:
    """(exit code, message) of ``op`` on the data of ``cfg``."""
    if cfg.is_postgres:
        return _direct(cfg, op, args, None)
    folder = Path(cfg.dir)
    deadline = time.monotonic() + _WAIT
    while True:
        try:
            lock = FolderLock.acquire(folder, "command")
        except FolderBusy as busy:
            control = busy.holder.get("control")
            if busy.holder.get("role") == "serve" and control:
                try:
                    return call(Path(control), op, args)
                except ControlError as exc:
                    if time.monotonic() > deadline:
                        return 1, f"Error: {busy}, and it does not answer: {exc}"
            elif time.monotonic() > deadline:
                return 1, f"Error: {busy}; try again when it has finished"
            time.sleep(0.2)
            continue
        except OSError as exc:
            return 1, f"Error: {explain(exc, cfg)}"
        try:
            return _direct(cfg, op, args, lock)
        finally:
            lock.release()


def _direct(cfg: Config, op: str, args: dict[str, Any], lock: FolderLock | None) -> tuple[int, str]:
    from ..app import create_app

    try:
        app = create_app(cfg)
    except Exception as exc:
        return 1, f"Error: {explain(exc, cfg)}"
    try:
        code, message = OPERATIONS[op](app, args)
        if code == 0 and op in _SCHEMA_OPS and cfg.is_postgres:
            announce_schema_change(app)
        return code, message
    finally:
        app.close()


def announce_schema_change(app: Any) -> None:
    """Tell running nodes (through the realtime broker's channel) to reload the collections now."""
    message = {"type": "collections"}
    node = "cli-" + secrets.token_hex(6)
    if app.config.redis_url:
        import redis

        from ..realtime.redis_broker import encode as redis_encode

        client = redis.Redis.from_url(app.config.redis_url)
        try:
            client.publish(app.realtime.broker.channel, redis_encode(node, message))
        finally:
            client.close()
    else:
        from ..realtime.build import notify_with
        from ..realtime.pg_broker import CHANNEL
        from ..realtime.pg_broker import encode as pg_encode

        notify_with(app.db.writer)(CHANNEL, pg_encode(node, message))
