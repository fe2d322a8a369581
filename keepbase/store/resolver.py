"""The rule-language ``Resolver`` for collections, plus ``build_filter``/``build_sort``/``validate_rule``.

Field paths become columns of the record's table, JSON extractions, or joins registered in a
``JoinSet`` (see ``keepbase.rules.joins``) that ``build_filter`` wraps into one correlated
``EXISTS``; the records query itself never needs a join or ``DISTINCT``.

Access (client ``filter``/``sort`` of a non-superuser, ``is_rule=False``):

* ``@collection.``/``@request.`` anywhere in the string → 403;
* hidden fields (and an auth collection's ``password``/``tokenKey``) → 400;
* comparisons on an auth collection's ``email`` also require ``emailVisibility = 1``;
* every joined collection must be listable: ``listRule: null`` → 400, otherwise the joined rows
  are limited to ``id = '' OR (<listRule>)`` (compiled with full access).

Rules (``is_rule=True``) and superusers see everything.

Encrypted fields (``store.encryption``) resolve to their blind index column as a ``SealedOperand``:
the compiler here (``SealedCompiler``) lets them take part only in ``=``/``!=`` (and ``?=``/``?!=``)
against a value, which it turns into that value's blind indexes; any other operator, a modifier
other than ``:isset``/``:changed``, a JSON path into one, a comparison with another column, and a
sort are a 400 naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Float, MetaData, Table, Text, and_, case, cast, func, literal, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from keepbase.core.errors import ForbiddenError
from keepbase.core.types import RequestInfo
from keepbase.rules.ast import Call, Chain, Identifier
from keepbase.rules.compiler import Compiler, parse_cached
from keepbase.rules.errors import FilterError
from keepbase.rules.joins import JoinSet, json_array_length, json_elements, json_path
from keepbase.rules.lexer import IDENT_RE as _IDENT_RE
from keepbase.rules.limits import MAX_RELATION_DEPTH
from keepbase.rules.macros import is_macro
from keepbase.rules.parser import parse_sort
from keepbase.rules.pgtypes import json_text
from keepbase.rules.request_values import body_items, body_value, go_json
from keepbase.rules.resolver import Dialect, Operand, constant_int, null_operand, static_value

from .models import MULTI_TYPES, Collection, Field
from .schema import blind_index_name, rowid_column, table_for, view_table_for

Lookup = Callable[[str], Collection | None]
Start = Callable[[JoinSet], tuple[Collection, FromClause, bool]]

_PLAIN_AUTH_FIELDS = ("id", "collectionId", "collectionName", "email", "emailVisibility", "verified")
_AUTH_HIDDEN = frozenset({"password", "tokenKey"})
_VIA_RE = re.compile(r"^(\w+)_via_(\w+)$")
_MODIFIERS = frozenset({"", "lower", "length", "each", "isset", "changed"})


def _split_modifier(prop: str) -> tuple[str, str]:
    name, _, modifier = prop.partition(":")
    return name, modifier


def field_operand(f: Field | None, expr: ColumnElement[Any]) -> Operand:
    """A stored column typed by its field (``None``: an id column)."""
    kind = f.type if f is not None else "text"
    if kind == "number":
        return Operand(expr, "real", "numeric")
    if kind == "bool":
        return Operand(expr, "int", "numeric")
    return Operand(expr, "text", "text", no_coalesce=kind in ("json", "geoPoint"))


@dataclass(frozen=True)
class SealedOperand(Operand):
    """An encrypted field: ``expr`` is its blind index column; ``blind`` gives the blind indexes a
    value may be stored under."""

    field_name: str = ""
    blind: Callable[[Any], list[str]] | None = None
    refused: str = ""
    """Why any comparison with it is refused (a modifier or a JSON path): raised by the compiler,
    whose errors reach the client, unlike the resolver's, which it rewraps."""


def sealed_error(name: str, what: str) -> FilterError:
    message = (f'The field "{name}" is encrypted: it can only be compared with = or != (?= or ?!=) to a value, '
               f"not {what}.")
    return FilterError(message, message)


