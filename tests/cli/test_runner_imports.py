"""A runner of a server's cluster (every runner job, every remote step's runner) never
loads the cluster core, its records or SQLAlchemy: 0.3 s of each runner's start here
(0.72 s against 1.05 s to import cwl_crunch.cli.runner)."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = ("sqlalchemy", "cwl_crunch.core", "cwl_crunch.records", "fastapi")


def test_importing_the_runner_loads_no_core():
    probe = ("import sys, cwl_crunch.cli.runner, cwl_crunch.federation.links; "
             f"print([m for m in {CORE_MODULES!r} if m in sys.modules])")
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=120, check=True)
    assert shown.stdout.strip() == "[]", shown.stdout
