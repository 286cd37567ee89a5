"""The job API of an embedded cluster (server/job_api.py): a job's environment names only
the API and the job's token, the process running the jobs serves that API on loopback,
and a job's program reaches the cluster through it as the job, exactly as on a server.

The job programs run this worktree's cwl_crunch (PYTHONPATH), not an installed one.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cwl_crunch
from cwl_crunch import CollectionMount
from cwl_crunch.client import JobFilter

WAIT = 90
SOURCE = str(Path(cwl_crunch.__file__).resolve().parents[1])
EXAMPLE = Path(__file__).resolve().parents[2] / "cwl-examples" / "gc-content"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[cwl_crunch.Cluster]:
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05) as cluster:
        yield cluster


def run_program(cluster: cwl_crunch.Cluster, program: str, *args: str,
                **spec: Any) -> dict[str, Any]:
    """Run ``program`` as a job; what it wrote to out/result.json."""
    future = cluster.submit([sys.executable, "-c", textwrap.dedent(program), *args],
                            cores=0.25, env={"PYTHONPATH": SOURCE}, name="program", **spec)
    record = cluster.client.wait([future.uuid], timeout=WAIT)[0]
    assert record.finished and record.output_pdh is not None, record
    stderr = "".join(chunk.decode() for chunk in
                     cluster.client.read_file(record.log_pdh or "", "stderr.txt"))
    assert record.succeeded, stderr
    result: dict[str, Any] = json.loads(cluster.read_text(record.output_pdh, "result.json"))
    result["uuid"] = future.uuid
    return result


ENVIRONMENT = """
    import json, os
    ours = {k: v for k, v in os.environ.items() if k.startswith("CWL_CRUNCH_")}
    result = {"env": ours}
    json.dump(result, open("out/result.json", "w"))
    import httpx
    url = ours["CWL_CRUNCH_API_URL"] + "/api/v1/caller"
    mine = httpx.get(url, headers={"Authorization": "Bearer " + ours["CWL_CRUNCH_API_TOKEN"]},
                     timeout=60)
    result.update(status=mine.status_code, caller=mine.json(),
                  anonymous=httpx.get(url, timeout=60).status_code)
    json.dump(result, open("out/result.json", "w"))
"""


def test_an_embedded_job_sees_only_its_api_and_token(embedded):
    result = run_program(embedded, ENVIRONMENT)
    # No home, records database, store or work dir: a program could open the cluster
    # embedded with those (the token table included).
    assert sorted(result["env"]) == ["CWL_CRUNCH_API_TOKEN", "CWL_CRUNCH_API_URL"]
    url = urllib.parse.urlsplit(result["env"]["CWL_CRUNCH_API_URL"])
    assert url.scheme == "http" and url.hostname == "127.0.0.1" and url.port
    # The API answers the job's token as the job's, and nothing without one.
    assert result["status"] == 200
    assert result["caller"]["job_uuid"] == result["uuid"]
    assert result["anonymous"] == 401


CHILDREN = """
    import json, pathlib, sys
    import cwl_crunch
    cluster = cwl_crunch.connect()
    given = cluster.read_text(sys.argv[1], "input.txt")
    children = [cluster.submit(["sh", "-c", f"echo {i} > out/n"], cores=0.25,
                               name=f"child-{i}") for i in range(3)]
    records = cwl_crunch.wait_all(children, timeout=60)
    pathlib.Path("made.txt").write_text("made from " + given)
    made = cluster.put("made.txt")
    json.dump({"client": type(cluster.client).__name__, "given": given,
               "mounted": pathlib.Path("in/input.txt").read_text(),
               "children": [r.uuid for r in records],
               "outputs": [cluster.read_text(r.output_pdh, "n") for r in records],
               "made": made}, open("out/result.json", "w"))
