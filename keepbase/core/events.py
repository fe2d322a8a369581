"""The hook registry and typed event objects.

A ``Hook`` holds handlers in priority order. ``trigger(event, default)`` calls the first handler
with the event; a handler continues the chain by calling ``event.next()`` (eventually reaching
the default action), or returns without calling it to stop the chain. Built-in behaviour
registers through the same registry, like any other handler::

    @app.hooks.record_create.bind
    def stamp(e: RecordEvent) -> None:
        e.record["title"] = e.record["title"].strip()
        e.next()

"Before" hooks (``record_create``, ``record_update``, ``record_delete``) run inside the write
transaction, around the default action; raising an ``ApiError`` rejects the write cleanly.
"After" hooks (``record_after_*``) run only after the commit, never on rollback; an exception
there is logged, never shown to the client.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("keepbase.hooks")

E = TypeVar("E", bound="Event")
Handler = Callable[[E], Any]
_ids = itertools.count(1)


@dataclass
class Event:
    """Base event: ``next()`` continues to the next handler (and finally the default action)."""

    _chain: list[Callable[[], Any]] = field(default_factory=list, repr=False)

    def next(self) -> Any:
        if not self._chain:
            return None
        step = self._chain.pop(0)
        return step()


@dataclass
class RecordEvent(Event):
    """A record being created, updated or deleted. ``record`` holds its field values."""

    collection: Any = None  # store.models.Collection
    record: dict[str, Any] = field(default_factory=dict)
    old: dict[str, Any] | None = None
    info: Any = None  # core.types.RequestInfo
    action: str = ""  # "create" | "update" | "delete"
    connection: Any = None  # the SQLAlchemy connection of the write transaction (before hooks)


@dataclass
class RecordAuthEvent(Event):
    """A successful sign-in, before the token is sent. ``record`` is the auth record as the
    response shows it; a handler may change ``record`` or ``token``, or raise an ``ApiError``
    to refuse the sign-in. ``method`` is "password" (and later "oauth2", "otp", ...)."""

    collection: Any = None  # store.models.Collection
    record: dict[str, Any] = field(default_factory=dict)
    token: str = ""
    method: str = ""
    info: Any = None  # core.types.RequestInfo


def _only_for(names: frozenset[str], fn: Handler[E]) -> Handler[E]:
    def filtered(e: E) -> Any:
        c = getattr(e, "collection", None)
        if c is None or (getattr(c, "name", None) not in names and getattr(c, "id", None) not in names):
            return e.next()
        return fn(e)

    filtered.__name__ = getattr(fn, "__name__", "handler")
    return filtered


class Hook(Generic[E]):
    """An ordered list of handlers for one kind of event."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[tuple[int, int, str, Handler[E]]] = []

    def bind(self, fn: Handler[E] | None = None, *, priority: int = 0, id: str = "",
             collections: Iterable[str] = ()) -> Any:
        """Register ``fn`` (usable as a decorator). Lower priority runs first. Returns ``fn``.

        With ``collections`` (names or ids), ``fn`` only sees events of those collections;
        for the others the chain simply continues.
        """
        only = frozenset(collections)

        def register(f: Handler[E]) -> Handler[E]:
            hid = id or f"{self.name}-{next(_ids)}"
            call: Handler[E] = f if not only else _only_for(only, f)
            self._handlers = [h for h in self._handlers if h[2] != hid]
            self._handlers.append((priority, next(_ids), hid, call))
            self._handlers.sort(key=lambda h: (h[0], h[1]))
            return f

        return register(fn) if fn is not None else register

    def unbind(self, id: str) -> None:
        self._handlers = [h for h in self._handlers if h[2] != id]

    def __len__(self) -> int:
        return len(self._handlers)

    def trigger(self, event: E, default: Callable[[E], Any] | None = None) -> Any:
        steps: list[Callable[[], Any]] = [lambda h=h: h(event) for _p, _s, _i, h in self._handlers]  # type: ignore[misc]
        if default is not None:
            steps.append(lambda: default(event))
        event._chain = steps
        return event.next()

    def trigger_safely(self, event: E) -> None:
        """For after-commit hooks: every handler runs; failures are logged, never raised."""
        for _p, _s, hid, h in list(self._handlers):
            event._chain = []
            try:
                h(event)
            except Exception:
                log.exception("hook %s (%s) failed", self.name, hid)


class Hooks:
    """Every hook of an App. Documented here; tests check each one is documented."""

    def __init__(self) -> None:
        #: before a record is inserted (inside the transaction); may change ``e.record`` or raise
        self.record_create: Hook[RecordEvent] = Hook("record_create")
        #: before a record is updated (inside the transaction); ``e.old`` holds the stored values
        self.record_update: Hook[RecordEvent] = Hook("record_update")
        #: before a record is deleted (inside the transaction)
        self.record_delete: Hook[RecordEvent] = Hook("record_delete")
        #: after a create was committed
        self.record_after_create: Hook[RecordEvent] = Hook("record_after_create")
        #: after an update was committed
        self.record_after_update: Hook[RecordEvent] = Hook("record_after_update")
        #: after a delete was committed (cascaded deletes included)
        self.record_after_delete: Hook[RecordEvent] = Hook("record_after_delete")
        #: a successful sign-in, before the token is sent; may change ``e.record``/``e.token`` or raise
        self.record_auth: Hook[RecordAuthEvent] = Hook("record_auth")
        #: after a collection was created, updated or deleted (schema change committed)
        self.collection_after_change: Hook[Event] = Hook("collection_after_change")
