"""examples/gc_content.py on an embedded cluster: the driver job reaches the cluster
through the API the cluster serves to its jobs, with a token that reads only what the
driver was given (its FASTA collection is mounted, not only named)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cwl_crunch
from cwl_crunch.client import JobFilter

ROOT = Path(__file__).resolve().parents[1]


def run_example(home: Path) -> subprocess.CompletedProcess[str]:
    env = {"CWL_CRUNCH_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "examples" / "gc_content.py")],
                          capture_output=True, text=True, timeout=180, check=False, env=env)


def test_gc_content_example_runs_embedded_and_reuses_everything_the_second_time(tmp_path):
    first = run_example(tmp_path / "home")
    assert first.returncode == 0, first.stderr
    rows = [line.split("\t") for line in first.stdout.splitlines()[1:4]]
    assert [row[0] for row in rows] == ["sample_a", "sample_b", "sample_c"]
    with cwl_crunch.connect(home=tmp_path / "home") as cluster:
        [driver] = cluster.client.list_jobs(JobFilter(top_level=True))
        children = cluster.client.list_jobs(JobFilter(parent_uuid=driver.uuid))
    assert driver.succeeded
    assert sorted(child.name for child in children) == [
        "gc/sample_a", "gc/sample_b", "gc/sample_c", "gc/summary"]
    again = run_example(tmp_path / "home")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[:4] == first.stdout.splitlines()[:4]
    assert f"(reused {driver.uuid})" in again.stdout
