"""The code reads the way STYLE.md asks: ruff's B, E, F, I, UP and W rules and `ruff format` hold
over the whole tree, migrations and tests included; mypy finds nothing in the whole tree either
(geo/ strict, the rest in normal mode)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing_in_the_whole_tree():
    result = _ruff("check", ".")
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_whole_tree_is_formatted():
    result = _ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout[-3000:]


def test_mypy_finds_nothing_in_the_whole_tree():
    # The flags are in pyproject.toml; .mypy_cache makes every run after the first take seconds.
    result = subprocess.run([sys.executable, "-m", "mypy", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
