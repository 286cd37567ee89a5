"""start_own_job: a process records the work it does itself (a workflow runner) as a job."""

from __future__ import annotations

import subprocess
import sys
import time

import cwl_crunch
from cwl_crunch.client import JobFilter, JobOutcome, JobSpec
from cwl_crunch.worker.processes import this_worker


def test_own_job_is_running_at_once_and_its_token_makes_children(tmp_path):
    home = tmp_path / "home"
    with cwl_crunch.connect(home=home, max_cores=1.0) as cluster:
        claim = cluster.client.start_own_job(JobSpec(("my-runner",), name="run"),
                                             this_worker())
        assert claim.job.state == "Running"
        assert claim.job.spec.reuse is False
        # Its token makes the jobs submitted with it its children, and it holds none of
        # the one core: a 1-core child still runs while it is Running.
        with cwl_crunch.connect(home=home, max_cores=1.0, api_token=claim.token) as run:
            child = run.submit(["true"], cores=1.0).result(timeout=30)
        assert child.parent_uuid == claim.job.uuid
        finished = cluster.client.finish_job(
            claim.job.uuid, JobOutcome("Complete", 0, None, None))
        assert finished.state == "Complete"
        assert [job.uuid for job in cluster.client.list_jobs(
            JobFilter(parent_uuid=claim.job.uuid))] == [child.uuid]


def test_own_job_of_a_process_that_died_ends_failed(tmp_path):
    home = tmp_path / "home"
    program = (
        "import os, cwl_crunch\n"
        "from cwl_crunch.client import JobSpec\n"
        "from cwl_crunch.worker.processes import this_worker\n"
        "cluster = cwl_crunch.connect()\n"
        "print(cluster.client.start_own_job(JobSpec(('r',)), this_worker()).job.uuid, "
        "flush=True)\n"
        "os._exit(0)\n"  # dies without finishing its job
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60, check=True,
                          env={"CWL_CRUNCH_HOME": str(home), "PATH": "/usr/bin:/bin"})
    uuid = done.stdout.strip()
    with cwl_crunch.connect(home=home) as cluster:
        deadline = time.monotonic() + 10
        while cluster.client.get_job(uuid).state == "Running" and time.monotonic() < deadline:
            time.sleep(0.1)
        job = cluster.client.get_job(uuid)
        assert job.state == "Failed"
        assert "died" in (job.failure_reason or "")
