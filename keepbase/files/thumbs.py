"""Thumbnails with Pillow, and the decompression-bomb bound applied before any decoding.

Sizes follow PocketBase: ``WxH`` (crop to fill, centred), ``WxHt`` / ``WxHb`` (crop anchored at
the top / bottom), ``WxHf`` (fit inside, never upscaled), ``0xH`` / ``Wx0`` (resize keeping the
aspect ratio).
"""

from __future__ import annotations

import io
import re
import sys
import warnings
from typing import BinaryIO

from PIL import Image, ImageOps

THUMB_RE = re.compile(r"^(\d+)x(\d+)(t|b|f)?$")
THUMB_SOURCE_TYPES = frozenset({"image/png", "image/jpg", "image/jpeg", "image/gif", "image/webp"})
# Refuse images whose header declares more pixels than this, before decoding a single row:
# a few KB of PNG can declare 100k x 100k pixels (40 GB once decoded).
MAX_PIXELS = 50_000_000
MAX_THUMB_SIDE = 4096


class ThumbError(ValueError):
    """The source cannot be thumbnailed (not an image, too large, corrupt)."""


def declared_pixels(src: BinaryIO) -> int | None:
    """Pixel count declared by an image header (no decoding), or None if Pillow can't read it.
    The stream position is restored."""
    pos = src.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(src) as im:
                return int(im.width) * int(im.height)
    except Image.DecompressionBombError:  # Pillow's own (higher) bound tripped while reading the header
        return sys.maxsize
    except (OSError, ValueError, SyntaxError):
        return None
    finally:
        src.seek(pos)


def is_bomb(src: BinaryIO) -> bool:
    pixels = declared_pixels(src)
    return pixels is not None and pixels > MAX_PIXELS


def parse_size(size: str) -> tuple[int, int, str] | None:
    m = THUMB_RE.match(size)
    if not m:
        return None
    w, h, mode = int(m.group(1)), int(m.group(2)), m.group(3) or ""
    if (w == 0 and h == 0) or w > MAX_THUMB_SIDE or h > MAX_THUMB_SIDE:
        return None
    if mode and (w == 0 or h == 0):
        return None
    return w, h, mode


def make_thumb(data: bytes, size: str) -> bytes:
    """Encode a thumbnail of ``data`` at ``size``. Raises ThumbError."""
    spec = parse_size(size)
    if spec is None:
        raise ThumbError(f"invalid thumb size {size!r}")
    w, h, mode = spec
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if im.width * im.height > MAX_PIXELS:
                raise ThumbError("image too large")
            fmt = im.format
            im.seek(0)
            im.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ThumbError("image too large") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ThumbError(str(exc)) from exc
    try:
        src: Image.Image = ImageOps.exif_transpose(im) or im
        if mode == "" and w and h:
            out = ImageOps.fit(src, (w, h), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
        elif mode == "t":
            out = ImageOps.fit(src, (w, h), Image.Resampling.LANCZOS, centering=(0.5, 0.0))
        elif mode == "b":
            out = ImageOps.fit(src, (w, h), Image.Resampling.LANCZOS, centering=(0.5, 1.0))
        elif mode == "f":
            out = src.copy()
            out.thumbnail((w, h), Image.Resampling.LANCZOS)  # fits inside, never upscales
        else:  # one side 0: keep the aspect ratio
            nw = w or max(1, round(src.width * h / src.height))
            nh = h or max(1, round(src.height * w / src.width))
            out = src.resize((nw, nh), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        if fmt == "JPEG":
            out.convert("RGB").save(buf, "JPEG", quality=85)
        elif fmt == "GIF":
            out.save(buf, "GIF")
        else:
            if out.mode not in ("RGB", "RGBA", "L", "LA", "P", "I", "1"):
                out = out.convert("RGBA")
            out.save(buf, "PNG")
        return buf.getvalue()
    except (OSError, ValueError) as exc:
        raise ThumbError(str(exc)) from exc
    finally:
        im.close()
