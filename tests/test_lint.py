"""The code reads the way STYLE.md asks: ruff's B, E, F, I, UP and W rules hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing_in_the_application_code():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "backend", "geo", "scripts", "bench"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
