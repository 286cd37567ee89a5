"""The SLURM dispatcher against the real one-node SLURM cluster of scripts/slurm-setup.sh:
what no contract test of other dispatchers covers (refusals, faults, where sub-core jobs
go, re-adoption after a restart). Every test here shares that node with the others of
the "slurm" group, and one takes it down: they run one at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from leftovers import cancel_unfinished
from polling import wait_until
from resource_tools import CORES_TOOL
from sqlalchemy import update

from cwl_crunch.cli.main import main
from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import load_config
from cwl_crunch.dispatch.slurm_commands import SlurmJob, parse_squeue, squeue_arguments
from cwl_crunch.dispatch.slurm_tracking import BACKEND
from cwl_crunch.model import ClusterClient, EndReason, JobFilter, JobRecord, JobSpec
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database
from cwl_crunch.server.serve import ServerThread

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm"), pytest.mark.timeout(240)]

WAIT = 60
"""Seconds a job that should end soon may take (SLURM schedules about once a second)."""


class SlurmServer:
    """``cwl-crunch server --dispatcher slurm`` on a fresh home, restartable on its port."""

    def __init__(self, home: Path, **settings: str) -> None:
        self.config = load_config(environ={}, home=home, poll_interval=0.05,
                                  dispatcher="slurm", **settings)
        self._port = 0
        self._stack = contextlib.ExitStack()
        self.client: ClusterClient
        self.url = ""
        self.start()

    def start(self) -> None:
        server = self._stack.enter_context(
            ServerThread(self.config, dispatch_in_child=True, port=self._port))
        self.url = server.url
        self._port = int(server.url.rsplit(":", 1)[1])
        self.token = server.create_token()
        self.client = HttpClient(self.config.replace(api_url=server.url,
                                                     api_token=self.token))
        self._stack.callback(self.client.close)

    def stop(self) -> None:
        self._stack.close()

    def records(self) -> Database:
        return Database(self.config.database)

    def slurm_id(self, uuid: str) -> str:
        """The SLURM job id the records give the job (once sbatch answered)."""
        def recorded() -> str | None:
            database = self.records()
            try:
                with database.reading() as connection:
                    row = jobs.get_job(connection, uuid)
            finally:
                database.close()
            if row.state == "Queued":
                return None
            assert row.backend == BACKEND, (row.state, row.backend)
            assert row.worker_host is None and row.worker_pid is None, row
            return str(row.backend_job_id) if row.backend_job_id else None
        return wait_until(recorded, timeout=WAIT, what=f"job {uuid} handed to SLURM")


@pytest.fixture
def server(slurm_cpus: int, tmp_path: Path) -> Iterator[SlurmServer]:
    started = SlurmServer(tmp_path / "home")
    try:
        yield started
    finally:
        try:
            cancel_unfinished(started.client, settle=WAIT)
        finally:
            started.stop()


def job(command: str, **fields) -> JobSpec:
    return JobSpec(command=("sh", "-c", command), **{
        "cores": 1.0, "ram": 16 << 20, "reuse": False, **fields})


def ended(client: ClusterClient, uuid: str, timeout: float = WAIT) -> JobRecord:
    [record] = client.wait([uuid], timeout=timeout)
    assert record.finished, f"job {uuid} still {record.state} after {timeout} s"
    return record


def slurm_jobs_of(uuid: str) -> list[SlurmJob]:
    """Every SLURM job SLURM still knows that ran (or runs) cwl-crunch job ``uuid``."""
    listed = subprocess.run(squeue_arguments(), capture_output=True, text=True, check=True)
    return [job for job in parse_squeue(listed.stdout).values() if job.job_uuid == uuid]


def run(*arguments: str) -> str:
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (arguments, done.stderr)
    return done.stdout


# Refusals: the job fails at once, with SLURM's words ---------------------------------------

@pytest.mark.parametrize(("fields", "words"), [
    ({"properties": {"partition": "nope"}}, "invalid partition"),
    ({"cores": 64}, "more processors requested than permitted"),
    ({"ram": 1 << 50}, "node configuration is not available"),
], ids=["unknown-partition", "too-many-cpus", "too-much-memory"])
def test_what_slurm_can_never_run_fails_at_once_with_slurms_message(server, fields, words):
    submitted = time.monotonic()
    record = server.client.submit(job("true", **fields))
    final = ended(server.client, record.uuid, timeout=20)
    assert final.state == "Failed", final
    assert "SLURM refused the job" in (final.failure_reason or ""), final.failure_reason
    assert words in (final.failure_reason or "").lower(), final.failure_reason
    assert final.end_reason == EndReason.REFUSED, final
    assert time.monotonic() - submitted < 10


def test_slurm_is_asked_for_the_jobs_resources_and_partition(server):
    record = server.client.submit(job("true", properties={"partition": "other"}, cores=1.5,
                                      ram=100 << 20, time_limit=60))
    assert ended(server.client, record.uuid).succeeded
    [placed] = slurm_jobs_of(record.uuid)
    shown = run("scontrol", "show", "job", "--oneliner", placed.slurm_id).split()
    # Whole CPUs; the time limit with 10 minutes for staging and storing outputs.
    for field in ("Partition=other", "NumCPUs=2", "MinMemoryNode=100M",
                  "TimeLimit=00:11:00"):
        assert field in shown, (field, shown)


def test_a_job_on_slurm_shows_its_backend_and_slurm_id(server, monkeypatch, capsys):
    record = server.client.submit(job("true"))
    slurm_id = server.slurm_id(record.uuid)
    final = ended(server.client, record.uuid)
    assert final.succeeded, final
    assert (final.backend, final.backend_job_id, final.end_reason) == (
        "slurm", slurm_id, EndReason.EXIT)
    assert [j.slurm_id for j in slurm_jobs_of(record.uuid)] == [slurm_id]
    for name, value in {"CWL_CRUNCH_HOME": str(server.config.home),
                        "CWL_CRUNCH_API_URL": server.url,
                        "CWL_CRUNCH_API_TOKEN": server.token}.items():
        monkeypatch.setenv(name, value)
    assert main(["jobs", "show", record.uuid]) == 0
    out = capsys.readouterr().out
    for field, value in (("backend", "slurm"), ("backend job id", slurm_id),
                         ("end reason", "exit")):
        assert re.search(rf"^{field} +{value}$", out, flags=re.MULTILINE), (field, out)


# Faults -------------------------------------------------------------------------------------

def test_a_job_an_admin_scancels_fails_with_the_reason(server, tmp_path):
    started = tmp_path / "started"
    record = server.client.submit(job(f"touch {shlex.quote(str(started))}; sleep 60"))
    slurm_id = server.slurm_id(record.uuid)
    wait_until(started.exists, timeout=WAIT, what="the command runs")
    run("scancel", slurm_id)
    final = ended(server.client, record.uuid)
    assert final.state == "Failed", final
    assert "CANCELLED" in final.failure_reason and slurm_id in final.failure_reason, final
    assert final.end_reason == EndReason.CANCELLED, final
    assert final.log_pdh, "the worker's logs are kept"


def test_a_killed_worker_fails_its_job_with_what_slurm_saw(server, tmp_path):
    started = tmp_path / "started"
    record = server.client.submit(job(f"touch {shlex.quote(str(started))}; sleep 60"))
    wait_until(started.exists, timeout=WAIT, what="the command runs")
    worker = wait_until(lambda: subprocess.run(
        ["pgrep", "-f", f"worker {record.uuid}"], capture_output=True, text=True
    ).stdout.split(), what="the worker process")
    subprocess.run(["kill", "-KILL", *worker], check=False)
    final = ended(server.client, record.uuid)
    assert final.state == "Failed", final
    assert "SLURM" in final.failure_reason, final


@pytest.mark.slow
def test_a_job_over_slurms_time_limit_fails_with_slurms_reason(slurm_cpus, tmp_path):
    """SLURM's limit is a backstop 10 minutes after the job's own; here a site option
    (after ours) cuts it to one minute, and the job asks for none of its own."""
    server = SlurmServer(tmp_path / "home", slurm_options="--time=1")
    try:
        record = server.client.submit(job("sleep 600"))
        final = ended(server.client, record.uuid, timeout=150)
        assert final.state == "Failed", final
        assert "SLURM ended the job: TIMEOUT" in final.failure_reason, final
        assert final.log_pdh, "the worker's logs are kept"
    finally:
        try:
            cancel_unfinished(server.client, settle=WAIT)
        finally:
            server.stop()


def test_a_job_slurm_no_longer_knows_fails_saying_so(server):
    record = server.client.submit(job("sleep 60"))
    real_id = server.slurm_id(record.uuid)
    server.stop()
    run("scancel", real_id)
    unknown = str(10_000_000 + int(real_id))  # an id SLURM never gave
    database = server.records()
    with database.writing() as connection:
        assert jobs.set_backend_job_id(connection, record.uuid, BACKEND, unknown)
    database.close()
    server.start()
    final = ended(server.client, record.uuid)
    assert final.state == "Failed", final
    assert f"SLURM job {unknown} is gone" in final.failure_reason, final


def test_a_node_failure_requeues_the_job_which_then_completes(server, tmp_path):
    runs = tmp_path / "runs"
    record = server.client.submit(job(f"echo ran >> {shlex.quote(str(runs))}; sleep 30"))
    first = server.slurm_id(record.uuid)
    wait_until(runs.exists, timeout=WAIT, what="the first run starts")
    run("scontrol", "update", "NodeName=localhost", "State=DOWN", "Reason=cwl-crunch-test")
    try:
        wait_until(lambda: server.client.get_job(record.uuid).state == "Queued"
                   or server.client.get_job(record.uuid).finished,
                   timeout=WAIT, what="the job is requeued")
    finally:
        # Refused when slurmd already brought it back (ReturnToService): no matter.
        subprocess.run(["scontrol", "update", "NodeName=localhost", "State=RESUME"],
                       capture_output=True, timeout=30, check=False)
    final = ended(server.client, record.uuid, timeout=WAIT + 30)
    assert final.succeeded, final
    assert runs.read_text() == "ran\nran\n"
    states = [e.state for e in server.client.events(0, timeout=0) if e.job_uuid == record.uuid]
    assert states == ["Queued", "Running", "Queued", "Running", "Complete"], states
    ids = {j.slurm_id for j in slurm_jobs_of(record.uuid)}
    assert first in ids and len(ids) == 2, ids


# Restarts: nothing submitted twice ----------------------------------------------------------

def test_a_claimed_job_whose_sbatch_went_unrecorded_is_adopted_not_resubmitted(server):
    record = server.client.submit(job("sleep 3"))
    slurm_id = server.slurm_id(record.uuid)
    server.stop()
    # As if the dispatcher stopped between sbatch and recording its answer.
    database = server.records()
    with database.writing() as connection:
        connection.execute(update(jobs.JOBS).where(jobs.JOBS.c.uuid == record.uuid)
                           .values(backend_job_id=None))
    database.close()
    server.start()
    assert server.slurm_id(record.uuid) == slurm_id
    assert ended(server.client, record.uuid).succeeded
    assert [j.slurm_id for j in slurm_jobs_of(record.uuid)] == [slurm_id]


def test_a_claimed_job_never_submitted_is_submitted_after_a_restart(server, tmp_path):
    server.stop()
    # As if the dispatcher stopped between claiming the job and running sbatch.
    database = server.records()
    with database.writing() as connection:
        row = jobs.insert_job(connection, server.config.cluster_id,
                              job(f"echo ran > {shlex.quote(str(tmp_path / 'ran'))}"),
                              parent_uuid=None, key="never-submitted",
                              output_problem=lambda pdh: "not stored")
        jobs.claim(connection, row["uuid"], "Queued", None, backend=BACKEND)
    database.close()
    server.start()
    assert ended(server.client, row["uuid"]).succeeded
    assert len(slurm_jobs_of(row["uuid"])) == 1


# Where jobs go -------------------------------------------------------------------------------

SCATTER = """\
cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs:
  words: {type: {type: array, items: string}}