def _sealed_operand(collection: Collection, field: Field, cur: FromClause, refused: str = "") -> SealedOperand:
    cipher = collection.cipher
    if cipher is not None:
        def blind(value: Any) -> list[str]:
            return list(cipher.blind_literals(collection, field, value))
    else:  # a rule checked while its collection is saved: only its shape matters
        def blind(value: Any) -> list[str]:
            return ["-"]
    return SealedOperand(cur.c[blind_index_name(field)], "text", "text", field_name=field.name, blind=blind,
                         refused=refused)


class SealedCompiler(Compiler):
    """The rule compiler, with equality on encrypted fields done through their blind index."""

    def build(self, left: Operand, op: str, right: Operand) -> ColumnElement[bool]:
        sealed = left if isinstance(left, SealedOperand) else right if isinstance(right, SealedOperand) else None
        if sealed is None:
            return super().build(left, op, right)
        other = right if sealed is left else left
        if sealed.refused:
            raise sealed_error(sealed.field_name, sealed.refused)
        if op not in ("=", "!="):
            raise sealed_error(sealed.field_name, f'with the operator "{op}"')
        if isinstance(other, SealedOperand) or not (other.literal or other.empty):
            raise sealed_error(sealed.field_name, "to another field or expression")
        assert sealed.blind is not None
        values = sealed.blind(other.value) if other.literal else []
        col = sealed.expr
        # one plain parameter per key (no expanding IN: the statement may be compiled once and reused)
        if op == "=":
            if not values:
                return or_(col == literal("", Text()), col.is_(None)).self_group()
            return or_(*[col == literal(v, Text()) for v in values]).self_group()
        if not values:
            return and_(col != literal("", Text()), col.is_not(None)).self_group()
        return or_(col.is_(None), and_(*[col != literal(v, Text()) for v in values])).self_group()


def _id_equals(value: ColumnElement[Any]) -> Callable[[FromClause], ColumnElement[bool]]:
    def on(alias: FromClause) -> ColumnElement[bool]:
        return alias.c.id == value

    return on


def _unique_single(collection: Collection, field_name: str) -> bool:
    pattern = re.compile(
        rf"^\s*CREATE\s+UNIQUE\s+INDEX\b.*\(\s*[`\"\[]?{re.escape(field_name)}[`\"\]]?\s*\)", re.I | re.S
    )
    return any(pattern.search(ix) and not re.search(r"\bWHERE\b", ix, re.I) for ix in collection.indexes)


