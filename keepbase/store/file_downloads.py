"""Finding the file behind ``GET /api/files/{collection}/{recordId}/{filename}``.

Non-protected files are public (record rules are not checked, as in PocketBase). A file of a
``protected`` field needs the collection's viewRule to pass for the auth record of a *file*
token, evaluated with ``@request.context = "protectedFile"``; any failure is a plain 404.
Thumbnails are generated on first request and cached next to the original.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..core.errors import ForbiddenError, InsufficientStorageError, NotFoundError, StorageUnavailableError
from ..core.types import AuthInfo, RequestInfo
from ..files import FileStat, InvalidKeyError, Storage, record_key, thumb_key
from ..files.sniff import SNIFF_LEN, base_type, detect
from ..files.thumbs import THUMB_SOURCE_TYPES, ThumbError, make_thumb
from .models import Collection, Field
from .record_files import file_names
from .record_input import row_values

if TYPE_CHECKING:
    from .records import RecordService

log = logging.getLogger("keepbase.files")


@dataclass(frozen=True)
class Download:
    storage: Storage
    key: str
    name: str  # the served file name (``100x100_<name>`` for a thumb)
    content_type: str
    stat: FileStat


def _content_type(storage: Storage, key: str, name: str) -> str:
    if name.lower().endswith(".svg"):
        return "image/svg+xml"
    if name.lower().endswith(".css"):
        return "text/css"
    head = b"".join(storage.iter_range(key, 0, SNIFF_LEN - 1))
    return detect(head)


def find_download(records: RecordService, storage: Storage, c: Collection, record_id: str, filename: str,
                  thumb: str = "", file_auth: AuthInfo | None = None) -> Download:
    try:
        key = record_key(c.id, record_id, filename)
    except InvalidKeyError:
        raise NotFoundError() from None
    if c.is_view:
        raise NotFoundError()
    table = records.table(c)
    with records.db.read() as conn:  # stored values: no rules for non-protected files
        row = conn.execute(select(table).where(table.c.id == record_id)).first()
    if row is None:
        raise NotFoundError()
    field = _field_holding(c, row_values(c, row), filename)
    if field is None:
        raise NotFoundError()
    if field.options.get("protected"):
        info = RequestInfo(auth=file_auth, context="protectedFile")
        try:
            records.find_record_by_id(c, record_id, info)
        except (NotFoundError, ForbiddenError):
            raise NotFoundError() from None
    stat = storage.stat(key)
    if stat is None:
        raise NotFoundError()
    content_type = _content_type(storage, key, filename)
    if thumb and thumb in {"100x100", *(field.options.get("thumbs") or [])} \
            and base_type(content_type) in THUMB_SOURCE_TYPES:
        found = _thumb(storage, c, record_id, filename, thumb)
        if found is not None:
            return found
    return Download(storage, key, filename, content_type, stat)


def _field_holding(c: Collection, record: dict[str, Any], filename: str) -> Field | None:
    for f in c.fields:
        if f.type == "file" and filename in file_names(record.get(f.name)):
            return f
    return None


def _thumb(storage: Storage, c: Collection, record_id: str, filename: str, size: str) -> Download | None:
    """The cached thumb, generated now if missing; None (serve the original) if it cannot be made."""
    key = thumb_key(c.id, record_id, filename, size)
    stat = storage.stat(key)
    if stat is None:
        try:
            data = make_thumb(storage.read(record_key(c.id, record_id, filename)), size)
        except ThumbError as exc:
            log.info("thumb %s of %s not generated: %s", size, filename, exc)
            return None
        try:
            storage.put_bytes(key, data)
        except (InsufficientStorageError, StorageUnavailableError) as exc:  # a full or read-only disk
            log.info("thumb %s of %s not stored: %s", size, filename, exc)
            return None
        stat = storage.stat(key)
        if stat is None:
            return None
    name = f"{size}_{filename}"
    return Download(storage, key, name, _content_type(storage, key, name), stat)