outputs:
  said: {type: {type: array, items: File}, outputSource: say/out}
steps:
  say:
    scatter: word
    in: {word: words}
    out: [out]
    run:
      class: CommandLineTool
      baseCommand: [sh, -c, 'echo "$0" > said.txt']
      inputs: {word: {type: string, inputBinding: {position: 1}}}
      outputs: {out: {type: File, outputBinding: {glob: said.txt}}}
"""


def test_a_submitted_scatter_runs_its_steps_on_slurm_and_its_runner_here(server, tmp_path):
    """The runner (0.25 core) must not hold a CPU of the cluster while it waits."""
    (tmp_path / "wf.cwl").write_text(SCATTER)
    words = [f"word{i}" for i in range(6)]
    (tmp_path / "inputs.yml").write_text(f"words: [{', '.join(words)}]\n")
    done = subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.runner", "--cluster", server.url, "--submit",
         "--wait", "--outdir", str(tmp_path / "out"), str(tmp_path / "wf.cwl"),
         str(tmp_path / "inputs.yml")],
        capture_output=True, text=True, timeout=150, cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "CWL_CRUNCH_API_TOKEN": server.token,
             "CWL_CRUNCH_HOME": str(tmp_path / "runner-home")})
    assert done.returncode == 0, done.stderr[-3000:]
    said = [Path(file["path"]).read_text() for file in json.loads(done.stdout)["said"]]
    assert said == [f"{word}\n" for word in words]
    [run] = server.client.list_jobs(JobFilter(top_level=True))
    steps = server.client.list_jobs(JobFilter(parent_uuid=run.uuid))
    assert len(steps) == len(words) and all(s.succeeded for s in steps), steps
    for step in steps:
        assert len(slurm_jobs_of(step.uuid)) == 1, step.uuid
    assert slurm_jobs_of(run.uuid) == [], "the runner went to SLURM"


def test_a_job_on_slurm_is_isolated_like_a_local_one(server, tmp_path):
    """The worker on the node runs the command as the server's own workers do: it sees
    none of the cluster's files and nothing it started outlives it."""
    home = tmp_path / "home"
    marker = f"45.{time.time_ns() % 10**9:09d}"
    record = server.client.submit(job(
        f"ls -A {home} > out/home.txt; ls -A {home}/store > out/store.txt 2>/dev/null; "
        f"(setsid sh -c 'sleep {marker}' </dev/null >/dev/null 2>&1 &); true"))
    try:
        final = ended(server.client, record.uuid)
        assert final.succeeded, final
        assert slurm_jobs_of(record.uuid), "the job did not go to SLURM"
        seen = {name: b"".join(server.client.read_file(final.output_pdh or "", name)).decode()
                for name in ("home.txt", "store.txt")}
        assert seen["home.txt"].split() in ([], ["work"]), seen
        assert seen["store.txt"] == ""
        assert subprocess.run(["pgrep", "-f", f"sleep {marker}"],
                              capture_output=True).returncode == 1, "a process outlived it"
    finally:
        left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True,
                              text=True).stdout.split()
        if left:
            subprocess.run(["kill", "-KILL", *left], check=False)


