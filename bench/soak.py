"""Soak test: one real ``keepbase serve`` under a steady mixed workload for ``--minutes`` (default 30).

Not part of CI: it takes half an hour and wants a quiet machine. What it does:

1. Starts ``python -m keepbase serve`` on a free 127.0.0.1 port with a fresh data folder, on SQLite,
   or on PostgreSQL with ``--db URL`` (a scratch database is created on that server and dropped at
   the end) or ``--db auto`` (a throwaway cluster from ``tests/pg_server.py``).
2. Seeds through the HTTP API: an auth collection ``soak_users`` (``--users`` users) and a base
   collection ``soak_posts`` whose rules reference ``@request.auth`` (a post is listed/viewed when
   it is public or yours; only its author may create, update or delete it), plus a few posts each.
3. Runs ``--clients`` concurrent HTTP clients, paced to ``--rate`` requests/s in total: mostly reads
   (list with filter and sort, view, list with ``expand=author``), some creates, updates and
   deletes, password sign-ins, and updates of someone else's post, which must be refused.
   ``--subscribers`` SSE clients (one in three a guest, the rest signed in) subscribe to
   ``soak_posts/*`` and record every event; each write that succeeded is checked against each
   subscriber that may see it (public, or its own post) and that was connected all along.
4. Samples the server's RSS (``/proc/<pid>/status`` VmRSS) and CPU time every ``--sample`` s.
5. Stops the server with SIGTERM while the SSE clients are still connected, and times the exit.

Pass criteria (exit 1 if one fails): no 5xx; no transport error and no status a request could not
legitimately get (a refused update that succeeds is one); no realtime event missing or leaked;
RSS at the end within ``--rss-tolerance`` (10 %) of RSS after warm-up (the first 20 % of the
run); exit code 0 within ``--stop-limit`` s of SIGTERM. A markdown summary is printed and written
to ``--out``. Everything runs on loopback and stops by itself.

    python3 bench/soak.py                          # 30 minutes, SQLite
    python3 bench/soak.py --minutes 3 --out /tmp/soak.md
    python3 bench/soak.py --db auto                # throwaway PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SU_EMAIL, SU_PASSWORD = "soak@example.com", "Soak-pass-123456"
USER_PASSWORD = "User-pass-123456"
USERS, POSTS = "soak_users", "soak_posts"
POSTS_PATH = f"/api/collections/{POSTS}/records"
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()
# operation -> weight; reads are about two thirds of the mix
WEIGHTS = {
    "list": 30,
    "view": 25,
    "expand": 12,
    "create": 10,
    "update": 12,
    "delete": 8,
    "sign_in": 2,
    "update_denied": 1,
}
MIN_OWN, MAX_OWN = 5, 60  # each client keeps between these many live posts of its own
GRACE = 2.0  # s: an event of a write that ended this close to a disconnect may be lost with it


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, tmp: Path, db: str, extra_env: dict[str, str]) -> Server:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPBASE_")}
        env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **extra_env)
        where = ["--dir", str(tmp / "data")] + (["--db", db] if db else [])
        subprocess.run(
            [sys.executable, "-m", "keepbase", "superuser", "upsert", SU_EMAIL, SU_PASSWORD, *where],
            check=True,
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        log = tmp / "server.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "keepbase", "serve", "--http", f"127.0.0.1:{port}", *where],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        server = cls(proc, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SoakError(f"keepbase exited with {proc.returncode} during start-up:\n{server.tail()}")
            try:
                if httpx.get(server.url + "/api/health", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SoakError(f"keepbase did not answer within 60 s:\n{server.tail()}")
            time.sleep(0.1)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def sample(self) -> tuple[int, float]:
        """(VmRSS in KiB, user + system CPU seconds) of the server process."""
        pid = self.proc.pid
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return rss, (int(stat[11]) + int(stat[12])) / ticks

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session start_new_session made for it
            self.proc.wait(15)


class SoakError(Exception):
    pass


@contextmanager
def database(spec: str) -> Iterator[str]:
    """'' (SQLite), or the URL of a scratch PostgreSQL database dropped afterwards."""
    if not spec:
        yield ""
        return
    sys.path.insert(0, str(ROOT))
    from tests.pg_server import create_database, drop_database, ensure_postgres

    base = ensure_postgres() if spec == "auto" else spec
    url = create_database(base, "keepbase_soak_" + os.urandom(4).hex())
    try:
        yield url
    finally:
        drop_database(url)


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # op -> ms
    classes: Counter[str] = field(default_factory=Counter)  # "2xx", ..., "transport"
    by_op: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # op -> status -> n
    server_errors: list[str] = field(default_factory=list)  # 5xx, with bodies (first 20)
    n_server_errors: int = 0
    unexpected: list[str] = field(default_factory=list)  # statuses no request could get (first 20)
    n_unexpected: int = 0

    def record(self, op: str, status: int | str, ms: float, ok: bool, detail: str) -> None:
        self.latencies[op].append(ms)
        cls = f"{status // 100}xx" if isinstance(status, int) else "transport"
        self.classes[cls] += 1
        self.by_op[op][str(status)] += 1
        if cls == "5xx":
            self.n_server_errors += 1
            if len(self.server_errors) < 20:
                self.server_errors.append(detail)
        elif not ok:
            self.n_unexpected += 1
            if len(self.unexpected) < 20:
                self.unexpected.append(detail)


@dataclass
class Write:
    """One successful write: the event key subscribers get, who may see it, when it ran."""

    key: tuple[str, str, int]  # (action, record id, rev)
    public: bool
    author: str
    started: float
    ended: float


class Pool:
    """A set with O(1) add, remove and random pick."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: str) -> None:
        self.index[item] = len(self.items)
        self.items.append(item)

    def remove(self, item: str) -> None:
        i = self.index.pop(item)
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.index[last] = i

    def pick(self, rng: random.Random) -> str:
        return self.items[rng.randrange(len(self.items))]


