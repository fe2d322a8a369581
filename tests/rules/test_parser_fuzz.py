"""The parser raises ``FilterError`` and nothing else, whatever the input."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepbase.rules import FilterError, parse, parse_sort

PIECES = [
    "a",
    "b.c",
    "@request.auth.id",
    "@collection.x:y.z",
    "'t'",
    '"q\\""',
    "1",
    "-2.5",
    "(",
    ")",
    "=",
    "!=",
    "?=",
    "~",
    "!~",
    "?!~",
    ">=",
    "&&",
    "||",
    " ",
    "\n",
    "//c\n",
    "f(",
    ",",
    "null",
    "\x00",
    "é",
    "'",
    "\\",
    "%",
    "_",
    ";",
    "--",
    "/*",
    "9" * 40,
]


def _check(source: str) -> None:
    try:
        parse(source)
    except FilterError:
        pass


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text(source: str) -> None:
    _check(source)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=60))
def test_token_soup(pieces: list[str]) -> None:
    _check("".join(pieces))


@settings(max_examples=200)
@given(st.text(max_size=400))
def test_sort_never_crashes(source: str) -> None:
    try:
        parse_sort(source)
    except FilterError:
        pass


def test_atheris_coverage_guided_session() -> None:
    """A bounded libFuzzer session over the whole list path (tests/rules/atheris_fuzz.py)."""
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed for this Python (it ships wheels for CPython <= 3.12 on x86_64)")
    script = Path(__file__).with_name("atheris_fuzz.py")
    proc = subprocess.run([sys.executable, str(script), "-runs=15000", "-max_len=300", "-seed=1"],
                          capture_output=True, text=True, timeout=600, cwd=script.parents[2])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Done 15000 runs" in proc.stderr
