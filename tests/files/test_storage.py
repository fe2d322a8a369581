"""The Storage contract, run against every backend (local folder and a real S3 server)."""

from __future__ import annotations

import io

import pytest

from keepbase.files import InvalidKeyError, Storage, check_key


def test_put_read_stat_delete(storage: Storage) -> None:
    storage.put("c1/r1/a.txt", io.BytesIO(b"hello world"))
    assert storage.read("c1/r1/a.txt") == b"hello world"
    st = storage.stat("c1/r1/a.txt")
    assert st is not None and st.size == 11 and st.modified > 0
    storage.delete("c1/r1/a.txt")
    assert storage.stat("c1/r1/a.txt") is None
    with pytest.raises(FileNotFoundError):
        storage.read("c1/r1/a.txt")
    storage.delete("c1/r1/a.txt")  # deleting a missing key is not an error


def test_put_reads_from_current_position_and_overwrites(storage: Storage) -> None:
    src = io.BytesIO(b"xxxpayload")
    src.seek(3)
    storage.put("c/r/f.bin", src)
    assert storage.read("c/r/f.bin") == b"payload"
    storage.put_bytes("c/r/f.bin", b"new")
    assert storage.read("c/r/f.bin") == b"new"


def test_ranges(storage: Storage) -> None:
    data = bytes(range(256)) * 1000
    storage.put_bytes("c/r/big.bin", data)
    assert b"".join(storage.iter_range("c/r/big.bin")) == data
    assert b"".join(storage.iter_range("c/r/big.bin", 10, 19)) == data[10:20]
    assert b"".join(storage.iter_range("c/r/big.bin", 255_990)) == data[255_990:]
    with pytest.raises(FileNotFoundError):
        b"".join(storage.iter_range("c/r/missing.bin"))


def test_list_and_delete_prefix(storage: Storage) -> None:
    for key in ("c/r1/a.png", "c/r1/thumbs_a.png/100x100_a.png", "c/r2/b.png", "c/r10/x.png"):
        storage.put_bytes(key, b"x")
    assert storage.list("c/r1") == ["c/r1/a.png", "c/r1/thumbs_a.png/100x100_a.png"]
    storage.delete_prefix("c/r1/thumbs_a.png")
    assert storage.list("c/r1") == ["c/r1/a.png"]
    storage.delete_prefix("c/r1")
    assert storage.list("c") == ["c/r10/x.png", "c/r2/b.png"]  # r10 is not under r1
    storage.delete_prefix("c/nothing-here")


@pytest.mark.parametrize("key", ["../x", "c/../../etc/passwd", "/abs/path", "c//r", "c/r/", "c/./r", "c/r/a\x00b",
                                 "c\\r\\..\\x", "c/r/ａ.png", "c/r/a b.png", "", "..", "c/r/%2e%2e"])
def test_hostile_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        storage.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        storage.stat(key)
    with pytest.raises(InvalidKeyError):
        storage.delete(key)


def test_check_key_accepts_stored_names() -> None:
    assert check_key("pbc_1/abc/my_photo_1_myki112h0k.png")
    assert check_key("c/r/thumbs_a.tar.gz/100x100f_a.tar.gz")
