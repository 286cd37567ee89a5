"""cwl-crunch-runner, embedded: a step's ResourceRequirement judged against the cluster's
largest node (the local dispatcher's cores and RAM), not against cwltool's view of the
host. Through SLURM: tests/dispatch/test_slurm.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from resource_tools import CORES_TOOL

import cwl_crunch
from cwl_crunch.client import JobFilter

WORKFLOW = """cwlVersion: v1.2
class: Workflow
inputs: []
outputs:
  cores: {type: File, outputSource: big/cores}
steps:
  big: {run: tool.cwl, in: [], out: [cores]}
"""


def run_workflow(tmp_path: Path, where: str, cores: int,
                 **settings: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tool.cwl").write_text(CORES_TOOL.format(where=where, cores=cores))
    (tmp_path / "wf.cwl").write_text(WORKFLOW)
    return subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.runner", "--outdir", str(tmp_path / "out"),
         str(tmp_path / "wf.cwl")], capture_output=True, text=True, timeout=120,
        check=False, cwd=tmp_path,
        env={"CWL_CRUNCH_HOME": str(tmp_path / "home"), "PATH": "/usr/local/bin:/usr/bin:/bin",
             **{f"CWL_CRUNCH_{name.upper()}": value for name, value in settings.items()},
             **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}})


def steps_of_the_run(home: Path) -> list[cwl_crunch.JobRecord]:
    with cwl_crunch.connect(home=home) as cluster:
        [run] = cluster.client.list_jobs(JobFilter(top_level=True, limit=10))
        return cluster.client.list_jobs(JobFilter(parent_uuid=run.uuid, limit=10))


def test_a_hint_beyond_the_node_is_scaled_down_to_it_with_a_warning(tmp_path):
    done = run_workflow(tmp_path, "hints", 4, max_cores="2")
    assert done.returncode == 0, done.stderr
    assert ("[step wf/big] asks for 4 cores (coresMin) in a hint; the largest node of the "
            "cluster has 2 cores: it gets 2 cores") in done.stderr
    assert (tmp_path / "out" / "cores.txt").read_text() == "2\n"
    [step] = steps_of_the_run(tmp_path / "home")
    assert step.spec.cores == 2.0


def test_steps_are_judged_against_the_cluster_not_this_host(tmp_path):
    """cwltool would refuse 4 cores on a 2-core host; a cluster configured with 8 runs it."""
    if (os.cpu_count() or 1) >= 4:
        pytest.skip("needs a host of fewer than 4 cores")
    done = run_workflow(tmp_path, "hints", 4, max_cores="8")
    assert done.returncode == 0, done.stderr
    assert "largest node" not in done.stderr
    assert (tmp_path / "out" / "cores.txt").read_text() == "4\n"
    [step] = steps_of_the_run(tmp_path / "home")
    assert step.spec.cores == 4.0


def test_a_requirement_no_node_meets_fails_before_the_step_is_submitted(tmp_path):
    done = run_workflow(tmp_path, "requirements", 1000, max_cores="2")
    assert done.returncode != 0
    assert ("[step wf/big] requires 1000 cores (coresMin), but the largest node of the "
            "cluster has 2 cores: no node can run it") in done.stderr
    assert "Traceback" not in done.stderr
    assert steps_of_the_run(tmp_path / "home") == []
