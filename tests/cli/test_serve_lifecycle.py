"""``keepbase serve`` as an operator meets it, in real processes: stopping with open realtime streams
and in-flight requests, a second signal, the grace period, the announced address, the first-run
link, and the one-line start-up failures."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_process import ServerProcess, free_port, run_cli

REPO = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
SU = ("ops@example.com", "an-operator-password-1")

SLOW_HOOK = '''
import time


def setup(app):
    @app.route("/slow")
    def slow(request):
        time.sleep(float(request.query_params.get("s", "1")))
        return {"slept": True}
'''

POSTS = '[{"name":"notes","type":"base","listRule":"","viewRule":"","createRule":"","fields":[{"name":"title","type":"text"}]}]'


@pytest.fixture(params=["sqlite", "postgres"])
def engine_args(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "sqlite":
        return []
    from tests.pg_server import create_database

    return ["--db", create_database(request.getfixturevalue("pg_base_url"))]


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.kill()


def _hooks(tmp_path: Path) -> Path:
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "slow.py").write_text(SLOW_HOOK)
    return hooks


def _start(servers: list[ServerProcess], tmp_path: Path, *args: str, **kw: Any) -> ServerProcess:
    server = ServerProcess.start(tmp_path, *args, **kw)
    servers.append(server)
    return server.wait_ready()


def _data_args(server: ServerProcess) -> list[str]:
    args = server.args
    out = ["--dir", args[args.index("--dir") + 1]]
    if "--db" in args:
        out += ["--db", args[args.index("--db") + 1]]
    return out


def _sign_in(url: str, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/api/collections/_superusers/auth-with-password",
                      json={"identity": email, "password": password}, timeout=10)


def _in_thread(fn: Any) -> dict[str, Any]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except Exception as exc:  # the test inspects it
            box["error"] = exc

    box["thread"] = threading.Thread(target=run, daemon=True)
    box["thread"].start()
    return box


# --------------------------------------------------------------------------- stopping


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_sigterm_ends_realtime_streams_and_lets_requests_finish(
        tmp_path: Path, servers: list[ServerProcess], engine_args: list[str]) -> None:
    server = _start(servers, tmp_path, *engine_args, "--hooks", str(_hooks(tmp_path)))
    (tmp_path / "posts.json").write_text(POSTS)
    code, out = run_cli("import", str(tmp_path / "posts.json"), *_data_args(server))
    assert code == 0, out
    node = subprocess.Popen([NODE, "--experimental-eventsource", "--no-warnings", str(REPO / "tests/js/sdk_subscriber.mjs")],
                            cwd=REPO / "tests/js", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"KB_URL": server.url, "COLLECTION": "notes", "PATH": "/usr/bin:/bin"})
    try:
        assert node.stdout is not None
        assert node.stdout.readline().strip() == "subscribed"
        created = httpx.post(f"{server.url}/api/collections/notes/records", json={"title": "before stop"}).json()
        assert node.stdout.readline().strip() == f"event create {created['id']}"
        slow = _in_thread(lambda: httpx.get(f"{server.url}/api/slow?s=2", timeout=30))
        time.sleep(0.5)  # the slow request is in flight
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait_exit(20) == 0
        took = time.monotonic() - started
        slow["thread"].join(10)
        assert "error" not in slow, slow.get("error")
        assert slow["result"].status_code == 200 and slow["result"].json() == {"slept": True}
        # the stream was ended by the server (the SDK saw it), not by a 25 s ping interval or a kill
        assert node.stdout.readline().strip() == "disconnected"
        assert took < 10, f"shutdown took {took:.1f} s"
    finally:
        node.kill()
        node.wait(10)
    output = server.output()
    assert "Traceback" not in output, output
    assert "SIGTERM received, shutting down" in output and "keepbase: stopped" in output


def test_second_signal_stops_at_once_quietly(tmp_path: Path, servers: list[ServerProcess]) -> None:
    server = _start(servers, tmp_path, "--hooks", str(_hooks(tmp_path)))
    slow = _in_thread(lambda: httpx.get(f"{server.url}/api/slow?s=60", timeout=90))
    time.sleep(0.5)
    server.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert server.proc.poll() is None  # still waiting for the slow request
    started = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.wait_exit(10) == 1
    assert time.monotonic() - started < 3
    slow["thread"].join(10)
    assert "error" in slow  # its connection was cut
    output = server.output()
    assert "Traceback" not in output, output
    assert output.count("second signal, stopping at once") == 1


def test_shutdown_timeout_bounds_the_grace_period(tmp_path: Path, servers: list[ServerProcess]) -> None:
    server = _start(servers, tmp_path, "--hooks", str(_hooks(tmp_path)), "--shutdown-timeout", "1")
    _in_thread(lambda: httpx.get(f"{server.url}/api/slow?s=60", timeout=90))
    time.sleep(0.5)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait_exit(20) == 0
    assert time.monotonic() - started < 8  # 1 s of grace, not the request's 60 s
    assert "Traceback" not in server.output()


def test_sigterm_before_any_request_flushes_and_closes(tmp_path: Path, servers: list[ServerProcess],
                                                       engine_args: list[str]) -> None:
    server = _start(servers, tmp_path, *engine_args)
    assert httpx.get(f"{server.url}/api/collections/nope/records").status_code == 404  # a request log row
    assert server.stop() == 0
    # the access log's buffered line was written before exit, even with the stop right after it
    assert "GET /api/collections/nope/records 404" in server.output()
    if not engine_args:  # SQLite: the folder is free again, and the log row was flushed before exit
        code, out = run_cli("superuser", "upsert", *SU, *_data_args(server))
        assert code == 0, out
        import sqlite3

        with sqlite3.connect(Path(_data_args(server)[1]) / "auxiliary.db") as conn:
            assert conn.execute("SELECT count(*) FROM _logs WHERE data LIKE '%/api/collections/nope/records%'"
                                ).fetchone()[0] == 1


# --------------------------------------------------------------------------- starting


def test_announces_the_address_actually_bound(tmp_path: Path, servers: list[ServerProcess]) -> None:
    server = ServerProcess.start(tmp_path, "--http", "127.0.0.1:0")
    servers.append(server)
    deadline = time.monotonic() + 30
    while not (m := re.search(r"started at http://127\.0\.0\.1:(\d+)", server.output())):
        assert server.proc.poll() is None and time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    port = int(m.group(1))
    assert port != 0
    # announced only once the socket answers
    assert httpx.get(f"http://127.0.0.1:{port}/api/health").json()["code"] == 200
    assert server.stop() == 0


def test_first_start_prints_a_one_time_setup_link(tmp_path: Path, servers: list[ServerProcess],
                                                  engine_args: list[str]) -> None:
    server = _start(servers, tmp_path, *engine_args)
    output = server.output()
    assert "keepbase superuser upsert EMAIL PASSWORD" in output
    m = re.search(r"/_/#/pbinstall/([\w.-]+)", output)
    assert m, output
    token = m.group(1)
    body = {"email": SU[0], "password": SU[1], "passwordConfirm": SU[1]}
    r = httpx.post(f"{server.url}/api/collections/_superusers/records", json=body, headers={"Authorization": token})
    assert r.status_code == 200, r.text
    signed_in = _sign_in(server.url, *SU)
    assert signed_in.status_code == 200
    listed = httpx.get(f"{server.url}/api/collections/_superusers/records",
                       headers={"Authorization": signed_in.json()["token"]}).json()
    assert [i["email"] for i in listed["items"]] == [SU[0]]  # the placeholder is gone
    again = httpx.post(f"{server.url}/api/collections/_superusers/records", headers={"Authorization": token},
                       json={"email": "x@example.com", "password": SU[1], "passwordConfirm": SU[1]})
    assert again.status_code in (401, 403)  # the link worked once
    assert server.stop() == 0
    restarted = _start(servers, tmp_path, *engine_args, port=free_port(), name="serve2")
    assert "pbinstall" not in restarted.output()
    assert restarted.stop() == 0


def test_a_second_server_on_one_sqlite_folder_is_refused(tmp_path: Path, servers: list[ServerProcess]) -> None:
    first = _start(servers, tmp_path)
    code, out = run_cli("serve", "--dir", str(tmp_path / "data"), "--http", f"127.0.0.1:{free_port()}")
    assert code == 1
    assert out.strip().count("\n") == 0, out
    assert f"pid {first.proc.pid}" in out and str((tmp_path / "data").resolve()) in out
    assert "Traceback" not in out
    assert first.stop() == 0


def _pg_url(pg_base_url: str, **parts: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(pg_base_url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", [
    "busy-port", "port-out-of-range", "negative-body-size", "no-readers", "not-a-number", "folder-is-a-file",
    "pg-unreachable", "pg-missing-database", "pg-unknown-user", "read-only-folder",
])
def test_startup_failures_are_one_clear_line(tmp_path: Path, case: str, request: pytest.FixtureRequest) -> None:
    port = free_port()
    args = ["serve", "--dir", str(tmp_path / "data"), "--http", f"127.0.0.1:{port}"]
    env: dict[str, str] = {}
    expect = ""
    holder: socket.socket | None = None
    mounted: Path | None = None
    if case == "busy-port":
        holder = socket.socket()
        holder.bind(("127.0.0.1", port))
        holder.listen()
        expect = f"cannot listen on 127.0.0.1:{port}: the port is already in use"
    elif case == "port-out-of-range":
        args[-1] = "127.0.0.1:99999"
        expect = "invalid value for http"
    elif case == "negative-body-size":
        env["KEEPBASE_MAX_BODY_SIZE"] = "-1"
        expect = "invalid value for max_body_size (KEEPBASE_MAX_BODY_SIZE): -1"
    elif case == "no-readers":
        env["KEEPBASE_SQLITE_READERS"] = "0"
        expect = "invalid value for sqlite_readers (KEEPBASE_SQLITE_READERS): 0"
    elif case == "not-a-number":
        env["KEEPBASE_STATEMENT_TIMEOUT_MS"] = "ten"
        expect = "KEEPBASE_STATEMENT_TIMEOUT_MS"
    elif case == "folder-is-a-file":
        (tmp_path / "data").write_text("not a folder")
        expect = str((tmp_path / "data").resolve())
    elif case == "pg-unreachable":
        args += ["--db", f"postgresql://keepbase@127.0.0.1:{free_port()}/app"]
        expect = f"cannot connect to PostgreSQL at 127.0.0.1:{args[-1].rsplit(':', 1)[1].split('/')[0]}/app"
    elif case == "pg-missing-database":
        args += ["--db", _pg_url(request.getfixturevalue("pg_base_url"), database="no_such_db_here")]
        expect = "the PostgreSQL database 'no_such_db_here' does not exist"
    elif case == "pg-unknown-user":
        args += ["--db", _pg_url(request.getfixturevalue("pg_base_url"), username="no_such_role")]
        expect = 'role "no_such_role" does not exist'
    elif case == "read-only-folder":
        if not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0:
            pytest.skip("needs root for a read-only bind mount")
        source, mounted = tmp_path / "src", tmp_path / "ro"
        source.mkdir()
        mounted.mkdir()
        subprocess.run(["mount", "--bind", str(source), str(mounted)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True)
        args[2] = str(mounted)
        expect = f"the data folder {mounted.resolve()} is not writable"
    try:
        code, out = run_cli(*args, env=env, timeout=60)
    finally:
        if holder is not None:
            holder.close()
        if mounted is not None:
            subprocess.run(["umount", "-l", str(mounted)], check=False)
    assert code != 0
    assert "Traceback" not in out, out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("Error: ") and expect in lines[0], out
    assert "started at" not in out


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    code, out = run_cli("serve", "--debug", "--dir", str(tmp_path / "data"), "--http", f"127.0.0.1:{free_port()}",
                        "--db", f"postgresql://keepbase@127.0.0.1:{free_port()}/app")
    assert code == 1
    assert "Traceback" in out and "cannot connect to PostgreSQL" in out.strip().splitlines()[-1]


def test_version() -> None:
    code, out = run_cli("--version")
    assert code == 0 and re.fullmatch(r"keepbase \d+\.\d+\.\d+\S*", out.strip()), out


# --------------------------------------------------------------------------- commands beside a server


def _eventually(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.05)


def test_commands_hand_their_change_to_the_running_server(tmp_path: Path, servers: list[ServerProcess],
                                                          engine_args: list[str]) -> None:
    server = _start(servers, tmp_path, *engine_args)
    data = _data_args(server)
    code, out = run_cli("superuser", "upsert", *SU, *data)
    assert (code, out.strip()) == (0, f"Successfully saved superuser {SU[0]!r}!")
    token = _sign_in(server.url, *SU).json()["token"]  # at once, no restart
    (tmp_path / "posts.json").write_text(POSTS)
    code, out = run_cli("import", str(tmp_path / "posts.json"), *data)
    assert code == 0, out
    # the running server knows the new collection at once (SQLite: the server made the change;
    # PostgreSQL: the command woke the nodes through the broker, not a 15 s schema poll)
    _eventually(lambda: httpx.get(f"{server.url}/api/collections/notes/records").status_code == 200,
                0 if not engine_args else 3)
    code, out = run_cli("new", "--template", "blog", *data)
    assert code == 0, out
    names = {c["name"] for c in httpx.get(f"{server.url}/api/collections?perPage=100",
                                          headers={"Authorization": token}).json()["items"]}
    assert {"notes", "posts", "comments"} <= names, names
    code, out = run_cli("superuser", "delete", "nobody@example.com", *data)
    assert code == 1 and "not found" in out
    if not engine_args:  # SQLite: the server's one writer did the work, over its control socket
        assert "control: superuser_upsert done (0)" in server.output()
        assert "control: import_collections done (0)" in server.output()
    assert server.stop() == 0
    # with the server stopped, the same command works on the folder directly
    code, out = run_cli("superuser", "delete", SU[0], *data)
    assert code == 0, out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_starting_is_quiet(tmp_path: Path, sig: int) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "slow_setup.py").write_text("import time\n\n\ndef setup(app):\n    time.sleep(30)\n")
    server = ServerProcess.start(tmp_path, "--hooks", str(hooks))
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "data.db").exists():  # the app is being built
            assert server.proc.poll() is None and time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        time.sleep(0.5)
        server.signal(sig)
        assert server.wait_exit(10) == 1
    finally:
        server.kill()
    assert server.output().strip() == "keepbase: stopped while starting"
