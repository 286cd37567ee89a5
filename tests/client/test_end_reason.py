"""Every end of a job records a structured end reason (EndReason) and the backend that
ran it, embedded and over HTTP (the ``client`` fixture), on the local dispatcher with
real processes: the command exits, hits its time limit, is cancelled, or its worker
process is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

from polling import wait_until
from procs import sleeping

from cwl_crunch import JobSpec
from cwl_crunch.client import EndReason
from cwl_crunch.worker.processes import start_ticks, this_worker

WAIT = 30


def finished(client, uuid_, timeout=WAIT):
    final = client.wait([uuid_], timeout=timeout)[0]
    assert final.finished, f"job {uuid_} still {final.state} after {timeout} s"
    return final


def unique_seconds(base):
    return f"{base}.{uuid.uuid4().int % 10**9:09d}"


def test_a_command_that_exits_ends_with_exit(client):
    ok = client.submit(JobSpec(("true",), cores=0.25))
    failed = client.submit(JobSpec(("sh", "-c", "exit 3"), cores=0.25))
    ok, failed = finished(client, ok.uuid), finished(client, failed.uuid)
    assert (ok.state, ok.exit_code, ok.end_reason) == ("Complete", 0, EndReason.EXIT)
    # A non-zero exit is Complete too: the exit code says how it went.
    assert (failed.state, failed.exit_code, failed.end_reason) == (
        "Complete", 3, EndReason.EXIT)
    # A local job: its worker's host and pid are its backend state, not an id.
    assert (ok.backend, ok.backend_job_id) == ("local", None)
    again = finished(client, client.submit(JobSpec(("true",), cores=0.25)).uuid)
    assert (again.reused_job_uuid, again.end_reason) == (ok.uuid, EndReason.REUSED)


def test_a_command_stopped_at_its_time_limit_ends_with_time_limit(client):
    record = client.submit(JobSpec(("sleep", unique_seconds(30)), cores=0.25,
                                   time_limit=1))
    final = finished(client, record.uuid)
    assert final.state == "Failed"
    assert "time limit" in (final.failure_reason or "")
    assert final.end_reason == EndReason.TIME_LIMIT


def test_a_cancelled_job_ends_with_cancelled_queued_or_running(client):
    seconds = unique_seconds(60)
    running = client.submit(JobSpec(("sleep", seconds), cores=0.25))
    wait_until(lambda: sleeping(seconds), WAIT, "the sleep to start")
    client.cancel(running.uuid)
    final = finished(client, running.uuid, timeout=15)
    assert (final.state, final.end_reason, final.backend) == (
        "Cancelled", EndReason.CANCELLED, "local")
    # Queued behind a job that holds every core: cancelled before it ever ran.
    every_core = float(os.cpu_count() or 1)
    hog_seconds = unique_seconds(61)
    hog = client.submit(JobSpec(("sleep", hog_seconds), cores=every_core))
    wait_until(lambda: sleeping(hog_seconds), WAIT, "the hog to start")
    queued = client.submit(JobSpec(("sleep", unique_seconds(62)), cores=every_core))
    assert client.get_job(queued.uuid).state == "Queued"
    client.cancel(queued.uuid)
    never_ran = finished(client, queued.uuid, timeout=15)
    assert (never_ran.state, never_ran.end_reason, never_ran.backend) == (
        "Cancelled", EndReason.CANCELLED, None)
    client.cancel(hog.uuid)


def test_a_job_whose_worker_is_killed_ends_with_worker_died(client):
    worker = subprocess.Popen(["sleep", unique_seconds(120)])
    try:
        me = this_worker()
        claim = client.start_own_job(
            JobSpec(("my-runner",), name="run"),
            type(me)(host=me.host, pid=worker.pid, pid_start=start_ticks(worker.pid) or 0))
        assert claim.job.backend == "local"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        # Waiting runs the dispatcher (embedded), whose periodic check reaps the job.
        final = finished(client, claim.job.uuid)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert final.state == "Failed"
    assert "died" in (final.failure_reason or "")
    assert final.end_reason == EndReason.WORKER_DIED
