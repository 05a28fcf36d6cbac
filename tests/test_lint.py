"""The code reads the way STYLE.md asks: ruff's B, E, F, I, UP and W rules and `ruff format` hold
over the whole tree, migrations and tests included."""

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