class CollectionResolver:
    """Implements ``keepbase.rules.Resolver`` for one collection and one request."""

    def __init__(
        self,
        collection: Collection,
        table: FromClause,
        info: RequestInfo,
        lookup: Lookup,
        dialect: str,
        *,
        is_rule: bool,
    ) -> None:
        self.collection = collection
        self.table = table
        self.info = info
        self.lookup = lookup
        self._dialect: Dialect = "postgresql" if dialect == "postgresql" else "sqlite"
        self.full_access = is_rule or info.is_superuser
        self.shared = JoinSet()
        self._tables: dict[str, Table] = {}

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def finalize(self, expr: ColumnElement[bool]) -> ColumnElement[bool]:
        return self.shared.wrap(expr, self.table)

    # ------------------------------------------------------------------ entry

    def resolve(self, name: str) -> Operand:
        props = name.split(".")
        if props[0] == "@request":
            return self._request(props)
        if props[0] == "@collection":
            return self._collection_ref(props)
        if props[0].startswith("@") or "" in props:
            raise FilterError(f'unknown field "{name}"')
        return self._walk_path(lambda js: (self.collection, self.table, False), props, "")

    def _walk_path(self, start: Start, props: list[str], prefix: str) -> Operand:
        op, multi = self._walk(self.shared, start, props, prefix)
        if multi:
            fresh = JoinSet()
            mm, _ = self._walk(fresh, start, props, prefix)
            op = replace(op, multi=fresh.values(mm.expr, self.table))
        return op

    # ------------------------------------------------------------------ tables

    def table_of(self, collection: Collection) -> Table:
        tbl = self._tables.get(collection.id)
        if tbl is None:
            md = MetaData()
            tbl = (
                view_table_for(collection, md)
                if collection.is_view
                else table_for(collection, md, self.dialect)
            )
            self._tables[collection.id] = tbl
        return tbl

    def _target(self, field: Field) -> Collection:
        ref = str(field.options.get("collectionId") or "")
        target = self.lookup(ref) if ref else None
        if target is None:
            raise FilterError(f'missing relation collection for field "{field.name}"')
        return target

    def _join_collection(
        self, js: JoinSet, key: str, collection: Collection, on: Callable[[FromClause], ColumnElement[bool]]
    ) -> FromClause:
        existing = js.get(key)
        if existing is not None:
            return existing
        alias = self.table_of(collection).alias()
        cond = on(alias)
        rule = self._list_rule(collection, alias)
        return js.add(key, alias, cond if rule is None else and_(cond, rule))

    def _list_rule(self, collection: Collection, alias: FromClause) -> ColumnElement[bool] | None:
        if self.full_access:
            return None
        rule = collection.rules.get("listRule")
        if rule is None:
            raise FilterError(f'static collection rule for collection "{collection.name}"')
        if rule.strip() == "":
            return None
        sub = CollectionResolver(collection, alias, self.info, self.lookup, self.dialect, is_rule=True)
        expr = sub.finalize(SealedCompiler(sub).compile(parse_cached(rule)))
        return or_(alias.c.id == literal(""), expr).self_group()

    def _check_access(self, collection: Collection, field: Field) -> None:
        if self.full_access:
            return
        if field.hidden or (collection.is_auth and field.name in _AUTH_HIDDEN):
            raise FilterError(f'hidden field "{field.name}"')

    # ------------------------------------------------------------------ paths

    def _walk(self, js: JoinSet, start: Start, props: list[str], prefix: str) -> tuple[Operand, bool]:
        collection, cur, multi = start(js)
        depth = 0
        for i, prop in enumerate(props):
            last = i == len(props) - 1
            name, modifier = _split_modifier(prop)
            field = collection.get_field(name)
            if field is None:
                via = _VIA_RE.match(name)
                if via is None or last or modifier:
                    raise FilterError(f'unknown field "{name}"')
                depth += 1
                collection, cur, is_multi = self._back_relation(
                    js, cur, collection, via, prefix + ".".join(props[: i + 1])
                )
                multi = multi or is_multi
                continue
            self._check_access(collection, field)
            if last:
                op, is_multi = self._final(js, collection, cur, field, modifier, prefix + ".".join(props))
                return op, multi or is_multi
            if modifier:
                raise FilterError(f'invalid modifier position in "{prop}"')
            if field.options.get("encrypted") and not collection.is_view:
                return _sealed_operand(collection, field, cur, f'through the path "{".".join(props)}"'), multi
            if field.type in ("json", "geoPoint"):
                expr = json_path(cur.c[field.name], props[i + 1 :], self.dialect)
                return Operand(expr, "json", None, no_coalesce=True), multi
            if field.type != "relation":
                raise FilterError(f'field "{name}" is not a relation')
            if not field.multiple and i + 2 == len(props) and props[i + 1] == "id":
                return field_operand(field, cur.c[field.name]), multi
            depth += 1
            if depth > MAX_RELATION_DEPTH:
                raise FilterError(f"max relation depth ({MAX_RELATION_DEPTH}) reached")
            target = self._target(field)
            key = prefix + ".".join(props[: i + 1])
            source = cur.c[field.name]
            if field.multiple:
                source = js.elements(key + "#je", source, self.dialect).c.value
                multi = True
            cur = self._join_collection(js, key, target, _id_equals(source))
            collection = target
        raise FilterError("empty field path")

    def _back_relation(
        self, js: JoinSet, cur: FromClause, collection: Collection, via: re.Match[str], key: str
    ) -> tuple[Collection, FromClause, bool]:
        back = self.lookup(via.group(1))
        field = back.get_field(via.group(2)) if back is not None else None
        if (
            back is None
            or field is None
            or field.type != "relation"
            or field.options.get("collectionId")
            not in (
                collection.id,
                collection.name,
            )
        ):
            raise FilterError(f'invalid back relation field "{via.group(0)}"')
        self._check_access(back, field)
        cur_id = cur.c.id
        if field.multiple:

            def on(a: FromClause) -> ColumnElement[bool]:
                elements = json_elements(a.c[field.name], self.dialect)
                return cur_id.in_(elements.select().with_only_columns(elements.c.value).scalar_subquery())

            return back, self._join_collection(js, key, back, on), True
        alias = self._join_collection(js, key, back, lambda a: a.c[field.name] == cur_id)
        return back, alias, not _unique_single(back, field.name)

    def _final(
        self, js: JoinSet, collection: Collection, cur: FromClause, field: Field, modifier: str, key: str
    ) -> tuple[Operand, bool]:
        if modifier not in _MODIFIERS:
            raise FilterError(f'unknown modifier "{modifier}"')
        if field.options.get("encrypted") and not collection.is_view:
            refused = f'with the ":{modifier}" modifier' if modifier not in ("", "isset", "changed") else ""
            return _sealed_operand(collection, field, cur, refused), False
        col = cur.c[field.name]
        op = field_operand(field, col)
        if not self.full_access and collection.is_auth and field.name == "email":
            visible = cur.c.emailVisibility == literal(1)
            op = replace(op, after=lambda e: and_(e, visible).self_group())
        if modifier == "lower":
            return replace(op, expr=func.lower(col), cls="text", affinity=None, no_coalesce=False), False
        if modifier == "length":
            if not field.multiple:
                raise FilterError(f'field "{field.name}" does not support the :length modifier')
            return replace(op, expr=json_array_length(col, self.dialect), cls="int", affinity=None), False
        if modifier == "each":
            if field.type not in MULTI_TYPES:
                raise FilterError(f'field "{field.name}" does not support the :each modifier')
            if not field.multiple:
                return op, False
            je = js.elements(key + "#each", col, self.dialect)
            return replace(op, expr=je.c.value, affinity=None), True
        return op, False  # "", and :isset/:changed which mean nothing on record fields

    # ------------------------------------------------------------------ @collection

    def _collection_ref(self, props: list[str]) -> Operand:
        if len(props) < 3 or not props[1]:
            raise FilterError(f'invalid @collection field "{".".join(props)}"')
        name, _, alias = props[1].partition(":")
        target = self.lookup(name)
        if target is None:
            raise FilterError(f'unknown collection "{name}"')
        key = f"@collection.{name}:{alias}" if alias else f"@collection.{name}"

        def start(js: JoinSet) -> tuple[Collection, FromClause, bool]:
            return target, self._join_collection(js, key, target, lambda a: true()), True

        return self._walk_path(start, props[2:], key + ".")

    # ------------------------------------------------------------------ @request

    def _request(self, props: list[str]) -> Operand:
        if len(props) < 2:
            raise FilterError("invalid @request field")
        head, modifier = _split_modifier(props[1])
        info = self.info
        if head in ("context", "method") and len(props) == 2:
            return self._static(info.context if head == "context" else info.method, modifier, True)
        if modifier:
            raise FilterError(f'invalid modifier position in "{props[1]}"')
        if head in ("headers", "query") and len(props) >= 3:
            source = info.headers if head == "headers" else info.query
            key, modifier = _split_modifier(props[2])
            present = len(props) == 3 and key in source
            return self._static(source.get(key) if present else None, modifier, present)
        if head == "body" and len(props) >= 3:
            return self._body(props)
        if head == "auth" and len(props) >= 3:
            return self._auth(props)
        raise FilterError(f'unknown field "{".".join(props)}"')

    def _static(self, value: Any, modifier: str, present: bool) -> Operand:
        if modifier == "isset":
            return constant_int(1 if present else 0)
        if modifier not in ("", "lower"):
            raise FilterError(f'unsupported modifier "{modifier}"')
        if isinstance(value, list | dict):
            value = go_json(value)
        op = static_value(float(value) if isinstance(value, int) and not isinstance(value, bool) else value)
        if modifier == "lower" and op.literal:
            return replace(op, expr=func.lower(op.expr), cls="text")
        return op

    def _body(self, props: list[str]) -> Operand:
        body = self.info.body
        name, modifier = _split_modifier(props[2])
        field = self.collection.get_field(name)
        if len(props) > 3:
            if modifier or field is None or field.type != "relation":
                raise FilterError(f'invalid @request.body field "{".".join(props)}"')
            return self._body_relation(field, props)
        present = name in body
        if modifier == "length":
            return static_value(len(body_items(body.get(name))))
        if modifier == "each":
            items = body_items(body.get(name))
            key = f"@request.body.{name}:each"

            def values(js: JoinSet) -> ColumnElement[Any]:
                source = literal(json.dumps(items), Text())
                je = js.elements(key, source, self.dialect)
                return je.c.value

            op = Operand(values(self.shared), "text")
            if field is not None and field.multiple:
                fresh = JoinSet()
                op = replace(op, multi=fresh.values(values(fresh), self.table))
            return op
        if modifier == "changed":
            if field is None:
                raise FilterError(f'unknown field "{name}"')
            expr = SealedCompiler(self).compile(
                parse_cached(f"@request.body.{name}:isset = true && @request.body.{name} != {name}")
            )
            return Operand(case((expr, 1), else_=0), "int", None, known_non_empty=True)
        is_number = field is not None and field.type == "number"
        return self._static(body_value(body.get(name), is_number), modifier, present)

    def _body_relation(self, field: Field, props: list[str]) -> Operand:
        target = self._target(field)
        ids = body_items(self.info.body.get(field.name))
        key = f"@request.body.{field.name}"

        def start(js: JoinSet) -> tuple[Collection, FromClause, bool]:
            if field.multiple:
                source = literal(json.dumps(ids), Text())
                je = js.elements(key + "#je", source, self.dialect)
                return target, self._join_collection(js, key, target, lambda a: a.c.id == je.c.value), True
            first = ids[0] if ids else ""
            return target, self._join_collection(js, key, target, lambda a: a.c.id == literal(first)), False

        return self._walk_path(start, props[3:], key + ".")

    def _auth(self, props: list[str]) -> Operand:
        auth = self.info.auth
        name, modifier = _split_modifier(props[2])
        if len(props) == 3 and name in _PLAIN_AUTH_FIELDS:
            if auth is None:
                return self._static(None, modifier, False)
            plain = {
                "id": auth.id,
                "collectionId": auth.collection_id,
                "collectionName": auth.collection_name,
            }
            value = plain[name] if name in plain else auth.record.get(name)
            return self._static(value, modifier, name in plain or name in auth.record)
        collection = (self.lookup(auth.collection_id) or self.lookup(auth.collection_name)) if auth else None
        if auth is None or collection is None:
            return constant_int(0) if modifier == "isset" else null_operand()

        def start(js: JoinSet) -> tuple[Collection, FromClause, bool]:
            alias = js.get("@request.auth")
            if alias is None:
                fresh = self.table_of(collection).alias()
                alias = js.add("@request.auth", fresh, fresh.c.id == literal(auth.id))
            return collection, alias, False

        return self._walk_path(start, props[2:], "@request.auth.")


