"""OAuth2 client secrets in auth collections' options, sealed in ``_collections`` with the
settings keyring (``settings.settings_keyring``: ``--encryptionEnv``'s key, else the first
encryption key; docs/security.md).

In memory (``Collection.options``) a client secret is in clear, for the OAuth2 providers; the API
never returns it (``models.public_option``). ``seal_options`` gives the options as stored: each
non-empty ``clientSecret`` sealed (``kb1.<key id>.…``, the collection id and provider name bound as
associated data). ``open_options`` reverses it; a value it cannot open (no such key) stays sealed,
and ``check_option_secrets`` turns that into a one-line ``StartupError`` at start-up, after it
has sealed the secrets stored in clear or under a key other than the sealing one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import update

from ..core.errors import StartupError
from ..security.keyring import Keyring, KeyringError, key_id_of


def _secrets(options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each OAuth2 provider config of ``options`` that has a non-empty ``clientSecret``."""
    oauth2 = options.get("oauth2")
    providers = oauth2.get("providers") if isinstance(oauth2, dict) else None
    for p in providers if isinstance(providers, list) else []:
        if isinstance(p, dict) and isinstance(p.get("clientSecret"), str) and p["clientSecret"]:
            yield p


def _aad(collection_id: str, provider: dict[str, Any]) -> bytes:
    return f"keepbase collection {collection_id} oauth2 {provider.get('name', '')}".encode()


def seal_options(collection_id: str, options: dict[str, Any], keyring: Keyring | None) -> dict[str, Any]:
    """``options`` as stored: client secrets sealed under ``keyring``'s first key (unchanged without one)."""
    if keyring is None or not any(True for _ in _secrets(options)):
        return options
    out = copy.deepcopy(options)
    for p in _secrets(out):
        if key_id_of(p["clientSecret"]) is None:  # one still sealed could not be opened: keep it as it is
            p["clientSecret"] = keyring.encrypt(p["clientSecret"].encode(), _aad(collection_id, p))
    return out


def open_options(collection_id: str, options: dict[str, Any], keyring: Keyring | None) -> dict[str, Any]:
    """``options`` as loaded: client secrets opened where ``keyring`` can (others stay sealed)."""
    if keyring is None or not any(key_id_of(p["clientSecret"]) for p in _secrets(options)):
        return options
    out = copy.deepcopy(options)
    for p in _secrets(out):
        if key_id_of(p["clientSecret"]) is not None:
            try:
                p["clientSecret"] = keyring.decrypt(p["clientSecret"], _aad(collection_id, p)).decode()
            except KeyringError:
                pass  # reported by check_option_secrets
    return out


def check_option_secrets(collections: Any, keyring: Keyring | None) -> None:
    """At start-up (``collections``: the CollectionStore): a client secret that cannot be opened is
    a ``StartupError``; with a keyring, secrets stored in clear or under another key are sealed."""
    for c in collections.all():
        for p in _secrets(c.options):
            kid = key_id_of(p["clientSecret"])
            if kid is not None:
                raise StartupError(
                    f"the OAuth2 client secret of {p.get('name', '')!r} in collection {c.name!r} is encrypted "
                    f"(key {kid!r}) and cannot be decrypted with the configured keys; configure that key in "
                    "KEEPBASE_ENCRYPTION_KEYS, or pass --encryptionEnv if it was sealed with that key")
    if keyring is None:
        return
    table, changed = collections.table, False
    with collections.db.write() as conn:
        for row in conn.execute(table.select()).all():
            stored = orjson.loads(row.options)
            if all(key_id_of(p["clientSecret"]) == keyring.primary.id for p in _secrets(stored)):
                continue
            sealed = seal_options(row.id, open_options(row.id, stored, keyring), keyring)
            conn.execute(update(table).where(table.c.id == row.id).values(options=orjson.dumps(sealed).decode()))
            changed = True
    if changed:
        collections.refresh()
