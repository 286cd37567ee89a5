"""The contract every dispatcher keeps, checked the same way for each kind of dispatcher:
jobs are submitted, their resources honoured, cancelled, stopped at their time limit,
their exit codes recorded, and a restart of the cluster's server neither loses nor
repeats them.

Each kind is reached as its users reach it: through a ClusterClient of a server on a
fresh cluster home. Everything that depends on the kind is in the ``dispatching``
fixture, one branch per kind; the tests are the same for all.

The jobs write what they saw (wall-clock stamps, their pids, one line per run) into
files: into their output, or to absolute paths under the test's tmp_path, which the
job's own directory is not.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from leftovers import cancel_unfinished
from polling import wait_until
from procs import processes_with

from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import Config, load_config
from cwl_crunch.model import ClusterClient, JobRecord, JobSpec
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.worker.processes import is_alive, start_ticks

pytestmark = pytest.mark.timeout(90)

WAIT = 30
"""Seconds a job that should end soon may take before a test fails."""

# Start and end stamps around a sleep; $TAG keeps otherwise equal jobs apart.
TIMED = 'date +%s.%N > out/start; sleep "$NAP"; date +%s.%N > out/end; echo "$TAG" > out/tag'


class Dispatching:
    """One kind of dispatcher under test.

    ``client`` reaches a cluster whose jobs this dispatcher runs; ``capacity_cores`` is
    what it may run at once (one machine's worth); ``restart()`` stops the cluster's
    server and starts another on the same cluster, replacing ``client``.
    """

    def __init__(self, open_client: Callable[[], tuple[ClusterClient, Callable[[], None]]],
                 capacity_cores: float, smallest_cores: float) -> None:
        self._open = open_client
        self.capacity_cores = capacity_cores
        self.smallest_cores = smallest_cores
        """Cores of the jobs the tests submit unless they say (the least this kind of
        dispatcher takes: SLURM allocates whole CPUs)."""
        self.client, self._close = open_client()

    def job(self, command: str, **fields) -> JobSpec:
        """A shell command as a job: small, and never reused."""
        return JobSpec(command=("sh", "-c", command), **{
            "cores": self.smallest_cores, "ram": 16 << 20, "reuse": False, **fields})

    def timed(self, tag: str, nap: float, cores: float) -> JobSpec:
        return self.job(TIMED, cores=cores, environment={"TAG": tag, "NAP": str(nap)})

    def restart(self) -> None:
        self._close()
        self.client, self._close = self._open()

    def close(self) -> None:
        """Cancel what a test left unfinished (closing waits for running jobs, and a
        failed test must not hang on its ``sleep 60``), then close."""
        try:
            cancel_unfinished(self.client, settle=WAIT)
        finally:
            self._close()


def server_client(config: Config, port: int = 0
                  ) -> tuple[ClusterClient, Callable[[], None], int]:
    """A client of a server on the cluster of ``config``, run as ``cwl-crunch server``
    runs it (the local dispatcher in a child process); its close; the server's port."""
    stack = contextlib.ExitStack()
    try:
        server = stack.enter_context(ServerThread(config, dispatch_in_child=True, port=port))
        client = HttpClient(config.replace(api_url=server.url,
                                           api_token=server.create_token()))
    except BaseException:
        stack.close()
        raise
    stack.callback(client.close)  # before the server's close
    return client, stack.close, int(server.url.rsplit(":", 1)[1])


@pytest.fixture(params=["local", pytest.param("slurm", marks=[
    pytest.mark.slurm, pytest.mark.xdist_group("slurm")])])
def dispatching(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dispatching]:
    if request.param == "local":
        config = load_config(environ={}, home=tmp_path / "home", poll_interval=0.05,
                             max_cores=2.0)

        def open_client() -> tuple[ClusterClient, Callable[[], None]]:
            client, close, _ = server_client(config)
            return client, close

        kind = Dispatching(open_client, capacity_cores=2.0, smallest_cores=0.1)
    elif request.param == "slurm":
        config = load_config(environ={}, home=tmp_path / "home", poll_interval=0.05,
                             dispatcher="slurm")
        port = 0

        def open_client() -> tuple[ClusterClient, Callable[[], None]]:
            nonlocal port
            # The same port after a restart: the running jobs' workers report there.
            client, close, port = server_client(config, port)
            return client, close

        kind = Dispatching(open_client, capacity_cores=request.getfixturevalue("slurm_cpus"),
                           smallest_cores=1.0)
    else:
        raise ValueError(f"no fixture for dispatcher kind {request.param!r}")
    try:
        yield kind
    finally:
        kind.close()


# Helpers ---------------------------------------------------------------------------------

def ended(client: ClusterClient, uuids: Sequence[str], timeout: float = WAIT
          ) -> list[JobRecord]:
    records = client.wait(list(uuids), timeout=timeout)
    unfinished = [(r.uuid, r.state) for r in records if not r.finished]
    assert not unfinished, f"not ended in {timeout} s: {unfinished}"
    return records


def running(client: ClusterClient, uuid: str, timeout: float = WAIT) -> JobRecord:
    return wait_until(lambda: (r := client.get_job(uuid)).state == "Running" and r,
                      timeout=timeout, what=f"job {uuid} runs")


def read(client: ClusterClient, record: JobRecord, path: str) -> str:
    assert record.output_pdh, record
    return b"".join(client.read_file(record.output_pdh, path)).decode()


def intervals(client: ClusterClient, records: Sequence[JobRecord]
              ) -> list[tuple[float, float]]:
    """When each job's command ran, by the stamps the command wrote itself (the records'
    started_at and finished_at also cover claiming and storing the outputs)."""
    spans = []
    for final in ended(client, [r.uuid for r in records]):
        assert final.succeeded, (final.state, final.exit_code, final.failure_reason)
        start, end = (float(read(client, final, name)) for name in ("start", "end"))
        assert start < end
        spans.append((start, end))
    return spans


def events_of(client: ClusterClient, uuid: str) -> list[str]:
    return [event.state for event in client.events(0, timeout=0) if event.job_uuid == uuid]


# The contract ----------------------------------------------------------------------------

def test_a_submitted_job_runs_and_its_output_is_stored(dispatching):
    client = dispatching.client
    record = client.submit(dispatching.job('echo "$GREETING" > out/said.txt',
                               environment={"GREETING": "hello from the job"}))
    assert record.state in ("Queued", "Running")
    [final] = ended(client, [record.uuid])
    assert final.succeeded, (final.state, final.exit_code, final.failure_reason)
    assert final.started_at is not None and final.finished_at is not None
    assert final.created_at <= final.started_at <= final.finished_at
    assert read(client, final, "said.txt") == "hello from the job\n"
    assert final.log_pdh


def test_exit_codes_are_recorded(dispatching):
    client = dispatching.client
    # The command ran to its end: Complete whatever its exit code; only 0 is success.
    three, zero = (client.submit(dispatching.job(command)) for command in ("exit 3", "true"))
    three, zero = ended(client, [three.uuid, zero.uuid])
    assert (three.state, three.exit_code, three.succeeded) == ("Complete", 3, False), three
    assert (zero.state, zero.exit_code, zero.succeeded) == ("Complete", 0, True), zero


def test_jobs_needing_the_whole_capacity_never_overlap(dispatching):
    client, whole = dispatching.client, dispatching.capacity_cores
    records = [client.submit(dispatching.timed(f"whole{i}", 1.0, whole)) for i in range(2)]
    first, second = sorted(intervals(client, records))
    assert first[1] <= second[0], f"overlapped: {first} and {second}"


def test_jobs_that_fit_together_run_together(dispatching):
    client, half = dispatching.client, dispatching.capacity_cores / 2
    records = [client.submit(dispatching.timed(f"half{i}", 1.0, half)) for i in range(2)]
    first, second = sorted(intervals(client, records))
    assert second[0] < first[1], f"ran one after the other: {first} and {second}"


def test_a_cancelled_job_ends_and_its_processes_are_gone(dispatching, tmp_path):
    client = dispatching.client
    started = tmp_path / "started"
    seconds = f"60.{time.time_ns() % 10**9:09d}"
    # The shell and the sleep it started: the whole job must go, not only its leader.
    # Found by the sleep's unique duration on their command lines ($$ and $! would be
    # pids in the job's own PID namespace).
    record = client.submit(dispatching.job(
        f'sleep {seconds} & touch {shlex.quote(str(started))}; wait'))
    running(client, record.uuid)
    wait_until(started.exists, what="the job's sleep")
    processes = [(pid, start_ticks(pid)) for pid in processes_with(seconds)]
    assert len(processes) >= 2, processes  # at least the shell and its sleep
    try:
        client.cancel(record.uuid)
        [final] = ended(client, [record.uuid], timeout=10)
        assert final.state == "Cancelled", final
        assert final.output_pdh is None
        assert [pid for pid, ticks in processes if is_alive(pid, ticks)] == []
    finally:
        for pid, ticks in processes:
            if is_alive(pid, ticks):
                os.kill(pid, signal.SIGKILL)


def test_a_job_over_its_time_limit_is_stopped_and_fails(dispatching):
    client = dispatching.client
    record = client.submit(dispatching.job("sleep 60", time_limit=1))
    [final] = ended(client, [record.uuid], timeout=15)
    assert final.state == "Failed", final
    assert re.search(r"time ?limit", final.failure_reason or "", re.IGNORECASE), final
    assert final.output_pdh is None


def test_a_restart_neither_loses_nor_repeats_jobs(dispatching, tmp_path):
    """A job running when the server stops ends Complete once (a dispatcher may finish it
    before stopping, as the local one does, or adopt it again after), and the jobs queued
    before and after the restart run once each."""
    client, whole = dispatching.client, dispatching.capacity_cores
    runs = {name: tmp_path / f"{name}.runs" for name in ("running", "queued", "later")}

    def counting(name: str, command: str = "true", **fields) -> JobSpec:
        return dispatching.job(f"echo ran >> {shlex.quote(str(runs[name]))}; {command}",
                               **fields)

    # Running when the server stops (it holds the whole capacity, so the next waits).
    sleeping = client.submit(counting("running", "sleep 2", cores=whole))
    running(client, sleeping.uuid)
    wait_until(runs["running"].exists, what="the running job started")
    queued = client.submit(counting("queued", cores=whole))
    # Waiting for cores: Queued here, or Running in SLURM's queue (already handed over).
    assert client.get_job(queued.uuid).state in ("Queued", "Running")
    assert not runs["queued"].exists()
    assert client.get_job(sleeping.uuid).state == "Running"

    dispatching.restart()
    client = dispatching.client
    later = client.submit(counting("later"))
    finals = ended(client, [sleeping.uuid, queued.uuid, later.uuid])
    for final in finals:
        assert final.succeeded, (final.state, final.exit_code, final.failure_reason)
    for name, path in runs.items():
        assert path.read_text() == "ran\n", f"the {name} job ran {path.read_text().count('ran')}x"
    for final in finals:
        states = events_of(client, final.uuid)
        assert states.count("Running") == 1 and states.count("Complete") == 1, states

