"""Files: the ``Storage`` protocol with local and S3 backends, content sniffing, safe names,
thumbnails. A leaf: imports only ``core``."""

from __future__ import annotations

from .local import LocalStorage
from .names import safe_name
from .sniff import detect
from .storage import FileStat, InvalidKeyError, Storage, check_key, record_key, thumb_key
from .uploads import UploadedFile

__all__ = ["FileStat", "InvalidKeyError", "LocalStorage", "Storage", "UploadedFile", "check_key", "detect",
           "record_key", "safe_name", "thumb_key"]