# ---------------------------------------------------------------------- public API


def build_filter(
    collection: Collection,
    table: Table,
    expression: str,
    info: RequestInfo,
    lookup: Lookup,
    dialect: str,
    *,
    is_rule: bool,
) -> ColumnElement[bool]:
    """Compile a filter or rule into one boolean expression over ``table``'s rows.

    ``table`` must be the very ``Table`` the caller selects from (subqueries correlate to it).
    ``lookup`` finds other collections by name or id. Raises ``FilterError`` (400) for any
    parse/resolve failure and ``ForbiddenError`` (403) for ``@collection.``/``@request.`` in a
    non-superuser's client filter. An empty expression is an error: callers handle the
    ``""`` (everyone) and ``None`` (superusers only) rules themselves.
    """
    if not is_rule and not info.is_superuser:
        for prefix in ("@collection.", "@request."):
            if prefix in expression:
                raise ForbiddenError(f"Only superusers can filter by {prefix}")
    resolver = CollectionResolver(collection, table, info, lookup, dialect, is_rule=is_rule)
    chain = parse_cached(expression)
    key = (id(table), expression, resolver.full_access, dialect)
    shareable = isinstance(table, Table) and _own_fields_only(chain)
    if shareable:
        hit = _SHARED.get(key)
        if hit is not None and hit[0] is table:
            return hit[1]
    expr = resolver.finalize(SealedCompiler(resolver).compile(chain))
    if shareable:
        if len(_SHARED) > MAX_SHARED:
            _SHARED.clear()
            _SHARED_IDS.clear()
        _SHARED[key] = (table, expr)
        _SHARED_IDS[id(expr)] = expr
    return expr


