"""Safe stored names (PocketBase's scheme) and content sniffing."""

from __future__ import annotations

import re

import pytest

from keepbase.files import safe_name
from keepbase.files.names import SAFE_NAME_RE, snakecase
from keepbase.files.sniff import detect, matches

from .conftest import jpeg, png

R10 = "[a-z0-9]{10}"


@pytest.mark.parametrize(("original", "pattern"), [
    ("My Photo (1).png", rf"my_photo_1_{R10}\.png"),
    ("small.png", rf"small_{R10}\.png"),
    ("doc.txt", rf"doc_{R10}\.txt"),
    ("archive.tar.gz", rf"archive_{R10}\.tar\.gz"),
    ("CamelCaseName.JPG", rf"camel_case_name_{R10}\.JPG"),
    ("x.png", rf"x{R10}_{R10}\.png"),  # short base: padded with random chars
])
def test_pocketbase_examples(original: str, pattern: str) -> None:
    assert re.fullmatch(pattern, safe_name(original, png()))


@pytest.mark.parametrize("original", ["../../etc/passwd", "/etc/passwd", "..\\..\\win.ini", "a\x00b.png",
                                      "ｍｙ.png", "évil\u202egnp.exe", "a/b/../../c.png", "...", "", "   ",
                                      "<script>.svg", "x" * 1000 + ".png", "a." + "b" * 100])
def test_hostile_names_become_safe(original: str) -> None:
    name = safe_name(original, png())
    assert SAFE_NAME_RE.match(name), name
    assert "/" not in name and "\\" not in name and "\x00" not in name and ".." not in name
    assert name.isascii() and len(name) <= 100 + 1 + 10 + 20


def test_extension_comes_from_content_when_missing() -> None:
    assert safe_name("noext", png()).endswith(".png")
    assert safe_name("noext", jpeg()).endswith(".jpg")
    assert re.fullmatch(rf"noext_{R10}", safe_name("noext", b"\x00\x01\x02"))


def test_snakecase() -> None:
    assert snakecase("My Photo (1)") == "my_photo_1"
    assert snakecase("helloWorld-FOO_bar") == "hello_world_foo_bar"


@pytest.mark.parametrize(("head", "mime"), [
    (png(), "image/png"), (jpeg(), "image/jpeg"), (b"GIF89a....", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"), (b"%PDF-1.7", "application/pdf"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/svg+xml"),
    (b"<?xml version='1.0'?><svg></svg>", "image/svg+xml"),
    (b"<!DOCTYPE html><html><script>alert(1)</script>", "text/html; charset=utf-8"),
    (b"<?xml version='1.0'?><a/>", "text/xml; charset=utf-8"),
    (b"hello", "text/plain; charset=utf-8"), (b"\x00\x01\x02\xff", "application/octet-stream"),
])
def test_detect(head: bytes, mime: str) -> None:
    assert detect(head) == mime


def test_matches_ignores_parameters_and_aliases() -> None:
    assert matches("text/plain; charset=utf-8", ["text/plain"])
    assert matches("image/jpeg", ["image/jpg"])
    assert not matches("text/html; charset=utf-8", ["image/png", "text/plain"])
