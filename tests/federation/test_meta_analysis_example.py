"""The README's meta-analysis command, as a user runs it: four clusters started by
``cwl-examples/meta-analysis/run.py``, the workflow run from home; its result equals the
inverse-variance combination of per-site regressions computed here from the cohorts,
and afterwards no block of a cohort, nor of anything resident made from one, is in any
store but its site's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from meta_analysis_check import blocks_of, direct_meta, held_blocks
from server_process import ROOT
from sqlalchemy import text

from cwl_crunch.records.database import Database

pytestmark = [pytest.mark.federation, pytest.mark.podman, pytest.mark.slow,
              pytest.mark.xdist_group("residency")]

SITES = ("sitea", "siteb", "sitec")
CLUSTERS = ("home0", *SITES)
RUN = ROOT / "cwl-examples" / "meta-analysis" / "run.py"


def test_the_readme_meta_analysis_command(tmp_path, engine_url):
    workdir = tmp_path / "demo"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CWL_CRUNCH_")}
    env.update(CWL_CRUNCH_CONTAINER_ENGINE=engine_url, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(RUN), "--workdir", str(workdir), "--exit"],
                          env=env, text=True, capture_output=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    cohorts = dict(re.findall(r"^(site\w): cohort (\S+) stored resident", done.stdout, re.M))
    assert sorted(cohorts) == list(SITES)
    assert "home web page: http://127.0.0.1:" in done.stdout
    out = workdir / "out"
    direct = direct_meta([workdir / "cohorts" / site / "cohort.tsv" for site in SITES])
    table = (out / "meta.tsv").read_text().splitlines()
    assert len(table) == 1 + len(direct) == 1001
    for line in table[1:]:
        name, _, _, sites, people, beta, se, _, _ = line.split("\t")
        assert sites == "3" and people == "6000"
        assert float(beta) == pytest.approx(direct[name][0], rel=1e-4, abs=1e-9)
        assert float(se) == pytest.approx(direct[name][1], rel=1e-4)
    top = (out / "top_variants.tsv").read_text().splitlines()
    assert len(top) == 21 and top[1:] == table[1:21]
    assert (out / "manhattan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stores = {name: workdir / "clusters" / name / "store" for name in CLUSTERS}
    for site in SITES:
        staying = [cohorts[site], *_resident(workdir / "clusters" / site)]
        assert len(staying) >= 2  # the cohort, and at least its regression's log
        for pdh in staying:
            locators = blocks_of(stores[site], pdh)
            for other in CLUSTERS:
                if other != site and locators:
                    assert not held_blocks(stores[other], locators), (site, pdh, other)


def _resident(home: Path) -> list[str]:
    """The collections a cluster's records say stay there."""
    database = Database(f"sqlite:///{home / 'records.sqlite'}")
    try:
        with database.reading() as connection:
            return [str(row.pdh) for row in connection.execute(
                text("SELECT pdh FROM residency WHERE state = 'resident'"))]
    finally:
        database.close()