"""


def test_a_job_program_uses_the_embedded_cluster_through_its_api(embedded, tmp_path):
    (tmp_path / "input.txt").write_text("the input\n")
    given = embedded.put(tmp_path / "input.txt")
    result = run_program(embedded, CHILDREN, given, mounts={"in": CollectionMount(given)})
    assert result["client"] == "HttpClient"  # not the records and store, opened embedded
    assert result["given"] == result["mounted"] == "the input\n"
    # Its children are its own in the process tree, and ran.
    children = embedded.client.list_jobs(JobFilter(parent_uuid=result["uuid"]))
    assert sorted(child.uuid for child in children) == sorted(result["children"])
    assert sorted(child.name for child in children) == ["child-0", "child-1", "child-2"]
    assert all(child.succeeded for child in children)
    assert result["outputs"] == ["0\n", "1\n", "2\n"]
    assert embedded.client.list_jobs(JobFilter(top_level=True))[0].uuid == result["uuid"]
    # What it stored is in the cluster.
    assert embedded.read_text(result["made"], "made.txt") == "made from the input\n"


TRESPASS = """
    import json, sys
    import cwl_crunch
    cluster = cwl_crunch.connect()
    tries = {}
    for pdh in sys.argv[1:]:
        for what, attempt in (
                ("read", lambda: cluster.read_text(pdh, "secret.txt")),
                ("list", lambda: cluster.client.list_collection(pdh)),
                ("mount", lambda: cluster.submit(["cat", "s/secret.txt"],
                                                 mounts={"s": cwl_crunch.CollectionMount(pdh)})
                                         .result(timeout=60))):
            try:
                attempt()
                tries[f"{what} {pdh}"] = "allowed"
            except cwl_crunch.CrunchError as error:
                tries[f"{what} {pdh}"] = getattr(error, "status", None) or str(error)
    json.dump({"tries": tries}, open("out/result.json", "w"))
"""


def test_a_jobs_token_cannot_read_what_is_not_its_own(embedded, tmp_path):
    (tmp_path / "secret.txt").write_text("a person's secret\n")
    persons = embedded.put(tmp_path / "secret.txt")
    sibling = embedded.submit(["sh", "-c", "echo the sibling secret > out/secret.txt"],
                              cores=0.25).output
    result = run_program(embedded, TRESPASS, persons, sibling)
    assert result["tries"] == {f"{what} {pdh}": 403 for pdh in (persons, sibling)
                               for what in ("read", "list", "mount")}


def test_the_runner_as_a_job_of_an_embedded_cluster(embedded, tmp_path):
    """``cwl-crunch-runner`` started as a job: its steps become its children, through
    the job API (its environment names no cluster home)."""
    example = tmp_path / "gc-content"
    shutil.copytree(EXAMPLE, example)
    workflow = embedded.put(example)
    run = embedded.submit(
        [sys.executable, "-m", "cwl_crunch.cli.runner", "--quiet", "--outdir", "out",
         "wf/gc-content/workflow.cwl", "wf/gc-content/inputs.yml"],
        mounts={"wf": CollectionMount(workflow)}, stdout="out/cwl.output.json",
        cores=0.25, ram=1 << 30, env={"PYTHONPATH": SOURCE}, name="runner")
    record = embedded.client.wait([run.uuid], timeout=180)[0]
    stderr = "".join(chunk.decode() for chunk in
                     embedded.client.read_file(record.log_pdh or "", "stderr.txt"))
    assert record.succeeded, stderr
    output = json.loads(embedded.read_text(run.output, "cwl.output.json"))
    assert [f["basename"] for f in output["per_sample"]] == [
        "sample_a.tsv", "sample_b.tsv", "sample_c.tsv"]
    summary = embedded.read_text(run.output, "gc_summary.tsv").splitlines()
    assert [line.split("\t")[0] for line in summary[1:]] == ["sample_a", "sample_b", "sample_c"]
    steps = embedded.client.list_jobs(JobFilter(parent_uuid=run.uuid))
    assert sorted(step.name for step in steps) == [
        "workflow/gc/0", "workflow/gc/1", "workflow/gc/2", "workflow/summary"]
    assert all(step.state == "Complete" for step in steps)
