"""Thumbnail sizes and the decompression-bomb bound."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from keepbase.files.thumbs import ThumbError, is_bomb, make_thumb

from .conftest import bomb_png, jpeg, png


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


@pytest.mark.parametrize(("size", "expected"), [
    ("100x100", (100, 100)), ("100x100t", (100, 100)), ("100x100b", (100, 100)), ("60x50", (60, 50)),
    ("100x100f", (100, 67)), ("1000x1000f", (300, 200)), ("50x0", (50, 33)), ("0x50", (75, 50)),
])
def test_sizes(size: str, expected: tuple[int, int]) -> None:
    assert size_of(make_thumb(png(300, 200), size)) == expected


def test_format_follows_jpeg_else_png() -> None:
    assert make_thumb(jpeg(), "10x10")[:3] == b"\xff\xd8\xff"
    assert make_thumb(png(), "10x10")[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("size", ["0x0", "abc", "10x10x", "99999x10", "10x0f"])
def test_invalid_sizes(size: str) -> None:
    with pytest.raises(ThumbError):
        make_thumb(png(), size)


def test_bomb_is_refused_before_decoding() -> None:
    data = bomb_png()
    assert is_bomb(io.BytesIO(data))
    assert is_bomb(io.BytesIO(bomb_png(8000, 8000)))  # below Pillow's own bound, above ours
    assert not is_bomb(io.BytesIO(png()))
    with pytest.raises(ThumbError):
        make_thumb(data, "100x100")


def test_not_an_image() -> None:
    with pytest.raises(ThumbError):
        make_thumb(b"<svg></svg>", "100x100")
