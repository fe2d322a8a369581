"""``keepbase serve``: start, announce, stop.

Start: check the settings, take the data folder's lock (SQLite: one server per folder), bind the
socket, build the app, load hooks, and only then announce the address actually bound. Any failure
is one line on stderr and exit code 1 (``--debug`` adds the traceback).

Stop (SIGTERM or Ctrl-C): stop accepting connections, end every realtime stream (clients reconnect
elsewhere), give in-flight requests ``--shutdown-timeout`` seconds, stop background services, flush
the request-log queue and pending mails, close the writer connection last, exit 0. A second
signal ends the process at once with one line and exit code 1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
import uvicorn

from ..core.config import Config
from .control import ControlServer, socket_path
from .folder_lock import FolderBusy, FolderLock
from .logging_setup import configure_logging, quiet_logs
from .startup_errors import explain, explain_bind

if TYPE_CHECKING:
    from .tls import HttpsRuntime
    from .tls_options import HttpsPlan

log = logging.getLogger("keepbase")


class StartupFailed(Exception):
    """Start-up stopped; the message is the one line to print."""


def fail(message: str) -> StartupFailed:
    return StartupFailed(message)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on HOST:PORT (IPv6 when HOST is an IPv6 address); OSError on failure."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, stype, proto, _name, addr = infos[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def bound_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Server(uvicorn.Server):
    """uvicorn's server with keepbase's signals, announcement and shutdown order."""

    def __init__(self, config: uvicorn.Config, app: Any, address: str, control: ControlServer | None,
                 on_started: Any) -> None:
        super().__init__(config)
        self.app = app
        self.address = address
        self.control = control
        self.on_started = on_started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if self.should_exit:  # the second signal: end now, quietly
            os.write(2, b"keepbase: second signal, stopping at once (in-flight requests are cut off)\n")
            os._exit(1)
        self.should_exit = True
        os.write(2, f"keepbase: {signal.Signals(sig).name} received, shutting down (send it again to stop at "
                    f"once; in-flight requests get {self.config.timeout_graceful_shutdown} s)\n".encode())

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.control is not None:
            try:
                await self.control.start()
            except OSError as exc:
                log.warning("control socket %s unavailable (%s): commands on this folder cannot reach the server",
                            self.control.path, exc.strerror or exc)
                self.control = None
        await super().startup(sockets=sockets)
        if not self.should_exit:
            # no await between accepting and this: the announcement precedes any request's log line
            self.on_started(self.address)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # End the realtime streams first: they never finish on their own, and clients reconnect to
        # another node. Then uvicorn stops listening and waits for the in-flight requests.
        self.app.realtime.close_streams()
        if self.control is not None:
            await self.control.close()
        await super().shutdown(sockets=sockets)


def _interrupt(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _check_writable(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".keepbase-write-check-{os.getpid()}"
    with open(probe, "wb") as fh:
        fh.write(b"ok")
    probe.unlink()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_serve(cfg: Config, hooks_dir: str | None, debug: bool,
              https_plan: HttpsPlan | None = None) -> int:
    """Run the server until it is stopped; the exit code. With HTTPS_PLAN, ``cfg.http`` is the HTTPS
    address."""
    configure_logging(cfg, debug)
    lock: FolderLock | None = None
    sock: socket.socket | None = None
    app: Any = None
    https: HttpsRuntime | None = None
    folder = Path(cfg.dir)
    # a stop while starting ends it cleanly (SIGINT too: a shell starting us in the background ignores it)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            if cfg.is_postgres:
                _check_writable(folder)  # files and backups live there
            else:
                lock = FolderLock.acquire(folder, "serve")
                _check_writable(folder)
        except FolderBusy as exc:
            raise fail(f"{exc}; stop it first, or choose another --dir / KEEPBASE_DIR") from exc
        except OSError as exc:
            raise fail(explain(exc, cfg)) from exc
        try:
            sock = bind_socket(cfg.host, cfg.port)
        except OSError as exc:
            raise fail(explain_bind(exc, cfg.host, cfg.port)) from exc
        address = bound_address(sock)
        if https_plan is not None:  # the certificate first: a failure to get one costs no database work
            from .tls import HttpsRuntime, TlsError

            try:
                https = HttpsRuntime.start(https_plan, folder)
            except TlsError as exc:
                raise fail(str(exc)) from exc
        try:
            from ..app import create_app

            with quiet_logs(debug):  # a failure is told in one line below, not by every layer on the way
                app = create_app(cfg)
        except Exception as exc:
            raise fail(explain(exc, cfg)) from exc
        if hooks_dir:
            from ..app import HooksError

            try:
                names = app.load_hooks(hooks_dir)
            except HooksError as exc:
                raise fail(f"cannot load hooks: {exc}") from exc
            click.echo(f"hooks: {', '.join(names) or 'none'} from {hooks_dir}")
        if lock is not None:
            lock.describe(http=address, control=str(socket_path(folder)))
    except StartupFailed as exc:
        if debug and exc.__cause__ is not None:
            import traceback

            traceback.print_exception(exc.__cause__)
        click.echo(f"Error: {exc}", err=True)
        _close(app, sock, lock, https)
        return 1
    except KeyboardInterrupt:
        click.echo("keepbase: stopped while starting", err=True)
        _close(app, sock, lock, https)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    from .first_run import first_run_message

    def announce(addr: str) -> None:
        base = https.base_url(addr) if https is not None else f"http://{addr}"
        click.echo(f"keepbase server started at {base}\n├─ REST API:  {base}/api/\n└─ Dashboard: {base}/_/")
        click.echo(f"storage: {'PostgreSQL' if cfg.is_postgres else 'SQLite in ' + str(folder)}")
        message = first_run_message(app, base)
        if message:
            click.echo(message)
        if https is not None:
            https.watch()  # renewal and reloads, now that the server is up

    control = None if cfg.is_postgres else ControlServer(app, socket_path(folder))
    uv_config = uvicorn.Config(
        https.wrap(app.asgi) if https is not None else app.asgi,
        log_level="warning", access_log=False, lifespan="on",
        timeout_graceful_shutdown=cfg.shutdown_timeout, log_config=None,
        http="httptools" if _has("httptools") else "h11", loop="uvloop" if _has("uvloop") else "asyncio",
        ssl_context_factory=https.context_factory if https is not None else None,
    )
    server = Server(uv_config, app, address, control, announce)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # a signal before our handlers were installed
        pass
    finally:
        _close(app, sock, lock, https)
    click.echo("keepbase: stopped", err=True)
    return 0


def exit_now(code: int) -> None:
    """Leave without waiting for worker threads: a request cut off at the end of the grace period may
    still run in one (a hook sleeping, say), and everything keepbase owns is flushed and closed."""
    import atexit

    atexit._run_exitfuncs()  # what a normal exit runs (the access log's last lines, logging's flush)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _close(app: Any, sock: socket.socket | None, lock: FolderLock | None,
           https: HttpsRuntime | None = None) -> None:
    """Close in order: the listening sockets, the app (log queue and mails flushed, writer last), the lock."""
    if sock is not None:
        sock.close()
    if https is not None:  # the plain-HTTP listener and the certificate watcher
        https.close()
    if app is not None:
        try:
            app.close()
        except Exception as exc:  # a failing flush must not hide the others, nor print a traceback
            print(f"keepbase: while closing: {type(exc).__name__}: {exc}", file=sys.stderr)
    if lock is not None:
        lock.release()