# Compiled conditions that depend on nothing but the collection's own table: rules and filters
# naming only its fields and literals (no ``@request``/``@collection``/macros, no relation paths
# into other collections, no functions). Kept per (Table, expression, access): the Table is
# rebuilt when the schema changes, so a hit is always current. Reusing the very same expression
# also lets callers cache the statements built from it (``is_shared_condition``).
MAX_SHARED = 2048
_SHARED: dict[tuple[int, str, bool, str], tuple[Table, ColumnElement[bool]]] = {}
_SHARED_IDS: dict[int, ColumnElement[bool]] = {}


def _own_fields_only(chain: Chain) -> bool:
    for item in chain.items:
        if isinstance(item, Chain):
            if not _own_fields_only(item):
                return False
            continue
        for side in (item.left, item.right):
            if isinstance(side, Call):
                return False
            if isinstance(side, Identifier) and ("." in side.name or side.name.startswith("@")):
                return False
    return True


def is_shared_condition(expr: ColumnElement[bool]) -> bool:
    """Whether ``build_filter`` keeps ``expr`` and returns the same object again."""
    return _SHARED_IDS.get(id(expr)) is expr


def build_sort(
    collection: Collection, table: Table, sort: str, info: RequestInfo, lookup: Lookup, dialect: str
) -> list[ColumnElement[Any]]:
    """``sort=-created,title`` → ORDER BY items (SQLite NULL ordering on both engines)."""
    if not info.is_superuser:
        for prefix in ("@collection.", "@request."):
            if prefix in sort:
                raise ForbiddenError(f"Only superusers can filter by {prefix}")
    out: list[ColumnElement[Any]] = []
    for item in parse_sort(sort):
        if item.name == "@random":
            out.append(func.random())
            continue
        if item.name == "@rowid":
            key = rowid_column(table, dialect)
            out.append(key.desc() if item.descending else key.asc())
            continue
        if not _IDENT_RE.match(item.name) or is_macro(item.name):
            raise FilterError(f'invalid sort field "{item.name}"')
        resolver = CollectionResolver(collection, table, info, lookup, dialect, is_rule=False)
        try:
            op = resolver.resolve(item.name)
        except FilterError as exc:
            raise FilterError(f'invalid sort field "{item.name}" - {exc.detail}') from None
        if isinstance(op, SealedOperand):
            message = f'The field "{op.field_name}" is encrypted: records cannot be sorted by it.'
            raise FilterError(message, message)
        for key in _sort_keys(op, dialect):
            key = resolver.shared.scalar(key, table)
            if dialect == "postgresql":
                out.append(key.desc().nulls_last() if item.descending else key.asc().nulls_first())
            else:
                out.append(key.desc() if item.descending else key.asc())
    return out


