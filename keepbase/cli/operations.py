"""The data-changing commands, as operations that run on an App.

A command run while no server uses the data folder builds its own App (holding the folder lock);
run while a server does, it sends the same operation to that server over the control socket
(``control``), which runs it with its own services: SQLite never gets a second writer, and the
server's caches see the change at once. Each operation returns (exit code, message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ..core.errors import ApiError

Operation = Callable[[Any, dict[str, Any]], tuple[int, str]]


def _api_error(exc: ApiError) -> tuple[int, str]:
    return 1, f"Error: {orjson.dumps(exc.to_dict()).decode()}"


def _saved_superuser(save: Any, args: dict[str, Any]) -> tuple[int, str]:
    try:
        save(str(args["email"]), str(args["password"]))
    except ApiError as exc:
        return _api_error(exc)
    return 0, f"Successfully saved superuser {args['email']!r}!"


def superuser_upsert(app: Any, args: dict[str, Any]) -> tuple[int, str]:
    return _saved_superuser(app.upsert_superuser, args)


def superuser_create(app: Any, args: dict[str, Any]) -> tuple[int, str]:
    return _saved_superuser(app.create_superuser, args)


def superuser_delete(app: Any, args: dict[str, Any]) -> tuple[int, str]:
    if not app.delete_superuser(str(args["email"])):
        return 1, f"Error: superuser {args['email']!r} not found"
    return 0, f"Successfully deleted superuser {args['email']!r}!"


def import_collections(app: Any, args: dict[str, Any]) -> tuple[int, str]:
    items = args["collections"]
    try:
        app.collections.import_collections(items, bool(args.get("delete_missing")))
    except ApiError as exc:
        return _api_error(exc)
    names = ", ".join(str(i.get("name") or i.get("id") or "?") for i in items)
    return 0, f"Imported {len(items)} collection(s): {names}"


def keys_rotate(app: Any, args: dict[str, Any]) -> tuple[int, str]:
    """Re-encrypt under the newest key: batches of ``batch`` records (each its own transaction,
    so the writer is free between them) for about ``seconds``; ``batch`` 0 only counts. The message
    is JSON: ``{"rotated", "remaining", "key"}``."""
    import time

    from ..store.encryption import KEYS_SETTING, rotate_batch

    cipher = app.collections.cipher
    if cipher is None:
        return 1, f"Error: no encryption keys are configured; set {KEYS_SETTING}"
    batch = max(0, int(args.get("batch", 0)))
    deadline = time.monotonic() + float(args.get("seconds", 2.0))
    rotated = 0
    try:
        while True:
            step = rotate_batch(app.collections, app.db, batch)
            rotated += step.rotated
            if not batch or not step.remaining or not step.rotated or time.monotonic() > deadline:
                break
    except ApiError as exc:
        return _api_error(exc)
    return 0, orjson.dumps({"rotated": rotated, "remaining": step.remaining,
                            "key": cipher.keyring.primary.id}).decode()


OPERATIONS: dict[str, Operation] = {
    "superuser_upsert": superuser_upsert,
    "superuser_create": superuser_create,
    "superuser_delete": superuser_delete,
    "import_collections": import_collections,
    "keys_rotate": keys_rotate,
}