# A step's resources, judged against SLURM's largest node ----------------------------------

def sinfo_node_memory() -> int:
    """RealMemory of the node (MiB), as slurm.conf gives it."""
    return int(run("sinfo", "--noheader", "--Node", "--format", "%m").split()[0])


def run_tool_here(server: SlurmServer, tmp_path: Path, where: str,
                  cores: int) -> subprocess.CompletedProcess[str]:
    """cwl-crunch-runner on this host, its steps on the server (so on SLURM)."""
    (tmp_path / "tool.cwl").write_text(CORES_TOOL.format(where=where, cores=cores))
    return subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.runner", "--cluster", server.url,
         "--outdir", str(tmp_path / "out"), str(tmp_path / "tool.cwl")],
        capture_output=True, text=True, timeout=150, cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "CWL_CRUNCH_API_TOKEN": server.token,
             "CWL_CRUNCH_HOME": str(tmp_path / "runner-home"),
             **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}})


def test_the_largest_node_is_slurms_as_sinfo_lists_it(server, slurm_cpus):
    node = server.client.largest_node()
    assert node.cores == slurm_cpus
    assert node.ram == sinfo_node_memory() << 20


def test_a_hint_beyond_slurms_nodes_is_scaled_down_to_the_largest(server, slurm_cpus,
                                                                    tmp_path):
    done = run_tool_here(server, tmp_path, "hints", slurm_cpus + 2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (f"[step tool.cwl] asks for {slurm_cpus + 2} cores (coresMin) in a hint; the "
            f"largest node of the cluster has {slurm_cpus} cores: it gets {slurm_cpus} "
            "cores") in done.stderr
    assert (tmp_path / "out" / "cores.txt").read_text() == f"{slurm_cpus}\n"
    [run_job] = server.client.list_jobs(JobFilter(top_level=True))
    [step] = server.client.list_jobs(JobFilter(parent_uuid=run_job.uuid))
    assert step.succeeded and step.spec.cores == slurm_cpus
    [placed] = slurm_jobs_of(step.uuid)
    shown = run("scontrol", "show", "job", "--oneliner", placed.slurm_id).split()
    assert f"NumCPUs={slurm_cpus}" in shown


def test_a_requirement_beyond_slurms_nodes_fails_before_submission(server, slurm_cpus,
                                                                     tmp_path):
    done = run_tool_here(server, tmp_path, "requirements", 1000)
    assert done.returncode != 0
    assert ("[step tool.cwl] requires 1000 cores (coresMin), but the largest node of the "
            f"cluster has {slurm_cpus} cores: no node can run it") in done.stderr
    assert "Traceback" not in done.stderr
    [run_job] = server.client.list_jobs(JobFilter(top_level=True))
    assert server.client.list_jobs(JobFilter(parent_uuid=run_job.uuid)) == []
    assert run_job.state == "Failed"
