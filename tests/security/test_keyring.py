"""The keyring (security/keyring.py) and its settings (core/config.py ``encryption_key_entries``)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from keepbase.core.config import Config, ConfigError, load_config
from keepbase.security.keyring import Keyring, KeyringError, derive_index_key, key_id_of, keyring_from_config

K1_RAW = bytes(range(32))
K2_RAW = bytes(range(1, 33))
K1 = base64.b64encode(K1_RAW).decode()
K2 = base64.b64encode(K2_RAW).decode()


def _ring(value: str) -> Keyring:
    ring = keyring_from_config(load_config(environ={"KEEPBASE_ENCRYPTION_KEYS": value}))
    assert ring is not None
    return ring


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = _ring(f"k1:{K1}"), _ring(f"k2:{K2}, k1:{K1}")
    assert new.ids == ("k2", "k1") and new.primary.id == "k2"
    under_k1 = old.encrypt(b"plain", b"aad")
    assert key_id_of(under_k1) == "k1" and under_k1.startswith("kb1.k1.")
    assert new.decrypt(under_k1, b"aad") == b"plain"
    under_k2 = new.encrypt(b"plain", b"aad")
    assert key_id_of(under_k2) == "k2" and under_k2 != new.encrypt(b"plain", b"aad")  # random nonce
    with pytest.raises(KeyringError) as info:
        old.decrypt(under_k2, b"aad")
    assert info.value.key_id == "k2" and "not in the keyring" in str(info.value)


@pytest.mark.parametrize("tamper", ["aad", "ciphertext", "key"])
def test_anything_altered_fails_authentication(tamper: str) -> None:
    ring = _ring(f"k1:{K1}")
    token = ring.encrypt(b"secret value", b"col\x00field\x00rec1")
    aad = b"col\x00field\x00rec1"
    if tamper == "aad":
        aad = b"col\x00field\x00rec2"
    elif tamper == "ciphertext":
        token = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    else:
        ring = _ring(f"k1:{K2}")  # same id, another key
    with pytest.raises(KeyringError, match="fails authentication"):
        ring.decrypt(token, aad)
    with pytest.raises(KeyringError):
        ring.decrypt("plain text", aad)


def test_blind_index_keys_are_derived_per_key_or_given() -> None:
    ring = _ring(f"k2:{K2},k1:{K1}")
    assert ring.keys[1].index_key == derive_index_key(K1_RAW) != K1_RAW
    a, b = ring.blind_index(b"x"), ring.blind_index(b"x", "k1")
    assert a == ring.blind_index(b"x") and a != b and len(a) == 43
    assert ring.blind_indexes(b"x") == [a, b] and ring.blind_index(b"y") != a
    explicit = _ring(f"k1:{K1}:{K2}")
    assert explicit.keys[0].index_key == K2_RAW and explicit.blind_index(b"x") != b
    assert K1 not in repr(ring) and "k1" in repr(ring)


@pytest.mark.parametrize(("value", "needle"), [
    (f"k1:{K1[:-1]}", "not valid standard base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "must be 32 bytes, not 5"),
    (f"k1:{K1},k1:{K2}", "the key id 'k1' is used twice"),
    (f"k1:{base64.urlsafe_b64encode(bytes([251] * 32)).decode()}", "not valid standard base64"),
    (K1, "expected ID:KEY"),
    (f"bad id:{K1}", "expected ID:KEY"),
    (f"k1:{K1}:xyz", "blind-index key is not valid"),
])
def test_bad_settings_are_one_line_naming_the_setting_never_the_key(value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={"KEEPBASE_ENCRYPTION_KEYS": value})
    message = str(info.value)
    assert "KEEPBASE_ENCRYPTION_KEYS" in message and needle in message and "\n" not in message
    for part in value.replace(",", ":").split(":"):
        if len(part) > 8:
            assert part not in message


def test_keys_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"k2:{K2}\nk1:{K1}\n")
    ring = keyring_from_config(load_config(environ={"KEEPBASE_ENCRYPTION_KEYS_FILE": str(path)}))
    assert ring is not None and ring.ids == ("k2", "k1")
    with pytest.raises(ConfigError, match="KEEPBASE_ENCRYPTION_KEYS_FILE.*cannot read"):
        load_config(environ={"KEEPBASE_ENCRYPTION_KEYS_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="set only one"):
        load_config(environ={"KEEPBASE_ENCRYPTION_KEYS_FILE": str(path), "KEEPBASE_ENCRYPTION_KEYS": f"k1:{K1}"})
    assert keyring_from_config(Config()) is None
