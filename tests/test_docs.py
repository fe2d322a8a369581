"""The docs keep up with the code: every setting is in the README's table."""

from __future__ import annotations

from pathlib import Path

from keepbase.core.config import config_fields, env_name

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [env_name(f.name) for f in config_fields() if f"`{env_name(f.name)}`" not in text]
    assert not missing, f"add these settings to README.md's configuration table: {missing}"
