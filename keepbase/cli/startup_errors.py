"""Start-up failures as one line an operator can act on: what went wrong, and what to change.

``explain(exc, config)`` knows the usual causes (a busy port, a data folder that cannot be
written, PostgreSQL refusing the connection, a PocketBase folder given to ``--dir`` ...); any
other exception becomes its type and message with a hint to run with ``--debug``.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ..core.config import Config
from ..core.errors import StartupError


def _pg_target(url: str) -> str:
    try:
        u = make_url(url.replace("postgres://", "postgresql://", 1))
    except Exception:
        return "the --db URL"
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"  # never the password


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else text


def _postgres(exc: BaseException, cfg: Config) -> str | None:
    raw = str(getattr(exc, "orig", None) or exc)
    text = raw.lower()
    target = _pg_target(cfg.db)
    if "password authentication failed" in text or "no password supplied" in text:
        return (f"PostgreSQL at {target} rejected the user name or password in --db / KEEPBASE_DB "
                f"({_first_line(raw)})")
    if "does not exist" in text and "database" in text:
        db = target.rsplit("/", 1)[-1]
        return (f"the PostgreSQL database {db!r} does not exist on {target.rsplit('/', 1)[0]}; "
                f"create it (createdb {db}) or fix --db / KEEPBASE_DB")
    if "permission denied" in text:
        return (f"the PostgreSQL user in --db may not create keepbase's tables in {target} ({_first_line(raw)}); "
                "use the database's owner or grant it: GRANT CREATE ON SCHEMA public TO <user>")
    if "role" in text and "does not exist" in text:
        return f"PostgreSQL at {target}: {_first_line(raw)}; fix the user name in --db / KEEPBASE_DB"
    if any(s in text for s in ("connection refused", "could not connect", "timeout expired",
                               "connection failed", "could not translate host", "name or service not known",
                               "server closed the connection", "no route to host")):
        return (f"cannot connect to PostgreSQL at {target} ({_first_line(raw)}); is the server running and "
                "reachable? Check --db / KEEPBASE_DB")
    return None


def _folder(exc: OSError | sqlite3.Error, cfg: Config) -> str | None:
    folder = Path(cfg.dir).resolve()
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code == errno.ENOSPC or "disk is full" in text:
        return f"the disk of the data folder {folder} is full; free some space and start again"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in text or "read-only" in text \
            or "unable to open database" in text:
        why = "it is on a read-only file system" if code == errno.EROFS or "read-only" in text else "permission denied"
        return (f"the data folder {folder} is not writable ({why}); fix its permissions or mount, "
                "or choose another --dir / KEEPBASE_DIR")
    if "no such column: _collections." in text or "no such table: _collections" in text \
            or "no such column: _params." in text:
        return (f"the data folder {folder} holds a database keepbase cannot open (a PocketBase pb_data "
                "folder?); keepbase keeps its own data folder: start with an empty --dir and import the "
                "collections with `keepbase import`")
    if "file is not a database" in text or "malformed" in text:
        return f"{folder / 'data.db'} is not a valid SQLite database ({exc}); restore it from a backup"
    return None


def explain_bind(exc: OSError, host: str, port: int) -> str:
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: unknown host {host!r}; fix --http / KEEPBASE_HTTP"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on {where}: the port is already in use by another program; stop it or "
                "choose another --http / KEEPBASE_HTTP")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"cannot listen on {where}: permission denied (ports below 1024 need root or "
                "CAP_NET_BIND_SERVICE); choose another --http / KEEPBASE_HTTP")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host} is not an address of this machine; fix --http / KEEPBASE_HTTP"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def explain(exc: BaseException, cfg: Config) -> str:
    """One line for a failure while building the app (or for the driver error it wraps)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        found = _known(seen, cfg)
        if found is not None:
            return found
        seen = seen.__cause__ or seen.__context__
    msg = _first_line(str(exc)) or type(exc).__name__
    return f"{type(exc).__name__}: {msg} (run `keepbase serve --debug` for the details)"


def _known(exc: BaseException, cfg: Config) -> str | None:
    found: str | None = None
    if isinstance(exc, StartupError):
        return str(exc)
    if isinstance(exc, DBAPIError):
        orig: Any = exc.orig
        if isinstance(orig, sqlite3.Error):
            found = _folder(orig, cfg)
        elif cfg.is_postgres:
            found = _postgres(exc, cfg)
    elif isinstance(exc, (sqlite3.Error, OSError)):
        found = _folder(exc, cfg)
    elif cfg.is_postgres and type(exc).__module__.startswith("psycopg"):
        found = _postgres(exc, cfg)
    return found
