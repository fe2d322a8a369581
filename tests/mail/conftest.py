"""A real SMTP server (aiosmtpd) whose answers a test scripts, and a fake ``sendmail``
executable (a shell script that saves its arguments and stdin) put first on PATH."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from keepbase.mail.sender import SENDMAIL_PATHS, Mailer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ScriptedSmtp:
    """Answers DATA with the next reply of ``replies`` (``250`` once they run out). While
    ``gate`` is clear, DATA waits for it: the mail stays "being sent"."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.replies: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.attempts = 0
        self.delivered: list[str] = []  # recipients, in the order their mails were accepted
        self._lock = threading.Lock()
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 30)
        with self._lock:
            self.attempts += 1
            reply = self.replies.pop(0) if self.replies else "250 OK"
            if reply.startswith("250"):
                self.delivered.extend(envelope.rcpt_tos)
        return reply

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.gate.set()
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_delivered(self, count: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.delivered) >= count:
                    return list(self.delivered)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} delivered mail(s), got {self.delivered}")

    def settings(self) -> dict[str, Any]:
        return {"smtp": {"enabled": True, "host": "127.0.0.1", "port": self.port, "tls": False},
                "meta": {"senderName": "Support", "senderAddress": "noreply@example.com"}}


@pytest.fixture
def smtp() -> Iterator[ScriptedSmtp]:
    server = ScriptedSmtp(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_mailer(smtp: ScriptedSmtp) -> Mailer:
    return Mailer(smtp.settings, timeout=5.0)


def _system_sendmail() -> str | None:
    return next((p for p in SENDMAIL_PATHS[:-1] if os.access(p, os.X_OK)), None)


class FakeSendmail:
    """Each run leaves ``<dir>/out/<pid>.args`` and ``<dir>/out/<pid>.mail``; exits ``exit_code``."""

    def __init__(self, folder: Path) -> None:
        self.bin = folder / "bin"
        self.out = folder / "out"
        self.bin.mkdir(parents=True)
        self.out.mkdir(parents=True)
        self.exit_code = 0

    def install(self) -> None:
        script = self.bin / "sendmail"
        out = f"{self.out}/$$"
        script.write_text(f'#!/bin/sh\necho "$@" > "{out}.args"\ncat > "{out}.tmp"\nmv "{out}.tmp" "{out}.mail"\n'
                          f'echo "fake sendmail says hi" >&2\nexit {self.exit_code}\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def mails(self) -> list[tuple[str, bytes]]:
        """(arguments, stdin) of every run, oldest first."""
        runs = sorted(self.out.glob("*.mail"), key=lambda p: p.stat().st_mtime_ns)
        return [(p.with_suffix(".args").read_text().strip(), p.read_bytes()) for p in runs]

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.mails()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} sendmail run(s), got {len(self.mails())}")


@pytest.fixture
def sendmail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSendmail:
    """A fake sendmail first on PATH (PocketBase looks in /usr/sbin and /usr/bin first, so the
    test is skipped on a machine that has a real one there)."""
    if _system_sendmail():
        pytest.skip(f"{_system_sendmail()} exists and would be used before PATH")
    fake = FakeSendmail(tmp_path / "sendmail")
    fake.install()
    monkeypatch.setenv("PATH", f"{fake.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake


@pytest.fixture
def no_sendmail() -> None:
    if _system_sendmail():
        pytest.skip(f"{_system_sendmail()} exists")
    import shutil

    if shutil.which("sendmail"):
        pytest.skip("a sendmail is on PATH")
