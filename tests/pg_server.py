"""Throwaway PostgreSQL server for the test suite.

``ensure_postgres()`` returns a SQLAlchemy URL for a PostgreSQL server:

* if ``KEEPBASE_TEST_PG_URL`` is set, that URL is used as is (a bare
  ``postgres://`` / ``postgresql://`` scheme is pointed at psycopg 3);
* otherwise a private cluster is created from Debian's ``postgresql`` package
  (``/usr/lib/postgresql/<highest version>/bin``) in a temporary directory,
  listening on 127.0.0.1 on a free port, and stopped/removed at interpreter
  exit.  At most one server is started per process.

``create_database()`` / ``drop_database()`` make and remove scratch databases
on such a server.  Nothing here imports pytest, so the module can be used from
conftest files, scripts and benchmarks alike.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = ["ensure_postgres", "create_database", "drop_database", "PG_URL_ENV", "StoppableCluster"]

PG_URL_ENV = "KEEPBASE_TEST_PG_URL"
PG_USER = "postgres"  # OS user that runs the server when we are root
DB_SUPERUSER = "postgres"  # database superuser created by initdb

_INSTALL_HINT = (
    "run `scripts/install` (it installs Debian's `postgresql` package) or set KEEPBASE_TEST_PG_URL"
)

_lock = threading.Lock()
_url: str | None = None
_server: _Server | None = None


@dataclass
class _Server:
    bindir: Path
    root: Path  # temp dir: data/, socket dir, log
    datadir: Path
    port: int
    owner_pid: int
    run_as: str | None  # OS user to run pg binaries as, None = current user

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{DB_SUPERUSER}@127.0.0.1:{self.port}/postgres"


# --------------------------------------------------------------------------- public API


def ensure_postgres() -> str:
    """Return a SQLAlchemy URL of a running PostgreSQL server (see module doc)."""
    global _url, _server
    env = os.environ.get(PG_URL_ENV)
    if env:
        return _normalize_url(env)
    with _lock:
        if _url is None:
            _server = _start_server()
            _url = _server.url
        return _url


def create_database(base_url: str, name: str | None = None) -> str:
    """Create a fresh database on the server of ``base_url`` and return its URL."""
    if name is None:
        name = "kb_test_" + secrets.token_hex(6)
    with _admin_connect(base_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(sql.Identifier(name))
        )
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database named by ``url`` (disconnecting its clients); no error if missing."""
    name = make_url(url).database
    if not name:
        raise ValueError(f"URL has no database name: {make_url(url)!r}")
    with _admin_connect(url) as conn:
        ident = sql.Identifier(name)
        if conn.info.server_version >= 130000:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        else:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


# --------------------------------------------------------------------------- helpers


def _normalize_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgres", "postgresql"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _admin_connect(url: str, maintenance_db: str = "postgres") -> psycopg.Connection:
    """Autocommit psycopg connection to the maintenance database of ``url``'s server."""
    u: URL = make_url(url)
    kwargs: dict[str, object] = {"dbname": maintenance_db, "autocommit": True, "connect_timeout": 10}
    if u.host:
        kwargs["host"] = u.host
    if u.port:
        kwargs["port"] = u.port
    if u.username:
        kwargs["user"] = u.username
    if u.password is not None:
        kwargs["password"] = u.password
    for key, value in u.query.items():  # e.g. sslmode=..., host=/socket/dir
        kwargs[key] = value if isinstance(value, str) else value[-1]
    return psycopg.connect(**kwargs)  # type: ignore[arg-type]


