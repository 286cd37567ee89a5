"""One of the three clusters dispatches to SLURM: a step handed to it runs as a SLURM
job there (its runner, under one core, stays on that cluster's host)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from federation_sites import Site, leaves, run_workflow, start_sites

pytestmark = [pytest.mark.federation, pytest.mark.slurm, pytest.mark.slow,
              pytest.mark.xdist_group("slurm")]


@pytest.fixture(scope="module")
def slurm_sites(tmp_path_factory: pytest.TempPathFactory, slurm_cpus: int,
                ) -> Iterator[dict[str, Site]]:
    started = start_sites(tmp_path_factory.mktemp("federation-slurm"),
                          dispatchers={"sitec": "slurm"})
    try:
        yield started
    finally:
        for site in started.values():
            site.server.__exit__(None, None, None)


def test_a_step_handed_to_the_slurm_cluster_runs_as_a_slurm_job(slurm_sites, tmp_path):
    (tmp_path / "in.txt").write_text("to slurm\n")
    run = run_workflow(slurm_sites["sitea"], "chain.cwl",
                       {"text": {"class": "File", "path": str(tmp_path / "in.txt")},
                        "where1": "sitec", "where2": "siteb", "where3": "sitea"}, tmp_path)
    assert run.returncode == 0, run.stderr
    assert Path(run.outputs["said"]["path"]).read_text() == "to slurm\none\ntwo\nthree\n"
    placed = {leaf["spec"]["command"][-1]: leaf for leaf in leaves(slurm_sites, run.run_uuid)
              if leaf["spec"]["command"][:2] == ["sh", "-c"]}
    assert {tag: leaf["cluster"] for tag, leaf in placed.items()} == {
        "one": "sitec", "two": "siteb", "three": "sitea"}
    assert placed["one"]["backend"] == "slurm" and placed["one"]["backend_job_id"]
    assert placed["two"]["backend"] == "local"