def _sort_keys(op: Operand, dialect: str) -> list[ColumnElement[Any]]:
    """SQLite orders NULL < numbers < text; a PostgreSQL jsonb value needs three keys for that."""
    if dialect != "postgresql" or op.cls != "json":
        return [op.expr]
    kind = func.jsonb_typeof(op.expr)
    rank = case(
        (kind.in_(["number", "boolean"]), 1),
        (kind == literal("string", Text()), 2),
        (kind.in_(["object", "array"]), 2),
    )
    number = case(
        (kind == literal("number", Text()), cast(json_text(op.expr), Float)),
        (
            kind == literal("boolean", Text()),
            case((json_text(op.expr) == literal("true", Text()), 1.0), else_=0.0),
        ),
    )
    text = case(
        (kind == literal("string", Text()), json_text(op.expr)),
        (kind.in_(["object", "array"]), cast(op.expr, Text)),
    )
    return [rank, number, text]


def validate_rule(collection: Collection, rule: str, lookup: Lookup, dialect: str) -> str | None:
    """PocketBase's raw error for an invalid rule (``None`` when it compiles).

    Used at collection save time: ``Invalid rule. Raw error: <detail>.``
    """
    table = (
        view_table_for(collection, MetaData())
        if collection.is_view
        else table_for(collection, MetaData(), dialect)
    )
    try:
        build_filter(collection, table, rule, RequestInfo(), lookup, dialect, is_rule=True)
    except FilterError as exc:
        return exc.detail
    return None