@dataclass
class Post:
    id: str
    author: str
    public: bool
    rev: int = 0


@dataclass
class User:
    id: str
    email: str
    token: str


class Pacer:
    """Spreads requests evenly at ``rate`` per second over all clients (0: no pacing)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        self.next = max(self.next + self.interval, now - 0.5)  # bank at most half a second of slack
        if self.next > now:
            await asyncio.sleep(self.next - now)


# --------------------------------------------------------------------------- realtime subscribers


class Subscriber:
    def __init__(self, name: str, user: User | None) -> None:
        self.name = name
        self.user = user
        self.windows: list[list[float]] = []  # [subscribed at, stream ended at (inf while open)]
        self.received: Counter[tuple[str, str, int]] = Counter()
        self.reconnects = 0
        self.problems: list[str] = []
        self.stopping = False
        self.ready = asyncio.Event()

    async def run(self, base_url: str) -> None:
        timeout = httpx.Timeout(10.0, read=90.0)  # pings come every 25 s: 90 s of silence is a hang
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as http:
            while not self.stopping:
                try:
                    await self._stream(http)
                    reason = "stream ended by the server"
                except Exception as e:  # any failure is a disconnect: reported, then retried
                    reason = f"{type(e).__name__}: {e}"
                if self.windows and self.windows[-1][1] == float("inf"):
                    self.windows[-1][1] = time.monotonic()
                if self.stopping:
                    return
                self.reconnects += 1
                if len(self.problems) < 10:
                    self.problems.append(f"{time.strftime('%H:%M:%S')} {reason}")
                await asyncio.sleep(0.5)

    async def _stream(self, http: httpx.AsyncClient) -> None:
        async with http.stream("GET", "/api/realtime", headers={"Accept": "text/event-stream"}) as resp:
            if resp.status_code != 200:
                raise SoakError(f"GET /api/realtime answered {resp.status_code}")
            event, data = "", []
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:]
                elif line.startswith("data:"):
                    data.append(line[5:])
                elif line == "" and event:
                    await self._dispatch(http, event, "\n".join(data))
                    event, data = "", []

    async def _dispatch(self, http: httpx.AsyncClient, event: str, data: str) -> None:
        payload = json.loads(data)
        if event == "PB_CONNECT":
            headers = {"Authorization": self.user.token} if self.user else {}
            r = await http.post(
                "/api/realtime",
                headers=headers,
                json={"clientId": payload["clientId"], "subscriptions": [f"{POSTS}/*"]},
            )
            if r.status_code != 204:
                raise SoakError(f"POST /api/realtime answered {r.status_code}: {r.text[:300]}")
            self.windows.append([time.monotonic(), float("inf")])
            self.ready.set()
        elif event == f"{POSTS}/*":
            rec = payload["record"]
            self.received[(payload["action"], rec["id"], int(rec["rev"]))] += 1

    def check(self, writes: list[Write]) -> dict[str, Any]:
        """Compare what arrived with the writes this subscriber may see and was connected for."""
        visible: set[tuple[str, str, int]] = set()
        expected: set[tuple[str, str, int]] = set()
        for w in writes:
            if not (w.public or (self.user and w.author == self.user.id)):
                continue
            visible.add(w.key)
            if any(start <= w.started and w.ended + GRACE <= end for start, end in self.windows):
                expected.add(w.key)
        got = set(self.received)
        all_keys = {w.key for w in writes}
        return {
            "name": self.name,
            "expected": len(expected),
            "received": sum(self.received.values()),
            "missing": sorted(expected - got)[:5],
            "n_missing": len(expected - got),
            # an event of a write this subscriber may not see is a leak; one of no write we know is
            # from a request whose answer was lost (a transport error), reported but not judged
            "n_leaked": len((got & all_keys) - visible),
            "leaked": sorted((got & all_keys) - visible)[:5],
            "n_unknown": len(got - all_keys),
            "n_duplicates": sum(n - 1 for n in self.received.values() if n > 1),
            "n_uncertain": len(visible - expected),
            "reconnects": self.reconnects,
            "problems": self.problems,
        }


# --------------------------------------------------------------------------- seeding


def _check(r: httpx.Response, what: str, status: int = 200) -> Any:
    if r.status_code != status:
        raise SoakError(f"{what}: {r.status_code} {r.text[:500]}")
    return r.json() if r.content else None


def post_body(rng: random.Random, author: str, n: int) -> dict[str, Any]:
    return {
        "title": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n}",
        "body": " ".join(rng.choices(WORDS, k=30)),
        "public": rng.random() < 0.7,
        "views": rng.randrange(1000),
        "rev": 0,
        "author": author,
    }


async def seed(
    http: httpx.AsyncClient, n_users: int, posts_per_client: int, n_clients: int, rng: random.Random
) -> tuple[dict[str, str], list[User], list[list[Post]]]:
    su = {
        "Authorization": _check(
            await http.post(
                "/api/collections/_superusers/auth-with-password",
                json={"identity": SU_EMAIL, "password": SU_PASSWORD},
            ),
            "superuser sign-in",
        )["token"]
    }
    signed_in = '@request.auth.id != ""'
    users_col = _check(
        await http.post(
            "/api/collections",
            headers=su,
            json={
                "name": USERS,
                "type": "auth",
                "listRule": signed_in,
                "viewRule": signed_in,
                "fields": [{"name": "name", "type": "text"}],
            },
        ),
        "create soak_users",
    )
    mine = "author = @request.auth.id"
    _check(
        await http.post(
            "/api/collections",
            headers=su,
            json={
                "name": POSTS,
                "type": "base",
                "listRule": f"public = true || {mine}",
                "viewRule": f"public = true || {mine}",
                "createRule": f"{signed_in} && @request.body.author = @request.auth.id",
                "updateRule": mine,
                "deleteRule": mine,
                "fields": [
                    {"name": "title", "type": "text", "required": True, "max": 200},
                    {"name": "body", "type": "text"},
                    {"name": "public", "type": "bool"},
                    {"name": "views", "type": "number"},
                    {"name": "rev", "type": "number"},
                    {
                        "name": "author",
                        "type": "relation",
                        "collectionId": users_col["id"],
                        "maxSelect": 1,
                        "required": True,
                    },
                    {"name": "created", "type": "autodate", "onCreate": True},
                    {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
                ],
                "indexes": [f"CREATE INDEX idx_{POSTS}_author ON {POSTS} (author)"],
            },
        ),
        "create soak_posts",
    )
    users = []
    for i in range(n_users):
        email = f"user{i}@example.com"
        rec = _check(
            await http.post(
                f"/api/collections/{USERS}/records",
                headers=su,
                json={
                    "email": email,
                    "password": USER_PASSWORD,
                    "passwordConfirm": USER_PASSWORD,
                    "name": f"User {i}",
                },
            ),
            f"create user {i}",
        )
        token = _check(
            await http.post(
                f"/api/collections/{USERS}/auth-with-password",
                json={"identity": email, "password": USER_PASSWORD},
            ),
            "user sign-in",
        )["token"]
        users.append(User(rec["id"], email, token))
    owned: list[list[Post]] = []
    for c in range(n_clients):
        user = users[c % n_users]
        posts = []
        for j in range(posts_per_client):
            body = post_body(rng, user.id, j)
            rec = _check(
                await http.post(POSTS_PATH, headers={"Authorization": user.token}, json=body), "seed post"
            )
            posts.append(Post(rec["id"], user.id, bool(rec["public"])))
        owned.append(posts)
    return su, users, owned


# --------------------------------------------------------------------------- load


class Load:
    def __init__(
        self, http: httpx.AsyncClient, users: list[User], owned: list[list[Post]], rate: float, seed: int
    ) -> None:
        self.http = http
        self.users = users
        self.owned = owned
        self.stats = Stats()
        self.writes: list[Write] = []
        self.pacer = Pacer(rate)
        self.seed = seed
        self.everyone = Pool()  # every live post, for views and refused updates
        self.posts: dict[str, Post] = {}
        for posts in owned:
            for p in posts:
                self.everyone.add(p.id)
                self.posts[p.id] = p
        self.counter = 0
        # Argon2id holds 64 MiB while a sign-in verifies: RSS is read with none in flight (the
        # sampler closes the gate, waits for the running ones, reads, reopens it)
        self.sign_in_gate = asyncio.Event()
        self.sign_in_gate.set()
        self.signing_in = 0

    async def quiet_sample(self, server: Server) -> tuple[int, float]:
        self.sign_in_gate.clear()
        try:
            deadline = time.monotonic() + 10
            while self.signing_in and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return server.sample()
        finally:
            self.sign_in_gate.set()

    async def request(
        self, op: str, method: str, url: str, ok: set[int], token: str | None = None, **kw: Any
    ) -> httpx.Response | None:
        headers = {"Authorization": token} if token else {}
        started = time.monotonic()
        try:
            r = await self.http.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as e:
            self.stats.record(
                op,
                type(e).__name__,
                (time.monotonic() - started) * 1000,
                False,
                f"{op} {method} {url}: {type(e).__name__}: {e}",
            )
            return None
        ms = (time.monotonic() - started) * 1000
        good = r.status_code in ok
        self.stats.record(
            op, r.status_code, ms, good, f"{op} {method} {url} -> {r.status_code}: {r.text[:1000]}"
        )
        return r if good else None

    async def client(self, c: int, until: float) -> None:
        rng = random.Random(self.seed * 1000 + c)
        user = self.users[c % len(self.users)]
        mine = Pool()
        for p in self.owned[c]:
            mine.add(p.id)
        ops, weights = list(WEIGHTS), list(WEIGHTS.values())
        while time.monotonic() < until:
            await self.pacer.wait()
            op = rng.choices(ops, weights)[0]
            if op == "create" and len(mine) >= MAX_OWN:
                op = "delete"
            elif op == "delete" and len(mine) <= MIN_OWN:
                op = "create"
            guest = rng.random() < 0.3
            token = None if guest else user.token
            if op == "list":
                f = rng.choice(
                    [
                        f"views >= {rng.randrange(1000)}",
                        f'title ~ "{rng.choice(WORDS)}"',
                        f"public = true && views < {rng.randrange(1000)}",
                    ]
                )
                await self.request(
                    op,
                    "GET",
                    POSTS_PATH,
                    {200},
                    token,
                    params={
                        "filter": f,
                        "sort": rng.choice(["-created", "views,-id", "-updated,title"]),
                        "perPage": 20,
                        "page": rng.randrange(1, 4),
                    },
                )
            elif op == "expand":
                await self.request(
                    op,
                    "GET",
                    POSTS_PATH,
                    {200},
                    user.token,
                    params={
                        "filter": f"views < {rng.randrange(1000)}",
                        "sort": "-views",
                        "perPage": 10,
                        "expand": "author",
                    },
                )
            elif op == "view":
                if guest:  # anyone's post: 404 when it is private, or deleted meanwhile
                    await self.request(op, "GET", f"{POSTS_PATH}/{self.everyone.pick(rng)}", {200, 404})
                else:
                    await self.request(op, "GET", f"{POSTS_PATH}/{mine.pick(rng)}", {200}, user.token)
            elif op == "sign_in":
                await self.sign_in_gate.wait()
                self.signing_in += 1
                try:
                    r = await self.request(
                        op,
                        "POST",
                        f"/api/collections/{USERS}/auth-with-password",
                        {200},
                        json={"identity": user.email, "password": USER_PASSWORD},
                    )
                finally:
                    self.signing_in -= 1
                if r is not None:
                    user.token = r.json()["token"]
            elif op == "update_denied":
                post = self.posts.get(self.everyone.pick(rng))
                if post is None or post.author == user.id:
                    continue
                # someone else's post: refused (404, or 403 when it is listable), never saved
                await self.request(
                    op,
                    "PATCH",
                    f"{POSTS_PATH}/{post.id}",
                    {403, 404},
                    user.token,
                    json={"title": "not yours", "rev": -1},
                )
            else:
                await self.write(op, rng, user, mine)

    async def write(self, op: str, rng: random.Random, user: User, mine: Pool) -> None:
        started = time.monotonic()
        if op == "create":
            self.counter += 1
            r = await self.request(
                op, "POST", POSTS_PATH, {200}, user.token, json=post_body(rng, user.id, self.counter)
            )
            if r is None:
                return
            rec = r.json()
            post = Post(rec["id"], user.id, bool(rec["public"]))
            self.posts[post.id] = post
            self.everyone.add(post.id)
            mine.add(post.id)
        elif op == "update":
            post = self.posts[mine.pick(rng)]
            public = post.public if rng.random() < 0.8 else not post.public
            r = await self.request(
                op,
                "PATCH",
                f"{POSTS_PATH}/{post.id}",
                {200},
                user.token,
                json={"rev": post.rev + 1, "views": rng.randrange(1000), "public": public},
            )
            if r is None:
                return
            post.rev, post.public = post.rev + 1, public
        else:
            post = self.posts[mine.pick(rng)]
            mine.remove(post.id)  # before the request, so no other op of this client picks it
            r = await self.request(op, "DELETE", f"{POSTS_PATH}/{post.id}", {204}, user.token)
            if r is None:
                return
            self.everyone.remove(post.id)
            del self.posts[post.id]
        action = {"create": "create", "update": "update", "delete": "delete"}[op]
        self.writes.append(
            Write((action, post.id, post.rev), post.public, post.author, started, time.monotonic())
        )


# --------------------------------------------------------------------------- the run


@dataclass
class Options:
    minutes: float
    db: str
    out: Path
    clients: int
    subscribers: int
    users: int
    rate: float
    posts: int
    sample: float
    warmup: float
    rss_tolerance: float
    stop_limit: float
    seed: int
    keep_dir: bool
    server_env: dict[str, str]


async def soak(server: Server, opts: Options) -> dict[str, Any]:
    rng = random.Random(opts.seed)
    limits = httpx.Limits(max_connections=opts.clients + 4, max_keepalive_connections=opts.clients + 4)
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0, limits=limits) as http:
        t0 = time.monotonic()
        _, users, owned = await seed(http, opts.users, opts.posts, opts.clients, rng)
        seed_s = time.monotonic() - t0
        subs = []
        for i in range(opts.subscribers):
            user = None if i % 3 == 0 else users[(i - i // 3 - 1) % len(users)]
            subs.append(Subscriber(f"sse{i} ({'guest' if user is None else user.email})", user))
        sub_tasks = [asyncio.create_task(s.run(server.url)) for s in subs]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), 60)
        except TimeoutError:
            problems = [p for s in subs for p in s.problems]
            raise SoakError(f"SSE subscribers not ready within 60 s: {problems[:5]}") from None
        print(
            f"seeded in {seed_s:.1f} s; {len(subs)} subscribers ready; running {opts.minutes:g} min",
            flush=True,
        )

        load = Load(http, users, owned, opts.rate, opts.seed)
        samples: list[tuple[float, int, float]] = []  # (s since start, RSS KiB, CPU s)
        start = time.monotonic()
        until = start + opts.minutes * 60

        async def sampler() -> None:
            k = 0
            while True:
                if server.proc.poll() is not None:
                    raise SoakError(
                        f"keepbase exited with {server.proc.returncode} mid-run:\n{server.tail()}"
                    )
                rss, cpu = await load.quiet_sample(server)
                samples.append((time.monotonic() - start, rss, cpu))
                n = sum(load.stats.classes.values())
                print(
                    f"  {samples[-1][0]:6.0f} s  RSS {rss / 1024:6.1f} MiB  CPU {cpu:7.1f} s  "
                    f"{n} requests  {len(load.writes)} writes  5xx {load.stats.n_server_errors}",
                    flush=True,
                )
                if time.monotonic() >= until - 0.5:
                    return
                k += 1  # on a fixed grid, the last sample at the end of the run
                await asyncio.sleep(max(0.0, min(start + k * opts.sample, until) - time.monotonic()))

        sampling = asyncio.create_task(sampler())
        workers = [asyncio.create_task(load.client(c, until)) for c in range(opts.clients)]
        done, _ = await asyncio.wait([sampling, *workers], return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception():
                for w in [sampling, *workers]:
                    w.cancel()
                raise t.exception()  # type: ignore[misc]
        await asyncio.gather(sampling, *workers)
        elapsed = time.monotonic() - start

        # let the last events arrive: wait until nothing new came for 2 s (at most 20 s)
        last, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 20
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 2:
            now = sum(sum(s.received.values()) for s in subs)
            if now != last:
                last, quiet_since = now, time.monotonic()
            await asyncio.sleep(0.2)
        checks = [s.check(load.writes) for s in subs]
        connected = sum(1 for s in subs if s.windows and s.windows[-1][1] == float("inf"))

        # SIGTERM with the SSE clients still connected
        for s in subs:
            s.stopping = True
        stop_started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = await asyncio.to_thread(server.proc.wait, max(opts.stop_limit, 30.0))
        except subprocess.TimeoutExpired:
            code = None
        stop_s = time.monotonic() - stop_started
        for t in sub_tasks:
            t.cancel()
        await asyncio.gather(*sub_tasks, return_exceptions=True)

    return {
        "stats": load.stats,
        "writes": len(load.writes),
        "checks": checks,
        "samples": samples,
        "elapsed": elapsed,
        "seed_s": seed_s,
        "exit_code": code,
        "stop_s": stop_s,
        "sse_connected_at_stop": connected,
    }


# --------------------------------------------------------------------------- report


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] if s else float("nan")


def report(res: dict[str, Any], opts: Options, db_label: str) -> tuple[str, bool]:
    """The markdown summary, and whether every criterion passed."""
    stats: Stats = res["stats"]
    samples: list[tuple[float, int, float]] = res["samples"]
    total = sum(stats.classes.values())
    elapsed = res["elapsed"]
    # RSS is judged on its floor (the least of a window of samples): samples are taken with no
    # sign-in in flight (Argon2id's 64 MiB), but a large response or a burst of garbage can still
    # lift one sample, while a leak lifts every sample, the least included
    width = max(3, round(len(samples) * 0.1))
    first = next((i for i, s in enumerate(samples) if s[0] >= opts.minutes * 60 * opts.warmup), 0)
    warm_w = samples[first : first + width]
    end_w = samples[-width:]
    warm, end = min(warm_w, key=lambda s: s[1]), min(end_w, key=lambda s: s[1])
    growth = (end[1] - warm[1]) / warm[1]
    checks = res["checks"]
    missing = sum(c["n_missing"] for c in checks)
    leaked = sum(c["n_leaked"] for c in checks)
    code, stop_s = res["exit_code"], res["stop_s"]
    criteria = [
        ("no 5xx", stats.n_server_errors == 0, f"{stats.n_server_errors} of {total} requests"),
        ("no unexpected status or transport error", stats.n_unexpected == 0, f"{stats.n_unexpected}"),
        (
            "no realtime event missing",
            missing == 0,
            f"{missing} missing of {sum(c['expected'] for c in checks)} expected",
        ),
        ("no realtime event leaked", leaked == 0, f"{leaked} seen by a subscriber the rule excludes"),
        (
            f"RSS flat within {opts.rss_tolerance:.0%} after warm-up",
            growth <= opts.rss_tolerance,
            f"floor {warm[1] / 1024:.1f} MiB over {warm_w[0][0]:.0f}-{warm_w[-1][0]:.0f} s → "
            f"{end[1] / 1024:.1f} MiB over {end_w[0][0]:.0f}-{end_w[-1][0]:.0f} s ({growth:+.1%})",
        ),
        (
            f"SIGTERM: exit 0 within {opts.stop_limit:g} s",
            code == 0 and stop_s <= opts.stop_limit,
            f"exit code {code} after {stop_s:.2f} s, {res['sse_connected_at_stop']} SSE clients connected",
        ),
    ]
    passed = all(ok for _, ok, _ in criteria)
    cpu_s = samples[-1][2] - samples[0][2]
    span = max(samples[-1][0] - samples[0][0], 1e-9)
    out = [
        f"# keepbase soak: {'PASS' if passed else 'FAIL'}",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; {opts.minutes:g} min on {db_label}; commit {git_commit()}; "
        f"{opts.clients} clients, " + (f"paced to {opts.rate:g} req/s" if opts.rate else "unpaced"),
        "",
        f"{total} requests in {elapsed:.0f} s ({total / elapsed:.1f} req/s), {res['writes']} writes; "
        f"{opts.subscribers} SSE subscribers; {opts.users} users; seeding took {res['seed_s']:.1f} s; "
        f"server CPU {cpu_s:.0f} s ({cpu_s / span:.0%} of a core, "
        f"{cpu_s / max(total, 1) * 1e6:.0f} µs/request); load average at the end "
        f"{os.getloadavg()[0]:.2f}",
        "",
        "## Criteria",
        "",
        "| criterion | result | detail |",
        "| --- | --- | --- |",
    ]
    out += [f"| {name} | {'pass' if ok else '**FAIL**'} | {detail} |" for name, ok, detail in criteria]
    out += ["", "## Requests by status class", "", "| class | requests |", "| --- | ---: |"]
    out += [f"| {k} | {v} |" for k, v in sorted(stats.classes.items())]
    out += [
        "",
        "## Latency per operation (ms)",
        "",
        "| operation | requests | statuses | p50 | p99 | max |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for op in WEIGHTS:
        lat = stats.latencies.get(op, [])
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(stats.by_op[op].items()))
        out.append(
            f"| {op} | {len(lat)} | {codes} | {pct(lat, 0.5):.1f} | {pct(lat, 0.99):.1f} | "
            f"{max(lat, default=float('nan')):.1f} |"
        )
    out += [
        "",
        "## Realtime",
        "",
        "Expected: events of successful writes the subscriber may see (public, or its own post), "
        "made while it was subscribed and ending 2 s before any disconnect; uncertain: visible ones "
        "that straddled a reconnect (not judged).",
        "",
        "| subscriber | expected | received | missing | leaked | duplicates | unknown | uncertain | reconnects |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in checks:
        out.append(
            f"| {c['name']} | {c['expected']} | {c['received']} | {c['n_missing']} | {c['n_leaked']} | "
            f"{c['n_duplicates']} | {c['n_unknown']} | {c['n_uncertain']} | {c['reconnects']} |"
        )
    for c in checks:
        for line in c["problems"][:3]:
            out.append(f"- {c['name']} disconnected: {line}")
        if c["reconnects"] > 3:
            out.append(f"- {c['name']}: {c['reconnects'] - 3} more disconnects")
        if c["missing"]:
            out.append(f"- {c['name']} missing (first 5): {c['missing']}")
        if c["leaked"]:
            out.append(f"- {c['name']} leaked (first 5): {c['leaked']}")
    out += [
        "",
        "## Server memory and CPU",
        "",
        "| t (s) | RSS (MiB) | CPU (s) | CPU over the interval |",
        "| ---: | ---: | ---: | ---: |",
    ]
    step = max(1, len(samples) // 30)  # at most ~30 rows
    shown = samples[::step] if samples[-1] in samples[::step] else [*samples[::step], samples[-1]]
    prev: tuple[float, int, float] | None = None
    for s in shown:
        share = f"{(s[2] - prev[2]) / max(s[0] - prev[0], 1e-9):.0%}" if prev else ""
        out.append(f"| {s[0]:.0f} | {s[1] / 1024:.1f} | {s[2]:.1f} | {share} |")
        prev = s
    rss = sorted(s[1] for s in samples)
    out += [
        "",
        f"RSS over all samples: least {rss[0] / 1024:.1f}, median {rss[len(rss) // 2] / 1024:.1f}, "
        f"peak {rss[-1] / 1024:.1f} MiB (read with no sign-in in flight: Argon2id holds 64 MiB for "
        "each; the criterion compares the floors of windows of samples).",
    ]
    if stats.server_errors:
        out += ["", f"## 5xx responses (first {len(stats.server_errors)} of {stats.n_server_errors})", ""]
        out += [f"- `{e}`" for e in stats.server_errors]
    if stats.unexpected:
        out += ["", f"## Unexpected statuses (first {len(stats.unexpected)} of {stats.n_unexpected})", ""]
        out += [f"- `{e}`" for e in stats.unexpected]
    if not passed:
        out += ["", "## Server log (last lines)", "", "```", res["log_tail"], "```"]
    return "\n".join(out) + "\n", passed


def git_commit() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, timeout=10
            ).stdout.strip()
            or "?"
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def parse_args(argv: list[str] | None) -> Options:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the workload (default 30)")
    ap.add_argument(
        "--db",
        default="",
        help="PostgreSQL server URL (a scratch database is made on it), or "
        "'auto' for a throwaway cluster; default SQLite",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results" / "soak.md",
        help="markdown summary (default bench/results/soak.md)",
    )
    ap.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    ap.add_argument(
        "--subscribers", type=int, default=6, help="SSE clients, one in three a guest (default 6)"
    )
    ap.add_argument("--users", type=int, default=4, help="users the clients and subscribers sign in as")
    ap.add_argument(
        "--rate",
        type=float,
        default=60.0,
        help="total requests/s the clients are paced to; 0 = as fast as they can (default 60)",
    )
    ap.add_argument("--posts", type=int, default=20, help="posts seeded per client (default 20)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between RSS/CPU samples")
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run before the RSS baseline")
    ap.add_argument("--rss-tolerance", type=float, default=0.10, help="allowed RSS growth after warm-up")
    ap.add_argument("--stop-limit", type=float, default=5.0, help="seconds the server may take to exit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-dir", action="store_true", help="keep the temp dir (data, server.log)")
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEEPBASE_X=V",
        help="environment for the server (repeatable), e.g. KEEPBASE_REALTIME_QUEUE_SIZE=4",
    )
    a = ap.parse_args(argv)
    if any("=" not in kv for kv in a.server_env):
        ap.error("--server-env takes NAME=VALUE")
    if a.users < 1 or a.clients < 1 or a.posts < MIN_OWN + 1 or a.minutes <= 0:
        ap.error(f"need --users >= 1, --clients >= 1, --posts > {MIN_OWN}, --minutes > 0")
    return Options(
        a.minutes,
        a.db,
        a.out,
        a.clients,
        a.subscribers,
        a.users,
        a.rate,
        a.posts,
        a.sample,
        a.warmup,
        a.rss_tolerance,
        a.stop_limit,
        a.seed,
        a.keep_dir,
        dict(kv.split("=", 1) for kv in a.server_env),
    )


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so the `finally` blocks stop the server
    tmp = Path(tempfile.mkdtemp(prefix="keepbase-soak-"))
    server: Server | None = None
    try:
        with database(opts.db) as db:
            label = (
                "SQLite"
                if not db
                else f"PostgreSQL ({'throwaway cluster' if opts.db == 'auto' else 'scratch db'})"
            )
            server = Server.start(tmp, db, opts.server_env)
            print(f"keepbase pid {server.proc.pid} on {server.url} ({label}); data in {tmp}", flush=True)
            budget = opts.minutes * 60 + 300  # seeding, draining and stopping on top of the run
            try:
                res = asyncio.run(asyncio.wait_for(soak(server, opts), budget))
            except TimeoutError:
                raise SoakError(f"not finished after {budget:.0f} s:\n{server.tail()}") from None
            finally:
                server.kill()  # no-op when it already stopped
            res["log_tail"] = server.tail()
        text, passed = report(res, opts, label)
    except SoakError as e:
        print(f"soak aborted: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; server stopped", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.kill()
        if opts.keep_dir:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(text)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(text)
    print(f"summary written to {opts.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
