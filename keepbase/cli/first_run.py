"""What ``keepbase serve`` prints on a fresh start: how to create the first superuser."""

from __future__ import annotations

from typing import Any

from ..auth.installer import has_superuser, installer_token, remove_installer


def first_run_message(app: Any, base: str) -> str | None:
    """The setup link and the command, or None when a superuser exists."""
    if has_superuser(app.db, app.collections):
        remove_installer(app.db, app.collections, app.records)  # a placeholder left by an earlier start
        return None
    token = installer_token(app.db, app.collections, app.records)
    folder = "" if app.config.is_postgres else f" --dir {app.config.dir}"
    return ("\n(!) No superuser yet. Open this one-time link (valid 30 minutes) to create the first one:\n"
            f"{base}/_/#/pbinstall/{token}\n"
            f"(or run: keepbase superuser upsert EMAIL PASSWORD{folder})")
