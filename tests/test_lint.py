"""The code style gates: ruff and mypy run as tests, so the README's one test command
(and so CI) enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                          text=True, check=False)


@pytest.mark.slow
def test_ruff_is_clean():
    result = run("ruff", "check", "cwl_crunch", "tests", "bench", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean():
    result = run("mypy", "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_stay_small():
    """Modules under ~600 lines (the project's style rule)."""
    too_long = {
        str(path.relative_to(ROOT)): count
        for path in (ROOT / "cwl_crunch").rglob("*.py")
        if (count := len(path.read_text().splitlines())) > 600
    }
    assert not too_long
