"""The server's dispatcher in a child process (``dispatch.child``): it runs the jobs the
server's process records, a wake-up reaches it at once, a child that dies is replaced
at once (and what it ran is failed, not left Running), and stopping the server stops it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_until

from cwl_crunch.config import load_config
from cwl_crunch.core import ClusterCore
from cwl_crunch.dispatch.child import ChildProcessDispatcher
from cwl_crunch.model import JobRecord, JobSpec
from cwl_crunch.worker.processes import is_alive

QUICK = {"cores": 0.1, "ram": 1 << 20, "reuse": False}
SERVER_URL = "http://127.0.0.1:9/said-by-the-server"
"""What a server passes as its jobs' API (nothing answers there: only its value counts)."""


@pytest.fixture
def core(tmp_path: Path) -> Iterator[ClusterCore]:
    # A poll interval far longer than the test waits: only the wake-up signal can make
    # the child look at the queue in time.
    config = load_config(home=tmp_path / "home", poll_interval=30.0)
    client = ClusterCore(config, job_api=SERVER_URL, dispatch_in_child=True)
    yield client
    client.close()


def ended(core: ClusterCore, uuids: list[str], timeout: float = 20) -> list[JobRecord]:
    """The jobs' final records. Read until they end: ``core.wait`` would sleep a poll
    interval (30 s) between reads, the jobs' ends being recorded by another process."""
    def records() -> list[JobRecord] | None:
        found = core.get_jobs(uuids)
        return found if all(job.finished for job in found) else None
    return wait_until(records, timeout=timeout, what="the jobs end")


def child_pid(core: ClusterCore) -> int:
    assert isinstance(core.dispatcher, ChildProcessDispatcher)
    pid = core.dispatcher.pid
    assert pid is not None and pid != os.getpid()
    return pid


def test_jobs_run_in_the_child_with_the_servers_job_environment(core):
    """The child opens the cluster embedded (its environment names the home, records
    and store); its jobs get none of that: only the server's URL and their token."""
    started = time.monotonic()
    job = core.submit(JobSpec(("sh", "-c", "env > out/env"), **QUICK))
    [done] = ended(core, [job.uuid])
    assert done.succeeded, done
    assert time.monotonic() - started < 20  # woken, not polled (30 s)
    # The job's own PID namespace hides its worker: the worker's log names it.
    log = b"".join(core.read_file(done.log_pdh or "", "worker.txt")).decode()
    assert f" on pid {child_pid(core)}\n" in log
    with open(f"/proc/{child_pid(core)}/environ", "rb") as child_environ:
        assert b"CWL_CRUNCH_DATABASE_URL=" in child_environ.read()
    shown = b"".join(core.read_file(done.output_pdh or "", "env")).decode().splitlines()
    ours = dict(line.split("=", 1) for line in shown if line.startswith("CWL_CRUNCH_"))
    assert ours.pop("CWL_CRUNCH_API_URL") == SERVER_URL
    assert ours.pop("CWL_CRUNCH_API_TOKEN").startswith("crunch/")
    assert ours == {}


def test_each_submission_wakes_the_child(core):
    first = core.submit(JobSpec(("true",), **QUICK))
    ended(core, [first.uuid])
    # The child is idle now and would not poll for 30 s.
    later = [core.submit(JobSpec(("true", str(i)), **QUICK)).uuid for i in range(3)]
    assert all(job.succeeded for job in ended(core, later, timeout=10))


def test_a_child_that_dies_is_replaced_and_its_job_fails(core):
    warm = core.submit(JobSpec(("true",), **QUICK))
    ended(core, [warm.uuid])
    first_child = child_pid(core)
    running = core.submit(JobSpec(("sleep", "60"), **QUICK))
    wait_until(lambda: core.get_job(running.uuid).state == "Running", what="sleep runs")
    os.kill(first_child, signal.SIGKILL)
    # Another child starts without being asked, and fails what the dead one ran.
    [orphan] = ended(core, [running.uuid])
    assert orphan.state == "Failed"
    assert "died" in (orphan.failure_reason or ""), orphan.failure_reason
    # The new child fails the orphan before it says it is ready (and is known here).
    wait_until(lambda: child_pid(core) != first_child, what="a new child")
    after = core.submit(JobSpec(("true", "after"), **QUICK))
    [done] = ended(core, [after.uuid])
    assert done.succeeded


def test_closing_the_server_stops_the_child_after_its_jobs(tmp_path):
    config = load_config(home=tmp_path / "home", poll_interval=30.0)
    client = ClusterCore(config, dispatch_in_child=True)
    job = client.submit(JobSpec(("sleep", "1"), **QUICK))
    wait_until(lambda: client.get_job(job.uuid).state == "Running", what="sleep runs")
    pid = child_pid(client)
    client.close()  # waits: the child completes its running job first
    assert not is_alive(pid, None)
    reopened = ClusterCore(config)
    try:
        assert reopened.get_job(job.uuid).succeeded
    finally:
        reopened.close()