def _version_key(bindir: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([0-9.]+)/bin", bindir)
    return tuple(int(p) for p in m.group(1).split(".") if p) if m else (0,)


def _find_bindir() -> Path:
    override = os.environ.get("KEEPBASE_TEST_PG_BINDIR")
    if override:
        candidates = [override]
    else:
        candidates = sorted(
            (os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
            key=_version_key,
            reverse=True,
        )
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(os.path.dirname(on_path))
    for d in candidates:
        if all(os.access(os.path.join(d, exe), os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return Path(d)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin "
        f"or on PATH; {_INSTALL_HINT}."
    )


def _ensure_os_user() -> str | None:
    """Return the OS user to run the server as (None: the current, non-root user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        res = (
            subprocess.run(
                [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/bin/sh", PG_USER],
                capture_output=True,
                text=True,
            )
            if useradd
            else None
        )
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            detail = res.stderr.strip() if res else "useradd not found"
            raise RuntimeError(
                f"Running as root and there is no '{PG_USER}' OS user to run PostgreSQL as "
                f"(creating it failed: {detail}); {_INSTALL_HINT}."
            ) from None
    return PG_USER


def _temp_parent(run_as: str | None) -> str | None:
    """Parent for the cluster dir: $TMPDIR unless another user could not traverse it."""
    parent = Path(tempfile.gettempdir()).resolve()
    if run_as is None:
        return None
    for d in (parent, *parent.parents):
        if not os.stat(d).st_mode & 0o001:
            return "/tmp"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(run_as: str | None, argv: list[str], cwd: Path, log: Path, timeout: float = 120) -> None:
    if run_as is not None:
        runuser = shutil.which("runuser")
        if runuser:
            argv = [runuser, "-u", run_as, "--", *argv]
        else:
            pw = pwd.getpwnam(run_as)
            setpriv = shutil.which("setpriv")
            if not setpriv:
                raise RuntimeError("neither runuser nor setpriv is available to drop root privileges")
            argv = [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", *argv]
    env = dict(os.environ, LC_ALL="C", LANG="C")
    for var in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGOPTIONS"):
        env.pop(var, None)
    with open(log, "ab") as out:
        res = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    if res.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"command failed ({res.returncode}): {' '.join(argv)}\n--- {log} ---\n{tail}")


def _start_server() -> _Server:
    bindir = _find_bindir()
    run_as = _ensure_os_user()
    root = Path(tempfile.mkdtemp(prefix="keepbase-pg-", dir=_temp_parent(run_as)))
    try:
        if run_as is not None:
            pw = pwd.getpwnam(run_as)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o700)
        datadir = root / "data"
        log = root / "setup.log"
        if run_as is not None:
            log.touch()
            os.chown(log, pw.pw_uid, pw.pw_gid)
        _run(
            run_as,
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                DB_SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=root,
            log=log,
        )
        last_err: Exception | None = None
        for _attempt in range(5):  # the free port may be taken between probe and bind
            port = _free_port()
            conf = "\n".join(
                [
                    "",
                    "# keepbase test server",
                    "listen_addresses = '127.0.0.1'",
                    f"port = {port}",
                    f"unix_socket_directories = '{root}'",
                    "max_connections = 200",
                    "fsync = off",
                    "synchronous_commit = off",
                    "full_page_writes = off",
                    "logging_collector = off",
                    "",
                ]
            )
            with open(datadir / "postgresql.conf", "a") as f:
                f.write(conf)
            server = _Server(bindir, root, datadir, port, os.getpid(), run_as)
            try:
                _run(
                    run_as,
                    [
                        str(bindir / "pg_ctl"),
                        "start",
                        "-w",
                        "-t",
                        "60",
                        "-D",
                        str(datadir),
                        "-l",
                        str(root / "postgres.log"),
                    ],
                    cwd=root,
                    log=log,
                )
            except RuntimeError as e:
                last_err = e
                continue
            atexit.register(_stop_server, server)
            return server
        raise RuntimeError(f"could not start PostgreSQL test server: {last_err}")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _stop_server(server: _Server) -> None:
    if os.getpid() != server.owner_pid:  # forked child: the server belongs to the parent
        return
    try:
        _run(
            server.run_as,
            [str(server.bindir / "pg_ctl"), "stop", "-m", "immediate", "-w", "-D", str(server.datadir)],
            cwd=server.root,
            log=server.root / "setup.log",
            timeout=60,
        )
    except Exception:
        pass
    shutil.rmtree(server.root, ignore_errors=True)


# --------------------------------------------------------------------------- a cluster a test may stop


class StoppableCluster:
    """A private PostgreSQL cluster of its own (never the shared session one), for outage tests:
    ``stop()`` shuts it down (``pg_ctl stop -m fast``: clients see their connections end), and
    ``start()`` brings it back on the same port with the same data. ``close()`` removes it.

    >>> cluster = StoppableCluster.create()
    >>> url = create_database(cluster.url)
    >>> cluster.stop(); cluster.start()
    """

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.running = True

    @classmethod
    def create(cls) -> StoppableCluster:
        return cls(_start_server())

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def _ctl(self, *args: str) -> None:
        s = self.server
        _run(s.run_as, [str(s.bindir / "pg_ctl"), *args, "-D", str(s.datadir)], cwd=s.root,
             log=s.root / "setup.log", timeout=90)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode, "-w", "-t", "60")
        self.running = False

    def start(self) -> None:
        self._ctl("start", "-w", "-t", "60", "-l", str(self.server.root / "postgres.log"))
        self.running = True

    def close(self) -> None:
        _stop_server(self.server)  # also registered at exit; a second call finds nothing to stop
        self.running = False
