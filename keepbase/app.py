"""``create_app(config) -> App``: the one place that builds and wires every part."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from anyio import CapacityLimiter
from sqlalchemy import select

from .auth.password import authenticate_with_password
from .auth.tokens import auth_from_token, new_auth_token
from .core.config import Config
from .core.errors import ApiError, BadRequestError, StartupError
from .core.events import Hooks
from .core.types import AuthInfo, RequestInfo
from .store.collections import CollectionStore
from .store.db import Database
from .store.models import Collection, Field
from .store.record_rules import filter_condition, rule_error
from .store.records import RecordService

log = logging.getLogger("keepbase")
F = TypeVar("F", bound=Callable[..., Any])


class HooksError(Exception):
    """A hooks file could not be loaded; the message names the file."""


class App:
    """A keepbase application: database, collections, records, auth — and its ASGI interface.

    Example::

        from keepbase.app import create_app
        from keepbase import Config
        app = create_app(Config(dir="/tmp/kb"))
        app.asgi  # a Starlette app, serve it with uvicorn

    Hooks, custom routes and scheduled jobs are registered with decorators (see
    ``on_record_create``, ``route``, ``cron``), usually from a hooks file loaded by
    ``keepbase serve --hooks DIR``::

        def setup(app: App) -> None:
            @app.on_record_create("posts")
            def stamp(e: RecordEvent) -> None:
                e.record["title"] = e.record["title"].strip()
                e.next()
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        from .security.keyring import keyring_from_config
        from .store.encryption import RecordCipher, check_keys
        from .store.option_secrets import check_option_secrets
        from .store.settings import SettingsStore, settings_keyring

        keyring = keyring_from_config(config)  # encrypted fields (docs/security.md)
        secrets_keyring = settings_keyring(config, keyring)  # settings and OAuth2 client secrets
        data_dir = Path(config.dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(
            sqlite_path=None if config.db else data_dir / "data.db",
            pg_url=config.db, sync=config.sqlite_sync, readers=config.sqlite_readers,
            pool_size=config.pg_pool_size, timeout_ms=config.statement_timeout_ms,
        )
        self.collections = CollectionStore(self.db, RecordCipher(keyring) if keyring else None)
        self.collections.rule_validator = rule_error(self.collections.find, self.db.dialect)
        self.collections.options_keyring = secrets_keyring
        self.collections.bootstrap()
        self.settings = SettingsStore(self.db, self.collections.params, secrets_keyring)
        try:
            check_keys(self.collections, self.db, self.collections.cipher)
            self.settings.check_keys()
            check_option_secrets(self.collections, secrets_keyring)
        except StartupError:
            self.db.dispose()
            raise
        from .mail import Mailer

        self.mailer = Mailer(self.settings.get)
        self.hooks = Hooks()
        self.records = RecordService(self.db, self.collections, self.hooks)
        from .files.switch import StorageSwitch
        from .store.record_files import bind_file_cleanup

        # uploaded files: <dir>/storage, or S3 when the runtime settings enable it
        self.storage = StorageSwitch(data_dir / "storage", lambda: self.settings.get()["s3"])
        self.records.storage = self.storage
        bind_file_cleanup(self.hooks, self.storage, self.collections)
        from .api.projection import project
        from .core.events import Event
        from .realtime import build_realtime

        self.realtime = build_realtime(config, self.records, self.hooks, verify_token=self.auth_from_token,
                                       project=project)
        self.collections.on_change.append(lambda: self.hooks.collection_after_change.trigger_safely(Event()))
        from .auth.account import AccountService
        from .store.audit import AuditLog

        self.audit = AuditLog(self.db)
        self.audit.bootstrap()
        from .auth.installer import bind_installer_cleanup

        bind_installer_cleanup(self.db, self.collections, self.records)
        from .store.logs import LogStore

        # request logs: the _logs table (SQLite: in <dir>/auxiliary.db), written in batches
        self.logs = LogStore(self.db, None if config.db else data_dir / "auxiliary.db", self.settings.get,
                             timeout_ms=config.statement_timeout_ms)
        self.logs.bootstrap()
        self.accounts = AccountService(self.db, self.collections, self.settings.get, self.mailer, self.audit,
                                       self.hooks, mail_queue_size=config.mail_queue_size)
        from .store.writer import GroupWriter

        self.group_writer: GroupWriter | None = GroupWriter(self.db) if self.db.is_sqlite else None
        pool = config.pg_pool_size if config.db else config.sqlite_readers + 1
        self.limiter = CapacityLimiter(max(pool, 4))
        from .auth.mfa import MFAService
        from .auth.otp import OTPService
        from .auth.totp import TOTPService
        from .security.rate_limiter import MemoryRateLimiter

        # rate limits and OTP/TOTP attempt counters: in Redis when configured, else in-process on
        # SQLite (one node), shared by every node through the database on PostgreSQL
        if config.redis_url:
            from .security.redis_rate_limiter import RedisRateLimiter
            from .store.instance import redis_namespace

            self.rate_limiter: Any = RedisRateLimiter(config.redis_url,
                                                      redis_namespace(config, self.db, self.collections.params))
        elif self.db.is_sqlite:
            self.rate_limiter = MemoryRateLimiter()
        else:
            from .store.rate_limits import PostgresRateLimiter

            self.rate_limiter = PostgresRateLimiter(self.db)
        self.totp = TOTPService(self.db, self.rate_limiter, keyring=secrets_keyring)  # secrets sealed
        self.hooks.record_after_delete.bind(self.totp.on_record_deleted, id="keepbase-totp-cleanup")
        self.mfa = MFAService(self.db, self.collections, self.totp)
        self.otp = OTPService(self.db, self.collections, self.records, self.mailer, self.settings.get,
                              self.rate_limiter, self.mfa)
        self.otp.mail_queue = self.accounts.mail_queue  # OTP mails share the bounded, retrying queue
        from .auth.oauth2 import OAuth2Service
        from .files.uploads import UploadedFile

        self.oauth2 = OAuth2Service(self.db, self.collections, self.records, self.audit, UploadedFile.from_bytes)
        from .ops.cron import Scheduler

        self.scheduler = Scheduler(self.db)
        from .auth import cleanup

        self.scheduler.add(cleanup.JOB_ID, cleanup.SCHEDULE, lambda: cleanup.delete_expired(self.db, self.collections))
        from .ops.backups import BackupService

        # backups: <dir>/backups (or the backups S3 bucket); auto backups follow ``backups.cron``
        self.backups = BackupService(data_dir=data_dir, db=self.db, collections=self.collections,
                                     settings=self.settings, files_root=self.storage.local.root,
                                     scheduler=self.scheduler)
        self.backups.sync_schedule()
        self.settings.on_change.append(self.backups.sync_schedule)
        from .ops import logs as log_retention

        self.scheduler.add(log_retention.JOB_ID, log_retention.SCHEDULE,
                           lambda: log_retention.delete_expired(self.logs, self.settings.get))
        self.custom_routes: list[Any] = []  # starlette Routes added by ``route()``, see api/custom.py
        from .admin import with_dashboard
        from .api.routes import build_asgi

        self.asgi = with_dashboard(build_asgi(self))  # the admin dashboard at /_/, the API behind it

    # --- services used by the HTTP layer and the CLI ---
    def auth_from_token(self, header: str) -> AuthInfo | None:
        return auth_from_token(self.db, self.collections, header)

    def new_auth_token(self, c: Collection, record: dict[str, Any]) -> str:
        return new_auth_token(c, record)

    # --- the hooks API: decorators for hooks files and embedding code (see docs in each) ---
    def on_record_create(self, *collections: str, priority: int = 0, id: str = "") -> Callable[[F], F]:
        """Before a record is inserted, inside its transaction. Change ``e.record``, call ``e.next()``
        to continue (skip it to cancel the insert silently), or raise an ``ApiError`` to reject::

            @app.on_record_create("posts")
            def clean(e: RecordEvent) -> None:
                if "spam" in e.record["title"]:
                    raise BadRequestError("No spam, please.")
                e.record["title"] = e.record["title"].strip()
                e.next()

        Any other exception also rolls the write back; the client gets a generic error envelope.
        With no ``collections`` the handler sees every collection.
        """
        return self.hooks.record_create.bind(priority=priority, id=id, collections=collections)  # type: ignore[no-any-return]

    def on_record_update(self, *collections: str, priority: int = 0, id: str = "") -> Callable[[F], F]:
        """Before a record is updated (``e.old`` holds the stored values); like ``on_record_create``."""
        return self.hooks.record_update.bind(priority=priority, id=id, collections=collections)  # type: ignore[no-any-return]

    def on_record_delete(self, *collections: str, priority: int = 0, id: str = "") -> Callable[[F], F]:
        """Before a record is deleted, inside its transaction; call ``e.next()`` to delete."""
        return self.hooks.record_delete.bind(priority=priority, id=id, collections=collections)  # type: ignore[no-any-return]

    def on_record_after_create(self, *collections: str, priority: int = 0, id: str = "") -> Callable[[F], F]:
        """After a create was committed (never on rollback). Errors are logged, not sent::

            @app.on_record_after_create("comments")
            def notify(e: RecordEvent) -> None:
                app.mailer.send(Message(to=["me@example.com"], subject="New comment", html=e.record["text"]))
        """
        return self.hooks.record_after_create.bind(priority=priority, id=id, collections=collections)  # type: ignore[no-any-return]

    def on_record_after_update(self, *collections: str, priority: int = 0, id: str = "") -> Callable[[F], F]:
        """After an update was committed (never on rollback)."""
        return self.hooks.record_after_update.bind(priority=priority, id=id, collections=collections)  # type: ignore[no-any-return]

    def on_record_after_delete(self, *collections: str, priority: int = 0, id: str = "") -> Callable[[F], F]:
        """After a delete was committed, cascaded deletes included (never on rollback)."""
        return self.hooks.record_after_delete.bind(priority=priority, id=id, collections=collections)  # type: ignore[no-any-return]

    def on_record_auth(self, *collections: str, priority: int = 0, id: str = "") -> Callable[[F], F]:
        """A successful sign-in, before the token is sent (``RecordAuthEvent``); raise to refuse it."""
        return self.hooks.record_auth.bind(priority=priority, id=id, collections=collections)  # type: ignore[no-any-return]

    def route(self, path: str, methods: Sequence[str] = ("GET",)) -> Callable[[F], F]:
        """A custom HTTP route under ``/api/`` (``"/hello"`` is served at ``/api/hello``)::

            from keepbase.api.deps import app_of, require_auth

            @app.route("/stats/{collection}", methods=["GET"])
            async def stats(request: Request) -> dict[str, Any]:
                auth = await require_auth(request)  # 401 envelope without a valid token
                ...
                return {"user": auth.id}

        The handler gets a Starlette ``Request`` and returns a ``Response`` or any JSON value
        (``None`` → 204). Sync handlers run in a worker thread. ``ApiError`` → error envelope.
        Built-in routes win when paths overlap.
        """
        from .api.custom import custom_route

        def register(fn: F) -> F:
            self.custom_routes.append(custom_route(path, fn, list(methods)))
            return fn

        return register

    def cron(self, schedule: str, *, id: str = "") -> Callable[[F], F]:
        """A scheduled job (five-field cron expression or a macro such as ``@hourly``)::

            @app.cron("*/5 * * * *")
            def cleanup() -> None:
                ...

        Jobs run in their own thread; a failure is logged and the job runs again at its next
        tick, it never stops the server. On PostgreSQL a job runs once per tick across all
        nodes. ``id`` defaults to the function name; registering an id again replaces it.
        """

        def register(fn: F) -> F:
            self.scheduler.add(id or getattr(fn, "__name__", "job"), schedule, fn)
            self.scheduler.start()
            return fn

        return register

    def load_hooks(self, directory: str | Path) -> list[str]:
        """Import every ``*.py`` file of ``directory`` (sorted, ``_``-prefixed ones skipped) and call
        its ``setup(app)``. Returns the loaded file names; raises ``HooksError`` on any failure."""
        import importlib.util
        import sys

        loaded = []
        for path in sorted(Path(directory).glob("*.py")):
            if path.name.startswith("_"):
                continue
            name = f"keepbase_hooks.{path.stem}"
            try:
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
                setup = getattr(module, "setup", None)
                if not callable(setup):
                    raise HooksError(f"{path}: no setup(app) function")
                setup(self)
            except HooksError:
                raise
            except Exception as exc:
                raise HooksError(f"{path}: {type(exc).__name__}: {exc}") from exc
            log.info("loaded hooks from %s", path)
            loaded.append(path.name)
        return loaded

    def authenticate_with_password(self, c: Collection, identity: str, password: str,
                                   identity_field: str = "", ip: str = "") -> dict[str, Any]:
        """Password sign-in; every attempt, successful or not, leaves an ``_audit`` row."""
        try:
            record = authenticate_with_password(self.db, self.collections, c, identity, password, identity_field,
                                                self.rate_limiter)
        except ApiError as exc:
            self.accounts.audit_sign_in(c, "password", None, ip, identity, exc.message)
            raise
        self.accounts.audit_sign_in(c, "password", record, ip)
        return record

    def upsert_superuser(self, email: str, password: str) -> dict[str, Any]:
        c = self.collections.get("_superusers")
        su = RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ""}))
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table.c.id).where(table.c.email == email)).first()
        body = {"email": email, "password": password, "passwordConfirm": password}
        if row is None:
            return self.records.create_record(c, body, su)
        return self.records.update_record(c, row[0], body, su)

    def create_superuser(self, email: str, password: str) -> dict[str, Any]:
        c = self.collections.get("_superusers")
        su = RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ""}))
        return self.records.create_record(c, {"email": email, "password": password, "passwordConfirm": password}, su)

    def delete_superuser(self, email: str) -> bool:
        c = self.collections.get("_superusers")
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table.c.id).where(table.c.email == email)).first()
        if row is None:
            return False
        su = RequestInfo(auth=AuthInfo(c.id, c.name, {"id": ""}))
        self.records.delete_record(c, row[0], su)
        return True

    def collection_filter(self, items: list[dict[str, Any]], expression: str) -> list[dict[str, Any]]:
        """Filter collection objects with the rule language over ``_collections``."""
        meta = Collection(id="_collections", name="_collections", fields=[
            Field(id=n, name=n, type=t) for n, t in
            (("id", "text"), ("name", "text"), ("type", "text"), ("system", "bool"),
             ("created", "text"), ("updated", "text"))])
        table = self.collections.table
        su = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}))
        cond = filter_condition(meta, table, expression, su, lambda _k: None, self.db.dialect)
        if cond is None:
            return items
        with self.db.read() as conn:
            ids = {r[0] for r in conn.execute(select(table.c.id).where(cond)).all()}
        return [i for i in items if i["id"] in ids]

    def scaffolds(self) -> dict[str, Any]:
        from .store.collection_validate import collection_from_payload

        out: dict[str, Any] = {}
        for ctype in ("base", "auth", "view"):
            c = collection_from_payload({"type": ctype, "name": ""}, None, "")
            c.id = ""
            c.created = c.updated = ""
            d = c.to_dict()
            out[ctype] = d
        return out

    def lifespan(self, _asgi: Any) -> Any:
        """The Starlette lifespan: background services (realtime, scheduled jobs) start and stop
        with the server."""
        from contextlib import asynccontextmanager

        from .realtime.service import running

        @asynccontextmanager
        async def services() -> Any:
            self.scheduler.start()
            try:
                async with running(self.realtime):
                    yield
            finally:
                self.scheduler.stop()

        return services()

    def close(self) -> None:
        self.scheduler.stop()
        deadline = time.monotonic() + float(self.config.shutdown_timeout)  # pending mails get the grace period
        self.otp.close(timeout=float(self.config.shutdown_timeout))  # OTPs being hashed, into the mail queue
        self.accounts.close(timeout=max(0.0, deadline - time.monotonic()))
        self.logs.close()
        if self.group_writer is not None:
            self.group_writer.stop()
        if hasattr(self.rate_limiter, "close"):  # a Redis client
            self.rate_limiter.close()
        self.db.dispose()


def create_app(config: Config) -> App:
    """Build an App from a Config. No global state: call it as often as you like."""
    try:
        return App(config)
    except BadRequestError:
        raise
    except Exception as exc:  # a full or read-only data folder: one clear line instead of a driver error
        from .store.write_health import startup_problem

        problem = None if config.db and not isinstance(exc, OSError) else startup_problem(exc, config.dir)
        if problem is None:
            raise
        raise StartupError(problem, str(Path(config.dir).resolve())) from exc
