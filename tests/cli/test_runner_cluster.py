"""cwl-crunch-runner against a cwl-crunch server: local runner with --cluster, and the
runner itself submitted as a job (--submit)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cwl_crunch.client import JobFilter
from cwl_crunch.config import load_config
from cwl_crunch.core import EmbeddedClient
from cwl_crunch.server.serve import ServerThread

EXAMPLE = Path(__file__).resolve().parents[2] / "cwl-examples" / "gc-content"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(load_config(home=tmp_path / "server-home", poll_interval=0.05)) as srv:
        yield srv


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work)
    return work


def run_runner(tmp_path: Path, token: str | None, *args: str,
               cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"CWL_CRUNCH_HOME": str(tmp_path / "client-home"),
           "PATH": "/usr/local/bin:/usr/bin:/bin"}
    if token is not None:
        env["CWL_CRUNCH_API_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "cwl_crunch.cli.runner", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180, check=False, env=env)


def check_gc_outputs(result: subprocess.CompletedProcess[str], outdir: Path) -> None:
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [f["basename"] for f in output["per_sample"]] == [
        "sample_a.tsv", "sample_b.tsv", "sample_c.tsv"]
    assert output["summary_table"]["path"] == str(outdir / "gc_summary.tsv")
    summary = (outdir / "gc_summary.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in summary[1:]] == ["sample_a", "sample_b", "sample_c"]


def test_submitted_runner_is_a_job_whose_steps_are_its_children(tmp_path, workdir, server):
    outdir = tmp_path / "out"
    result = run_runner(tmp_path, server.create_token(), "--cluster", server.url, "--submit",
                        "--outdir", str(outdir), "workflow.cwl", "inputs.yml", cwd=workdir)
    check_gc_outputs(result, outdir)
    top = server.core.list_jobs(JobFilter(top_level=True))
    assert len(top) == 1
    run = top[0]
    assert run.state == "Complete" and run.spec.command[0] == "cwl-crunch-runner"
    assert run.spec.cores == 0.25
    steps = server.core.list_jobs(JobFilter(parent_uuid=run.uuid))
    assert sorted(step.name for step in steps) == [
        "workflow/gc/0", "workflow/gc/1", "workflow/gc/2", "workflow/summary"]
    assert all(step.state == "Complete" for step in steps)


def test_no_wait_prints_the_run_uuid(tmp_path, workdir, server):
    result = run_runner(tmp_path, server.create_token(), "--cluster", server.url, "--submit",
                        "--no-wait", "workflow.cwl", "inputs.yml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    uuid = result.stdout.strip()
    run = EmbeddedClient.over(server.core).wait([uuid], timeout=120)[0]
    assert run.state == "Complete", run.failure_reason
    assert run.parent_uuid is None


def test_local_runner_with_a_remote_cluster(tmp_path, workdir, server):
    outdir = tmp_path / "out"
    result = run_runner(tmp_path, server.create_token(), "--cluster", server.url,
                        "--outdir", str(outdir), "workflow.cwl", "inputs.yml", cwd=workdir)
    check_gc_outputs(result, outdir)
    runs = server.core.list_jobs(JobFilter(top_level=True))
    assert len(runs) == 1 and runs[0].state == "Complete"
    assert len(server.core.list_jobs(JobFilter(parent_uuid=runs[0].uuid))) == 4
    # Nothing was written to the client's own home: the cluster is the server's.
    assert not (tmp_path / "client-home" / "records.sqlite").exists()


def test_submit_without_a_cluster_or_token_says_what_is_missing(tmp_path, workdir, server):
    no_cluster = run_runner(tmp_path, None, "--submit", "workflow.cwl", "inputs.yml",
                            cwd=workdir)
    assert no_cluster.returncode != 0
    assert "--submit needs a cluster" in no_cluster.stderr
    no_token = run_runner(tmp_path, None, "--cluster", server.url, "--submit",
                          "workflow.cwl", "inputs.yml", cwd=workdir)
    assert no_token.returncode != 0
    assert "missing API token" in no_token.stderr
    assert "Traceback" not in no_token.stderr


def test_invalid_workflow_is_refused_before_anything_is_submitted(tmp_path, workdir, server):
    (workdir / "broken.cwl").write_text("cwlVersion: v1.2\nclass: CommandLineTool\n"
                                        "inputs: {x: {type: NoSuchType}}\noutputs: {}\n")
    result = run_runner(tmp_path, server.create_token(), "--cluster", server.url, "--submit",
                        "broken.cwl", cwd=workdir)
    assert result.returncode != 0
    assert "NoSuchType" in result.stderr
    assert server.core.list_jobs(JobFilter(top_level=True)) == []
