"""Record services: find, list, save and delete records of a collection.

These are what the HTTP routes, batch, hooks and the CLI call. Each write runs in one unit of
work (``db.write()``); nothing is written unless every check passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Table, and_, delete, func, insert, literal, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ..core.clock import now_str
from ..core.errors import (
    REQUIRED,
    BadRequestError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from ..core.events import Hooks, RecordEvent
from ..core.ids import new_record_id, random_string
from ..core.types import RequestInfo
from ..files import Storage
from ..security.passwords import hash_password, verify_password
from .collections import CollectionStore
from .db import Database, after_commit
from .encryption import blind_labels, field_of_column, seal_row
from .fields import SaveContext, get_type
from .fields.base import Invalid
from .fields.textual import generate_from_pattern
from .indexes import IndexParseError, parse_index
from .models import Collection
from .record_files import PendingFiles, extract_uploads
from .record_input import apply_body, row_values, split_key, to_db
from .record_output import output_plan, row_to_json
from .record_queries import RecordQueries
from .record_rules import filter_condition, rule_condition, sort_clauses
from .schema import rowid_column

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 30
INT64_MAX = 2**63 - 1


@dataclass
class ListParams:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    skip_total: bool = False
    sort: str = ""
    filter: str = ""

    @property
    def offset(self) -> int:
        return page_offset(self.page, self.per_page)


def page_offset(page: int, per_page: int) -> int:
    """The first row of a page, computed as PocketBase computes it: ``(page-1)*perPage`` in Go's
    wrapping int64 arithmetic, a negative result reading as 0 (SQLite's OFFSET rule). So a page
    past the data is empty, and a page so large that the product wraps is the first page again:
    PocketBase's answers, and never a number too big to bind."""
    wrapped = ((page - 1) * per_page + INT64_MAX + 1) % 2**64 - INT64_MAX - 1
    return max(wrapped, 0)


@dataclass
class ListResult:
    items: list[dict[str, Any]]
    page: int
    per_page: int
    total_items: int
    total_pages: int


def rule_body(c: Collection, body: dict[str, Any], values: dict[str, Any], changed: set[str]) -> dict[str, Any]:
    """``@request.body`` for rules: submitted fields under their plain names with their final
    (modifier-resolved, coerced) values; other submitted keys as they came."""
    out: dict[str, Any] = {}
    fields = c.field_map
    for key, raw in body.items():
        name = split_key(key)[0]
        if name in fields:
            continue
        out[key] = raw
    for name in changed:
        value = values.get(name)
        f = fields[name]
        if f.type in ("json", "geoPoint") and isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        out[name] = value
    if c.is_auth:
        for key in ("password", "passwordConfirm", "oldPassword"):
            if key in body:
                out[key] = body[key]
    return out


def _shared_condition(cond: ColumnElement[bool]) -> bool:
    try:
        from .resolver import is_shared_condition
    except ImportError:  # as record_rules: without the rule language there is nothing shared
        return False
    return is_shared_condition(cond)


class RecordService:
    def __init__(self, db: Database, collections: CollectionStore, hooks: Hooks | None = None,
                 storage: Callable[[], Storage] | None = None) -> None:
        self.db = db
        self.collections = collections
        self.hooks = hooks or Hooks()
        self.storage = storage  # the current file storage (it follows the runtime S3 settings)
        self.queries = RecordQueries(db)

    # --- helpers ---
    def table(self, c: Collection) -> Table:
        return self.collections.records_table(c)

    def _cond(self, c: Collection, table: Any, rule: str | None, info: RequestInfo) -> ColumnElement[bool] | None:
        return rule_condition(c, table, rule, info, self.collections.find, self.db.dialect)

    def _check_null_rule(self, c: Collection, rule_name: str, info: RequestInfo) -> None:
        if c.rules.get(rule_name) is None and not info.is_superuser:
            raise ForbiddenError("Only superusers can perform this action.")

    def _email_visibility(self, c: Collection, info: RequestInfo, rows: Sequence[Any] = ()) -> Any:
        """Whether a row's ``email`` shows whatever its ``emailVisibility``: to superusers, to the
        record itself, and to callers who pass the collection's ``manageRule`` for that record
        (one query over ``rows``). Column 0 of a row is always ``id``."""
        if not c.is_auth or info.is_superuser:
            return True
        auth_id = info.auth.id if info.auth and info.auth.collection_id == c.id else None
        managed: set[str] = set()
        rule = c.rules.get("manageRule")
        if rule and info.auth is not None:
            ids = [row[0] for row in rows if row[0] != auth_id]
            if ids:
                managed = self._managed_ids(c, rule, ids, info)
        if auth_id is None and not managed:
            return False
        return lambda row: row[0] == auth_id or row[0] in managed

    def _managed_ids(self, c: Collection, rule: str, ids: list[str], info: RequestInfo) -> set[str]:
        table = self.table(c)
        cond = self._cond(c, table, rule, info)
        stmt = select(table.c.id).where(table.c.id.in_(ids))
        if cond is not None:
            stmt = stmt.where(cond)
        with self.db.read() as conn:
            return {row[0] for row in conn.execute(stmt)}

    def to_json(self, c: Collection, row: Any, info: RequestInfo) -> dict[str, Any]:
        plan = output_plan(c, info.is_superuser)
        return row_to_json(plan, row, self._email_visibility(c, info, (row,)))

    # --- reads ---
    def list_records(self, c: Collection, params: ListParams, info: RequestInfo) -> ListResult:
        self._check_null_rule(c, "listRule", info)
        table = self.table(c)
        conds: list[ColumnElement[bool]] = []
        rule = self._cond(c, table, c.rules.get("listRule"), info)
        if rule is not None:
            conds.append(rule)
        flt = filter_condition(c, table, params.filter, info, self.collections.find, self.db.dialect)
        if flt is not None:
            conds.append(flt)
        where = and_(true(), *conds) if conds else None
        plan = output_plan(c, info.is_superuser)
        order = sort_clauses(c, table, params.sort, info, self.collections.find, self.db.dialect)
        limit, offset = params.per_page, params.offset
        total = -1
        if not order and all(_shared_condition(cond) for cond in conds):
            # the common page (no sort; no condition, or ones that depend on nothing per request):
            # statements compiled once per schema
            page, count_all = self.queries.page(table, plan, c.is_view, tuple(conds))
            with self.db.read_rows(snapshot=not params.skip_total) as reader:
                rows = reader.all(page, {"limit": limit, "offset": offset})
                if not params.skip_total:
                    total = reader.scalar(count_all)
        else:
            stmt = self.queries.columns(table, plan)
            if where is not None:
                stmt = stmt.where(where)
            if not c.is_view:  # insertion order by default, and as the tie-breaker of any sort
                order = [*order, rowid_column(table, self.db.dialect)]
            stmt = stmt.order_by(*order).limit(limit).offset(offset)
            with self.db.read() as conn:
                rows = conn.execute(stmt).all()
                if not params.skip_total:
                    count = select(func.count()).select_from(table)
                    if where is not None:
                        count = count.where(where)
                    total = conn.execute(count).scalar_one()
        show_email = self._email_visibility(c, info, rows)
        items = [row_to_json(plan, row, show_email) for row in rows]
        pages = -1 if params.skip_total else (total + params.per_page - 1) // params.per_page
        return ListResult(items, params.page, params.per_page, total, pages)

    def find_record_by_id(self, c: Collection, record_id: str, info: RequestInfo,
                          rule_name: str = "viewRule") -> dict[str, Any]:
        self._check_null_rule(c, rule_name, info)
        table = self.table(c)
        plan = output_plan(c, info.is_superuser)
        by_id = self.queries.by_id(table, plan)
        rule = self._cond(c, table, c.rules.get(rule_name), info)
        row: Any
        if rule is None or _shared_condition(rule):  # no condition, or one that depends on nothing per request
            q = by_id if rule is None else self.queries.by_id_where(table, plan, rule)
            with self.db.read_rows() as reader:
                row = reader.first(q, {"record_id": record_id})
        else:
            with self.db.read() as conn:
                row = conn.execute(by_id.stmt.where(rule), {"record_id": record_id}).first()
        if row is None:
            raise NotFoundError()
        return row_to_json(plan, row, self._email_visibility(c, info, (row,)))

    def auth_record_json(self, c: Collection, record_id: str, superuser: bool) -> dict[str, Any]:
        """An auth record as sign-in responses show it: email always included."""
        plan = output_plan(c, superuser)
        table = self.table(c)
        with self.db.read() as conn:
            row = conn.execute(select(*[table.c[n] for n in plan.columns]).where(table.c.id == record_id)).one()
        return row_to_json(plan, row, True)

    def _load_values(self, conn: Connection, c: Collection, table: Table, record_id: str,
                     cond: ColumnElement[bool] | None = None, lock: bool = False) -> dict[str, Any] | None:
        stmt = select(table).where(table.c.id == record_id)
        if cond is not None:
            stmt = stmt.where(cond)
        if lock and self.db.dialect == "postgresql":
            stmt = stmt.with_for_update(of=table)
        row = conn.execute(stmt).first()
        return None if row is None else row_values(c, row)

    # --- writes ---
    def _allowed_keys(self, c: Collection, info: RequestInfo) -> set[str]:
        return {f.name for f in c.fields if info.is_superuser or not f.hidden or (c.is_auth and f.name == "password")}

    def create_record(self, c: Collection, body: dict[str, Any], info: RequestInfo,
                      from_form: bool = False) -> dict[str, Any]:
        self._check_null_rule(c, "createRule", info)
        if c.is_view:
            raise BadRequestError("Unsupported collection type.")
        table = self.table(c)
        allowed = self._allowed_keys(c, info)
        body, uploads = extract_uploads(c, body, allowed)
        pending = PendingFiles(self.storage, uploads)
        ctx = SaveContext(is_create=True, is_superuser=info.is_superuser, from_form=from_form, uploads=uploads)
        values: dict[str, Any] = {}
        for f in c.fields:
            handler = get_type(f.type)
            assert handler is not None
            values[f.name] = handler.empty(f) if f.type != "json" else None
            if f.type == "geoPoint":
                values[f.name] = '{"lon":0,"lat":0}'
            if f.type == "number":
                values[f.name] = 0.0
        errors, _changed = apply_body(c, body, values, ctx, allowed)
        _changed |= {f.name for f in c.fields if f.name in body}
        now = now_str()
        for f in c.fields:
            if f.type == "autodate" and f.options.get("onCreate"):
                values[f.name] = now
            elif f.type == "text" and not values.get(f.name) and f.options.get("autogeneratePattern"):
                values[f.name] = generate_from_pattern(f.options["autogeneratePattern"])
        auth_errors = self._auth_create(c, body, values, info) if c.is_auth else {}
        if not values.get("id"):
            values["id"] = new_record_id()
        with self.db.write() as conn:
            if not info.is_superuser and c.rules.get("createRule"):
                rule_info = RequestInfo(auth=info.auth, method=info.method, context=info.context, query=info.query,
                                        headers=info.headers, body=rule_body(c, body, values, _changed))
                self._check_create_rule(conn, c, table, values, rule_info)
            errors = {**errors, **auth_errors}
            if errors:
                raise ValidationError("Failed to create record.", dict(errors))

            def default(e: RecordEvent) -> None:
                errs = self._validate(conn, c, e.record, ctx)
                if errs:
                    raise ValidationError("Failed to create record.", dict(errs))
                pending.store(conn, c, e.record)
                self._insert(conn, c, table, {f.name: to_db(f, e.record[f.name]) for f in c.fields})

            event = RecordEvent(collection=c, record=values, info=info, action="create", connection=conn)
            self.hooks.record_create.trigger(event, default)
            after = RecordEvent(collection=c, record=dict(values), info=info, action="create")
            after_commit(conn, lambda: self.hooks.record_after_create.trigger_safely(after), change=after)
            return self._reload_json(conn, c, table, values["id"], info)

    def _check_create_rule(self, conn: Connection, c: Collection, table: Table, values: dict[str, Any],
                           info: RequestInfo) -> None:
        """Evaluate the create rule against the would-be record (a one-row CTE)."""
        cols = []
        for f in c.fields:
            col = table.c[f.name]
            cols.append(literal(to_db(f, values[f.name]), col.type).label(f.name))
        cols.extend(blind_labels(c, values, table))  # what rules compare encrypted fields on
        cte = select(*cols).cte("_kb_new_record")  # never shadow the real table: rules may join it
        cond = self._cond(c, cte, c.rules.get("createRule"), info)
        if cond is None:
            return
        if conn.execute(select(literal(1)).select_from(cte).where(cond).limit(1)).first() is None:
            raise BadRequestError("Failed to create record.")

    def _auth_create(self, c: Collection, body: dict[str, Any], values: dict[str, Any],
                     info: RequestInfo) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {}
        password, confirm = body.get("password"), body.get("passwordConfirm")
        if not password:
            errors["password"] = REQUIRED
        if not info.is_superuser and not confirm:
            errors["passwordConfirm"] = REQUIRED
        elif confirm is not None and password != confirm and password:
            errors["passwordConfirm"] = FieldError("validation_values_mismatch", "Values don't match.")
        if password and "password" not in errors:
            err = self._password_error(c, password)
            if err:
                errors["password"] = err
            else:
                values["password"] = hash_password(str(password))
        values["tokenKey"] = random_string(50)
        if c.name == "_superusers":
            values["verified"] = True
        elif values.get("verified") and not info.is_superuser:
            errors["verified"] = FieldError("validation_values_mismatch", "Values don't match.")
        return errors

    def _password_error(self, c: Collection, password: Any) -> FieldError | None:
        f = c.get_field("password")
        handler = get_type("password")
        if f is None or handler is None:
            return None
        if not isinstance(password, str):
            return FieldError("validation_invalid_value", "Must be a string.")
        try:
            handler.validate(f, password, SaveContext(is_create=True))
        except Invalid as exc:
            return exc.error
        return None

    def _validate(self, conn: Connection, c: Collection, values: dict[str, Any],
                  ctx: SaveContext) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {}
        for f in c.fields:
            handler = get_type(f.type)
            if handler is None or f.type == "autodate":
                continue
            value = values.get(f.name)
            if c.is_auth and f.name == "password":
                if not value:
                    errors[f.name] = REQUIRED
                continue
            if handler.is_empty(f, value):
                if f.required:
                    errors[f.name] = REQUIRED
                continue  # minSelect too applies only to a non-empty value
            try:
                handler.validate(f, value, ctx)
            except Invalid as exc:
                errors[f.name] = exc.error
                continue
            if f.type == "relation" and value:
                err = self._check_relation(conn, f.options.get("collectionId", ""), value)
                if err:
                    errors[f.name] = err
        if "id" not in errors and ctx.is_create:
            rid = values.get("id", "")
            if not isinstance(rid, str) or not rid:
                values["id"] = new_record_id()
            elif not re.fullmatch(r"[a-z0-9]+", rid) and c.get_field("id") and (
                    c.get_field("id").options.get("pattern") == "^[a-z0-9]+$"):  # type: ignore[union-attr]
                errors["id"] = FieldError("validation_invalid_format", "Invalid value format.")
        return errors

    def _check_relation(self, conn: Connection, collection_id: str, value: Any) -> FieldError | None:
        target = self.collections.find(collection_id)
        if target is None:
            return FieldError("validation_missing_rel_collection", "Missing or invalid relation collection.")
        ids = value if isinstance(value, list) else [value]
        ttable = self.table(target)
        found = conn.execute(select(func.count()).select_from(ttable).where(ttable.c.id.in_(ids))).scalar_one()
        if found != len(set(ids)):
            return FieldError("validation_missing_rel_records",
                              "Failed to find all relation records with the provided ids.")
        return None

    def _insert(self, conn: Connection, c: Collection, table: Table, row: dict[str, Any]) -> None:
        try:
            self._execute_fenced(conn, insert(table).values(seal_row(c, row["id"], row)))
        except IntegrityError as exc:
            raise ValidationError("Failed to create record.", self._unique_errors(c, exc)) from exc

    def _execute_fenced(self, conn: Connection, stmt: Any) -> None:
        """Execute a statement that may hit a unique index without poisoning the transaction."""
        if self.db.is_sqlite:  # a constraint failure aborts only the statement in SQLite
            conn.execute(stmt)
        else:  # PostgreSQL aborts the whole transaction: fence the statement with a savepoint
            with conn.begin_nested():
                conn.execute(stmt)

    def _unique_errors(self, c: Collection, exc: IntegrityError) -> dict[str, Any]:
        cols: list[str] = []
        orig = exc.orig
        text = str(orig)
        m = re.search(r"UNIQUE constraint failed: (.+)", text)
        if m:
            cols = [field_of_column(c, part.strip().split(".", 1)[-1]) for part in m.group(1).split(",")]
        else:
            diag = getattr(orig, "diag", None)
            name = getattr(diag, "constraint_name", "") or ""
            if name.endswith("_pkey"):
                cols = ["id"]
            for sql in c.indexes:
                try:
                    parsed = parse_index(sql)
                except IndexParseError:
                    continue
                if parsed.name == name:
                    cols = [col.name for col in parsed.columns]
        if not cols:
            raise BadRequestError() from exc
        return {col: FieldError("validation_not_unique", "Value must be unique.") for col in cols}

    def _reload_json(self, conn: Connection, c: Collection, table: Table, record_id: str,
                     info: RequestInfo) -> dict[str, Any]:
        plan = output_plan(c, info.is_superuser)
        row = conn.execute(select(*[table.c[n] for n in plan.columns]).where(table.c.id == record_id)).one()
        return row_to_json(plan, row, self._email_visibility(c, info, (row,)))

    def update_record(self, c: Collection, record_id: str, body: dict[str, Any], info: RequestInfo,
                      from_form: bool = False) -> dict[str, Any]:
        self._check_null_rule(c, "updateRule", info)
        if c.is_view:
            raise BadRequestError("Unsupported collection type.")
        table = self.table(c)
        with self.db.write() as conn:
            old = self._load_values(conn, c, table, record_id, None, lock=True)
            if old is None:
                raise NotFoundError()
            values = dict(old)
            allowed = self._allowed_keys(c, info)
            body, uploads = extract_uploads(c, body, allowed)
            pending = PendingFiles(self.storage, uploads)
            ctx = SaveContext(is_create=False, is_superuser=info.is_superuser, from_form=from_form, old=old,
                              uploads=uploads)
            errors, changed = apply_body(c, body, values, ctx, allowed)
            rule = c.rules.get("updateRule")
            if rule and not info.is_superuser:
                # The rule sees the stored record and @request.body as resolved final values.
                rule_info = RequestInfo(auth=info.auth, method=info.method, context=info.context, query=info.query,
                                        headers=info.headers, body=rule_body(c, body, values, changed))
                cond = self._cond(c, table, rule, rule_info)
                stmt = select(table.c.id).where(table.c.id == record_id)
                if cond is not None and conn.execute(stmt.where(cond)).first() is None:
                    raise NotFoundError()
            if "id" in changed and values["id"] != old["id"]:
                errors["id"] = FieldError("validation_pk_change", "The record primary key cannot be changed.")
            if c.is_auth:
                errors.update(self._auth_update(conn, c, table, body, old, values, info))
            if errors:
                raise ValidationError("Failed to update record.", dict(errors))

            def default(e: RecordEvent) -> None:
                errs = self._validate(conn, c, e.record, ctx)
                if errs:
                    raise ValidationError("Failed to update record.", dict(errs))
                now = now_str()
                for f in c.fields:
                    if f.type == "autodate" and f.options.get("onUpdate"):
                        e.record[f.name] = now
                pending.store(conn, c, e.record)
                row = {f.name: to_db(f, e.record[f.name]) for f in c.fields
                       if f.name != "id" and e.record.get(f.name) != old.get(f.name)}
                if row:
                    try:
                        self._execute_fenced(conn, update(table).where(table.c.id == record_id).values(
                            seal_row(c, record_id, row)))
                    except IntegrityError as exc:
                        raise ValidationError("Failed to update record.", self._unique_errors(c, exc)) from exc

            event = RecordEvent(collection=c, record=values, old=old, info=info, action="update", connection=conn)
            self.hooks.record_update.trigger(event, default)
            after = RecordEvent(collection=c, record=dict(values), old=old, info=info, action="update")
            after_commit(conn, lambda: self.hooks.record_after_update.trigger_safely(after), change=after)
            return self._reload_json(conn, c, table, record_id, info)

    def _is_manager(self, conn: Connection, c: Collection, table: Table, record_id: str, info: RequestInfo) -> bool:
        if info.is_superuser:
            return True
        rule = c.rules.get("manageRule")
        if not rule or info.auth is None:
            return False
        cond = self._cond(c, table, rule, info)
        stmt = select(table.c.id).where(table.c.id == record_id)
        if cond is not None:
            stmt = stmt.where(cond)
        return conn.execute(stmt).first() is not None

    def _auth_update(self, conn: Connection, c: Collection, table: Table, body: dict[str, Any],
                     old: dict[str, Any], values: dict[str, Any], info: RequestInfo) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {}
        manager = self._is_manager(conn, c, table, old["id"], info)
        if "password" in body:
            password = body.get("password")
            if not manager:
                oldpw = body.get("oldPassword")
                if not oldpw:
                    errors["oldPassword"] = REQUIRED
                elif not verify_password(old.get("password") or "", str(oldpw)):
                    errors["oldPassword"] = FieldError("validation_invalid_old_password",
                                                       "Missing or invalid old password.")
            if body.get("passwordConfirm") != password:
                errors["passwordConfirm"] = FieldError("validation_values_mismatch", "Values don't match.")
            err = self._password_error(c, password) if password else REQUIRED
            if err:
                errors["password"] = err
            if not errors:
                values["password"] = hash_password(str(password))
                values["tokenKey"] = random_string(50)
        if values.get("email") != old.get("email"):
            if not manager:
                errors["email"] = FieldError("validation_values_mismatch", "Values don't match.")
            else:
                values["tokenKey"] = random_string(50)
        if values.get("verified") != old.get("verified") and not manager:
            errors["verified"] = FieldError("validation_values_mismatch", "Values don't match.")
        return errors

    def delete_record(self, c: Collection, record_id: str, info: RequestInfo) -> None:
        self._check_null_rule(c, "deleteRule", info)
        if c.is_view:
            raise BadRequestError("Unsupported collection type.")
        table = self.table(c)
        with self.db.write() as conn:
            cond = self._cond(c, table, c.rules.get("deleteRule"), info)
            stmt = select(table.c.id).where(table.c.id == record_id)
            if cond is not None:
                stmt = stmt.where(cond)
            if conn.execute(stmt).first() is None:
                raise NotFoundError()
            old = self._load_values(conn, c, table, record_id, None, lock=True) or {"id": record_id}
            event = RecordEvent(collection=c, record=old, info=info, action="delete", connection=conn)
            self.hooks.record_delete.trigger(
                event, lambda e: self._delete_cascade(conn, c, [record_id], depth=0, info=info))

    def _delete_cascade(self, conn: Connection, c: Collection, ids: list[str], depth: int,
                        info: RequestInfo | None = None) -> None:
        if depth > 32:
            raise BadRequestError("Failed to delete record. Too deep cascade.")
        for other in self.collections.all():
            if other.is_view:
                continue
            for f in other.fields:
                if f.type != "relation" or f.options.get("collectionId") != c.id:
                    continue
                self._unlink(conn, other, f, ids, depth, info)
        table = self.table(c)
        if len(self.hooks.record_after_delete):
            gone = [row_values(c, r) for r in conn.execute(select(table).where(table.c.id.in_(ids))).all()]
            for values in gone:
                ev = RecordEvent(collection=c, record=values, info=info, action="delete")
                after_commit(conn, lambda ev=ev: self.hooks.record_after_delete.trigger_safely(ev), change=ev)
        conn.execute(delete(table).where(table.c.id.in_(ids)))

    def _unlink(self, conn: Connection, other: Collection, f: Any, ids: list[str], depth: int,
                info: RequestInfo | None) -> None:
        otable = self.table(other)
        col = otable.c[f.name]
        if f.multiple:
            from sqlalchemy import or_

            cond = or_(*[col.contains('"' + i + '"', autoescape=True) for i in ids])
        else:
            cond = col.in_(ids)
        rows = conn.execute(select(otable.c.id, col).where(cond)).all()
        to_delete: list[str] = []
        for rid, value in rows:
            current = row_values(other, {f.name: value})[f.name]
            remaining = [v for v in current if v not in ids] if f.multiple else ("" if current in ids else current)
            if remaining in ("", []):
                if f.options.get("cascadeDelete"):
                    to_delete.append(rid)
                    continue
                if f.required:
                    raise BadRequestError("Failed to delete record. Make sure that the record is not part of a "
                                          "required relation reference.")
            if remaining != current:
                conn.execute(update(otable).where(otable.c.id == rid).values({f.name: to_db(f, remaining)}))
        if to_delete:
            self._delete_cascade(conn, other, to_delete, depth + 1, info)

    def truncate(self, c: Collection) -> None:
        if c.is_view:
            raise BadRequestError("View collections cannot be truncated since they don't store their own records.")
        table = self.table(c)
        with self.db.write() as conn:
            ids = [r[0] for r in conn.execute(select(table.c.id)).all()]
            try:
                with conn.begin_nested():
                    if ids:
                        self._delete_cascade(conn, c, ids, 0)
            except BadRequestError as exc:
                raise BadRequestError("Failed to truncate collection (most likely due to required cascade "
                                      "delete record references).") from exc
