"""An uploaded file as the HTTP layer hands it to services: a seekable temp file plus facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from .sniff import SNIFF_LEN, detect


@dataclass(eq=False)
class UploadedFile:
    """One file part of a multipart body. ``file`` is a spooled temp file owned by this object."""

    original_name: str
    file: BinaryIO
    size: int
    _head: bytes | None = field(default=None, repr=False)

    @property
    def head(self) -> bytes:
        if self._head is None:
            pos = self.file.tell()
            self.file.seek(0)
            self._head = self.file.read(SNIFF_LEN)
            self.file.seek(pos)
        return self._head

    @property
    def mime(self) -> str:
        """Detected from the content, never from the client's Content-Type."""
        return detect(self.head)

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> UploadedFile:
        import io

        return cls(original_name=name, file=io.BytesIO(data), size=len(data))
