"""HTTPS for ``keepbase serve``: the options, the certificate in use, and its renewal.

Three ways to get a certificate, as PocketBase has them and a little more:

* ``keepbase serve example.com www.example.com``: ACME (Let's Encrypt by default). HTTPS on
  0.0.0.0:443, a plain-HTTP listener on 0.0.0.0:80 answering the HTTP-01 challenge and redirecting
  everything else. The certificate is obtained before the server announces itself (a failure is one
  line and exit 1), stored in ``<dir>/tls/``, reused at restart while valid, and renewed in the
  background (30 days before expiry, or with a third of its lifetime left).
* ``--https HOST:PORT --tls-cert FILE --tls-key FILE``: your own certificate; replaced files
  (certbot's renewal, say) are picked up within a minute.
* ``--dev-tls``: a self-signed certificate for localhost, kept in ``<dir>/tls/dev/``.

TLS 1.2 and 1.3 only, forward-secret AEAD ciphers, HSTS on every HTTPS response (``--hsts-max-age``).

Hot swap: uvicorn gets one ``SSLContext`` for its socket; its SNI callback, which OpenSSL runs on
every handshake (with or without SNI), moves the connection to the context of the current
certificate. Swapping the certificate is replacing that reference: new connections get the new
certificate, open ones keep theirs.

Several nodes on one data folder (PostgreSQL): one of them at a time obtains or renews, holding
``tls/renew.lock`` (flock); the others wait for it at start-up, and pick the new file up when they
next look (every minute). Challenge answers are files in the shared folder, so the node the CA
happens to reach on port 80 answers for the node that ordered.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from .acme_client import AcmeFailure, obtain_certificate
from .http_redirect import ASGIApp, Hsts, PlainHttpApp
from .tls_files import StoredCert, TlsFolder, now, read_cert, self_signed, write_private
from .tls_options import HttpsPlan, TlsError

log = logging.getLogger("keepbase.tls")

RETRY_AFTER_FAILURE = 3600.0  # seconds before a failed renewal is tried again
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"  # TLS 1.2; TLS 1.3's suites are all AEAD and forward-secret


def _context(certfile: Path | str, keyfile: Path | str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(["http/1.1"])
    # an encrypted key fails here instead of OpenSSL prompting on the terminal
    ctx.load_cert_chain(certfile, keyfile, password=lambda: b"")
    return ctx


class CertSlot:
    """The SSLContext given to uvicorn, serving whichever certificate was loaded last."""

    def __init__(self, certfile: Path | str, keyfile: Path | str | None = None) -> None:
        self.current = _context(certfile, keyfile)
        self.front = _context(certfile, keyfile)
        self.front.sni_callback = self._pick

    def _pick(self, sslobj: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        current = self.current
        if sslobj.context is not current:
            sslobj.context = current

    def swap(self, certfile: Path | str, keyfile: Path | str | None = None) -> None:
        self.current = _context(certfile, keyfile)  # raises before anything changes when the files are bad


def _stamp(*paths: Path | str) -> tuple[tuple[int, int], ...]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((0, 0))
    return tuple(out)


@contextlib.contextmanager
def renewal_lock(path: Path, wait: float) -> Iterator[bool]:
    """Hold the folder's renewal lock; yields False when another node holds it for longer than WAIT s."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline, told = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                if not told:
                    log.info("another node is obtaining the certificate (it holds %s); waiting for it", path)
                    told = True
                time.sleep(0.2)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class HttpsRuntime:
    """The certificate in use, the plain-HTTP listener and the background watcher of one server."""

    def __init__(self, plan: HttpsPlan, data_dir: Path) -> None:
        self.plan = plan
        self.folder = TlsFolder(data_dir)
        self.slot: CertSlot | None = None
        self.served: StoredCert | None = None  # the ACME certificate in use
        self._stamp: tuple[tuple[int, int], ...] = ()
        self._next_attempt = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._plain: uvicorn.Server | None = None
        self._plain_sock: Any = None

    @classmethod
    def start(cls, plan: HttpsPlan, data_dir: Path) -> HttpsRuntime:
        """Listen on the plain-HTTP address and get the certificate; TlsError on failure."""
        runtime = cls(plan, data_dir)
        try:
            if plan.http_address is not None:
                runtime._start_plain()
            runtime._load_first()
        except BaseException:
            runtime.close()
            raise
        return runtime

    def watch(self) -> None:
        """Start looking after the certificate (renewal, replaced files) once the server is up: start-up
        silences the log while the app is built, and a renewal's lines must not be lost to that."""
        if not any(t.name == "keepbase-tls-watch" for t in self._threads):
            self._spawn(self._watch, "keepbase-tls-watch")

    # ---------------------------------------------------------------- uvicorn side

    def context_factory(self, _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        assert self.slot is not None
        return self.slot.front

    def wrap(self, app: ASGIApp) -> ASGIApp:
        return Hsts(app, self.plan.hsts_max_age) if self.plan.hsts_max_age > 0 else app

    def base_url(self, address: str) -> str:
        if self.plan.domains:
            port = "" if self.plan.https_port == 443 else f":{self.plan.https_port}"
            return f"https://{self.plan.domains[0]}{port}"
        return f"https://{address}"

    def close(self) -> None:
        self._stop.set()
        if self._plain is not None:
            self._plain.should_exit = True
        for thread in self._threads:
            thread.join(timeout=5)
        if self._plain_sock is not None:
            self._plain_sock.close()

    # ---------------------------------------------------------------- the plain-HTTP listener

    def _start_plain(self) -> None:
        from .serve import bind_socket  # serve imports this module
        from .startup_errors import explain_bind

        assert self.plan.http_address is not None
        host, port = self.plan.http_address
        try:
            self._plain_sock = bind_socket(host, port)
        except OSError as exc:
            raise TlsError(f"{explain_bind(exc, host, port)} (the plain-HTTP listener of HTTPS)") from exc
        app = PlainHttpApp(self.folder.challenges, self.plan.domains, self.plan.https_port)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", log_config=None,
                                http="h11", loop="asyncio", timeout_graceful_shutdown=1)
        self._plain = uvicorn.Server(config)
        self._spawn(functools.partial(self._plain.run, sockets=[self._plain_sock]), "keepbase-http-plain")
        deadline = time.monotonic() + 15
        while not self._plain.started:
            if not self._threads[-1].is_alive() or time.monotonic() > deadline:
                raise TlsError(f"the plain-HTTP listener on {host}:{port} did not start")
            time.sleep(0.01)

    def _spawn(self, target: Callable[[], Any], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ---------------------------------------------------------------- the certificate

    def _load_first(self) -> None:
        plan = self.plan
        if plan.mode == "files":
            try:
                self.slot = CertSlot(plan.cert_file, plan.key_file)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise TlsError(f"cannot load --tls-cert {plan.cert_file} / --tls-key {plan.key_file}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from exc
            self._stamp = _stamp(plan.cert_file, plan.key_file)
            return
        if plan.mode == "dev":
            path = self.folder.dev_path
            stored = read_cert(path)
            if stored is None or not stored.usable(["localhost"]):
                write_private(path, self_signed(["localhost", "127.0.0.1", "::1"]))
                log.info("development TLS: new self-signed certificate for localhost in %s (clients will not "
                         "trust it)", path)
            self.slot = CertSlot(path)
            self._stamp = _stamp(path)
            return
        path = self.folder.cert_path(plan.domains)
        stored = read_cert(path)
        if stored is not None and stored.usable(plan.domains):
            log.info("TLS certificate for %s: reusing the stored one (valid until %s)", ", ".join(plan.domains),
                     stored.not_after.strftime("%Y-%m-%d %H:%M UTC"))
        else:
            wait = plan.acme.timeout + 60
            stored = self._obtain(wait)
            if stored is None:
                raise TlsError(f"another node held {self.folder.lock_path} for more than {wait:.0f} s")
        self._use(path, stored)

    def _obtain(self, wait: float) -> StoredCert | None:
        """Under the lock: the stored certificate if another node just got one, else a new one; None when
        another node held the lock for longer than WAIT s."""
        plan = self.plan
        path = self.folder.cert_path(plan.domains)
        with renewal_lock(self.folder.lock_path, wait) as locked:
            if not locked:
                return None
            stored = read_cert(path)
            if stored is not None and stored.usable(plan.domains) and now() < stored.renew_at():
                return stored
            log.info("TLS certificate for %s: asking %s", ", ".join(plan.domains), plan.acme.directory)
            try:
                pem = obtain_certificate(plan.acme, self.folder, plan.domains)
                fresh = StoredCert.parse(pem)
                write_private(path, pem)
            except AcmeFailure as exc:
                raise TlsError(self._explain(exc)) from exc
            except (OSError, ValueError) as exc:
                raise TlsError(f"cannot store the certificate in {path}: {exc}") from exc
        log.info("TLS certificate for %s: issued, valid until %s", ", ".join(plan.domains),
                 fresh.not_after.strftime("%Y-%m-%d %H:%M UTC"))
        return fresh

    def _explain(self, exc: AcmeFailure) -> str:
        where = ", ".join(self.plan.domains)
        hint = ""
        if "HTTP-01" in str(exc):
            address = self.plan.http_address
            listener = f"{address[0]}:{address[1]}" if address else "not running"
            hint = (f" (the CA fetches http://{self.plan.domains[0]}/.well-known/acme-challenge/… on port 80; "
                    f"the plain-HTTP listener is on {listener})")
        return f"cannot obtain a TLS certificate for {where}: {exc}{hint}"

    def _use(self, path: Path, stored: StoredCert) -> None:
        if self.slot is None:
            self.slot = CertSlot(path)
        else:
            self.slot.swap(path)
        self.served = stored
        self._stamp = _stamp(path)

    # ---------------------------------------------------------------- in the background

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._check()
            except Exception:  # keep watching: the certificate in use stays until a good one replaces it
                log.exception("TLS certificate check failed")
            self._stop.wait(self.plan.check_interval)

    def _check(self) -> None:
        plan = self.plan
        if plan.mode != "acme":
            paths: tuple[Path | str, ...] = (plan.cert_file, plan.key_file) if plan.mode == "files" else (
                self.folder.dev_path,)
            if _stamp(*paths) != self._stamp:
                self._stamp = _stamp(*paths)
                try:
                    assert self.slot is not None
                    self.slot.swap(*paths)
                    log.info("TLS certificate reloaded from %s", paths[0])
                except (OSError, ssl.SSLError) as exc:
                    log.warning("TLS certificate in %s not reloaded (%s); still serving the previous one",
                                paths[0], exc)
            return
        path = self.folder.cert_path(plan.domains)
        if _stamp(path) != self._stamp:  # another node renewed it
            stored = read_cert(path)
            if stored is not None and stored.usable(plan.domains) and (
                    self.served is None or stored.serial != self.served.serial):
                self._use(path, stored)
                log.info("TLS certificate for %s: loaded the one renewed by another node (valid until %s)",
                         ", ".join(plan.domains), stored.not_after.strftime("%Y-%m-%d %H:%M UTC"))
        served = self.served
        if served is None or now() < served.renew_at() or time.monotonic() < self._next_attempt:
            return
        try:
            fresh = self._obtain(wait=0)
        except TlsError as exc:
            self._next_attempt = time.monotonic() + RETRY_AFTER_FAILURE
            log.warning("TLS certificate renewal failed, next try in %d min; the current certificate is valid "
                        "until %s: %s", RETRY_AFTER_FAILURE // 60, served.not_after.strftime("%Y-%m-%d %H:%M UTC"),
                        exc)
            return
        if fresh is None:
            return  # another node is renewing: its file is picked up at a later look
        if fresh.serial != served.serial:
            self._use(path, fresh)
            log.info("TLS certificate for %s: renewed and in use without a restart", ", ".join(plan.domains))
