"""Which Storage is current: local, or S3 when the runtime settings enable it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .local import LocalStorage
from .storage import Storage


class StorageSwitch:
    """Callable returning the current backend; S3 clients are cached per settings value."""

    def __init__(self, local_root: Path | str, s3_settings: Callable[[], dict[str, Any]]) -> None:
        self.local = LocalStorage(local_root)
        self._s3_settings = s3_settings
        self._lock = threading.Lock()
        self._cached: tuple[tuple[Any, ...], Storage] | None = None

    def __call__(self) -> Storage:
        s3 = self._s3_settings() or {}
        if not s3.get("enabled"):
            return self.local
        key = tuple(str(s3.get(k, "")) for k in ("bucket", "region", "endpoint", "accessKey", "secret",
                                                   "forcePathStyle"))
        with self._lock:
            if self._cached is None or self._cached[0] != key:
                from .s3 import S3Storage

                self._cached = (key, S3Storage(s3))
            return self._cached[1]
