"""Files of records: uploads in a save, their validation facts, storage and clean-up.

The order of a save with files (PocketBase's):

1. ``extract_uploads`` swaps every uploaded part in the body for its new safe name, so the
   plain field machinery (modifiers, ``field=<existing name>`` keep semantics) sees strings.
2. Field validation (``FileType.validate``) checks the final value: names must be current
   files or new uploads, then maxSelect, then size and the *sniffed* MIME type of each upload.
3. ``PendingFiles.store`` writes the uploads that made it into the final value, inside the
   write transaction and before the row is written, and registers ``on_rollback`` clean-up:
   if the DB write or the COMMIT fails, the stored files are removed again.
4. After the commit, the ``record_after_update`` / ``record_after_delete`` handlers bound by
   ``bind_file_cleanup`` remove replaced, removed and deleted files (thumbnails included).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from ..core.errors import BadRequestError
from ..core.events import Hooks, RecordEvent
from ..files import InvalidKeyError, Storage, UploadedFile, check_key, record_key, safe_name
from .db import on_rollback
from .models import Collection
from .record_input import split_key

if TYPE_CHECKING:
    from .collections import CollectionStore

log = logging.getLogger("keepbase.files")
Uploads = dict[str, dict[str, UploadedFile]]  # field name -> new stored name -> upload


def file_names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return [value] if isinstance(value, str) and value else []


def extract_uploads(c: Collection, body: dict[str, Any], allowed: set[str]) -> tuple[dict[str, Any], Uploads]:
    """The body with every upload replaced by its new stored name, and the uploads by field.

    Uploads for keys that are not (writable) file fields, or sent with the ``-`` modifier, are
    dropped: nothing of them is ever stored.
    """
    fields = c.field_map
    out: dict[str, Any] = {}
    uploads: Uploads = {}
    for key, raw in body.items():
        items = raw if isinstance(raw, list) else [raw]
        if not any(isinstance(i, UploadedFile) for i in items):
            out[key] = raw
            continue
        name, mod = split_key(key)
        f = fields.get(name)
        usable = f is not None and f.type == "file" and name in allowed and mod in ("", "append", "prepend")
        kept: list[Any] = []
        for item in items:
            if not isinstance(item, UploadedFile):
                kept.append(item)
            elif usable:
                stored = safe_name(item.original_name, item.head)
                uploads.setdefault(name, {})[stored] = item
                kept.append(stored)
        if kept or usable:
            out[key] = kept if isinstance(raw, list) or len(kept) != 1 else kept[0]
    return out, uploads


class PendingFiles:
    """The uploads of one save; stores those the final record keeps."""

    def __init__(self, storage: Callable[[], Storage] | None, uploads: Uploads) -> None:
        self._storage = storage
        self.uploads = uploads

    def store(self, conn: Connection, c: Collection, record: dict[str, Any]) -> None:
        if not self.uploads:
            return
        if self._storage is None:
            raise RuntimeError("no file storage configured")
        storage = self._storage()
        written: list[str] = []

        def undo() -> None:
            for key in written:
                try:
                    storage.delete(key)
                except Exception:
                    log.exception("could not remove %s after a failed save", key)

        on_rollback(conn, undo)
        for name, by_name in self.uploads.items():
            for stored in file_names(record.get(name)):
                upload = by_name.get(stored)
                if upload is None:
                    continue
                try:
                    key = record_key(c.id, str(record["id"]), stored)
                except InvalidKeyError as exc:  # e.g. a custom id pattern allowing odd characters
                    raise BadRequestError() from exc
                upload.file.seek(0)
                written.append(key)
                storage.put(key, upload.file)


def removed_files(c: Collection, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for f in c.fields:
        if f.type != "file":
            continue
        keep = set(file_names(new.get(f.name)))
        out.extend(n for n in file_names(old.get(f.name)) if n not in keep)
    return out


def bind_file_cleanup(hooks: Hooks, storage: Callable[[], Storage],
                      collections: CollectionStore | None = None) -> None:
    """Register the built-in after-commit handlers that delete files nobody references any more:
    those a record update replaced or removed, a deleted record's folder, and a deleted
    collection's whole folder."""
    if collections is not None:
        collections.on_deleted.append(lambda c: storage().delete_prefix(check_key(c.id)))

    def after_update(e: RecordEvent) -> None:
        c = e.collection
        if e.old is None or not any(f.type == "file" for f in c.fields):
            return
        names = removed_files(c, e.old, e.record)
        if not names:
            return
        st = storage()
        for name in names:
            st.delete(record_key(c.id, str(e.record["id"]), name))
            st.delete_prefix(record_key(c.id, str(e.record["id"]), "thumbs_" + name))

    def after_delete(e: RecordEvent) -> None:
        c = e.collection
        if c is None or not any(f.type == "file" for f in c.fields) or not e.record.get("id"):
            return
        storage().delete_prefix(record_key(c.id, str(e.record["id"])))

    hooks.record_after_update.bind(after_update, id="keepbase.files.after_update", priority=-100)
    hooks.record_after_delete.bind(after_delete, id="keepbase.files.after_delete", priority=-100)
