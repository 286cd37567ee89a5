"""A job whose token does more than pure work (here: lists jobs) is marked impure by
the cluster, from its own records, and is never reused. Embedded (the cluster serves
its API to its jobs) and through a server."""

from __future__ import annotations

import sys
from pathlib import Path

import cwl_crunch
from cwl_crunch.model import CollectionMount, JobSpec

LISTS_JOBS = """
import os, httpx
url, token = os.environ["CWL_CRUNCH_API_URL"], os.environ["CWL_CRUNCH_API_TOKEN"]
auth = {"Authorization": "Bearer " + token}
me = httpx.get(url + "/api/v1/caller", headers=auth, timeout=60).json()["job_uuid"]
listed = httpx.get(url + "/api/v1/jobs", params={"parent": me}, headers=auth, timeout=60)
print(listed.status_code, len(listed.json()))
"""
READS_ONLY = """
import os, httpx
url, token = os.environ["CWL_CRUNCH_API_URL"], os.environ["CWL_CRUNCH_API_TOKEN"]
print(httpx.get(url + "/api/v1/caller", headers={"Authorization": "Bearer " + token},
                timeout=60).status_code)
"""


def _spec(cluster: cwl_crunch.Cluster, tmp_path: Path, program: str) -> JobSpec:
    (tmp_path / "program.py").write_text(program)
    source = str(Path(cwl_crunch.__file__).parent.parent)
    return JobSpec((sys.executable, "in/program.py"), stdout="out/said.txt", cores=0.25,
                   environment={"PYTHONPATH": source},
                   mounts={"in": CollectionMount(cluster.put(tmp_path / "program.py"))})


def test_an_impure_job_is_marked_and_not_reused(cluster, tmp_path):
    spec = _spec(cluster, tmp_path, LISTS_JOBS)
    first = cluster.client.submit(spec)
    [done] = cluster.client.wait([first.uuid], timeout=120)
    assert done.succeeded, done
    said = cluster.read_text(done.output_pdh or "", "said.txt")
    assert said.startswith("200"), said
    assert done.impure == "GET /api/v1/jobs (list jobs)"
    # The same work again runs again: a listing's answer depends on when it is asked.
    again = cluster.client.submit(spec)
    assert again.reused_job_uuid is None
    [rerun] = cluster.client.wait([again.uuid], timeout=120)
    assert rerun.succeeded and rerun.reused_job_uuid is None
    assert rerun.started_at is not None and rerun.uuid != done.uuid


def test_a_pure_job_is_still_reused(cluster, tmp_path):
    spec = _spec(cluster, tmp_path, READS_ONLY)
    first = cluster.client.submit(spec)
    [done] = cluster.client.wait([first.uuid], timeout=120)
    assert done.succeeded and done.impure is None, done
    again = cluster.client.submit(spec)
    assert again.reused_job_uuid == done.uuid and again.complete


def test_a_follower_of_a_leader_that_turns_impure_runs_itself(cluster, tmp_path):
    """The second submission joins the first while it runs; the first then lists jobs.
    Its result is not the key's, so the follower runs itself instead of taking it."""
    spec = _spec(cluster, tmp_path, "import time; time.sleep(1)\n" + LISTS_JOBS)
    leader = cluster.client.submit(spec)
    follower = cluster.client.submit(spec)
    assert follower.reused_job_uuid == leader.uuid  # joined, not yet reused
    [led, followed] = cluster.client.wait([leader.uuid, follower.uuid], timeout=180)
    assert led.succeeded and led.impure is not None, led
    assert followed.succeeded, followed
    assert followed.reused_job_uuid is None
    assert followed.output_pdh is not None
    assert followed.impure is not None  # it ran the listing itself
