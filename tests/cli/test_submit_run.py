"""``cwl-crunch-runner --submit`` when its server dies (kill -9) in the middle of a run:
the waiting command says it is waiting and keeps trying, the orphaned dispatcher child
starts nothing more, and once the server is back (same home, same port) the run ends
Complete with no step run twice. Real processes throughout: a ``cwl-crunch server``, its
dispatcher child, the runner job and its steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_until
from procs import live_processes
from server_process import ServerProcess

from cwl_crunch.client import JobFilter, JobRecord
from cwl_crunch.config import load_config
from cwl_crunch.core import ClusterCore
from cwl_crunch.records import jobs

STEPS = 6
BOUND = 90
"""Seconds per test: each took 21 s on two cores at load 3, 75 s at load 16 (other
test runs sharing the machine)."""
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
      requirements: {ResourceRequirement: {coresMin: 0.5, ramMin: 16}}
      baseCommand: [sh, -c, 'sleep 1; echo "$0" >> "$1"; echo "$0" > said.txt']
      inputs:
        word: {type: string, inputBinding: {position: 1}}
        ran: {type: string, default: RAN, inputBinding: {position: 2}}
      outputs: {out: {type: File, outputBinding: {glob: said.txt}}}
"""


class Records:
    """Reads of the server's records from this process (its dispatcher never starts:
    nothing here submits or waits)."""

    def __init__(self, home: Path) -> None:
        self.core = ClusterCore(load_config(home=home))

    def run(self) -> JobRecord | None:
        top = self.core.list_jobs(JobFilter(top_level=True))
        return top[0] if top else None

    def steps(self, run: JobRecord) -> list[JobRecord]:
        return self.core.list_jobs(JobFilter(parent_uuid=run.uuid))

    def times_started(self, uuid: str) -> int:
        with self.core.database.reading() as connection:
            return jobs.times_started(connection, uuid)


def dispatcher_children(server_pid: int) -> set[int]:
    """Pids of the ``cwl-crunch dispatch --parent SERVER_PID`` processes."""
    return {pid for pid, argv in live_processes()
            if "dispatch" in argv and argv[argv.index("dispatch") + 1:][:2] ==
            ["--parent", str(server_pid)]}


def submit(tmp_path: Path, server: ServerProcess, token: str,
           patience: float | None = None) -> subprocess.Popen[str]:
    """``cwl-crunch-runner --submit`` of the scatter; ``patience``: its SERVER_PATIENCE."""
    ran = tmp_path / "ran.txt"
    (tmp_path / "wf.cwl").write_text(SCATTER.replace("RAN", str(ran)))
    (tmp_path / "inputs.yml").write_text(
        f"words: [{', '.join(f'w{i}' for i in range(STEPS))}]\n")
    patient = "" if patience is None else \
        f"import cwl_crunch.cli.submit_run as s; s.SERVER_PATIENCE = {patience}; "
    return subprocess.Popen(
        [sys.executable, "-c", f"{patient}from cwl_crunch.cli.runner import main; "
                               "raise SystemExit(main())",
         "--cluster", server.url, "--submit", "--no-container",
         "--outdir", str(tmp_path / "out"), str(tmp_path / "wf.cwl"),
         str(tmp_path / "inputs.yml")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**server.environment, "CWL_CRUNCH_HOME": str(tmp_path / "client-home"),
             "CWL_CRUNCH_API_TOKEN": token})


class Scenario:
    """A server on ``tmp_path``, a run submitted to it, and the kill -9 of the server
    once a first step has ended, with checks of what its orphaned child does."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.server = ServerProcess(tmp_path / "home", tmp_path / "server.log")
        # Room for the runner (0.25 core) and two steps (0.5 each) at a time: when the
        # server dies, some steps are done, some running and some still queued.
        self.server.environment["CWL_CRUNCH_MAX_CORES"] = "1.25"
        self.records: Records | None = None
        self.first_server = 0

    def submit_and_kill(self, patience: float | None = None) -> tuple[subprocess.Popen[str],
                                                                      JobRecord]:
        self.server.start()
        records = self.records = Records(self.server.home)
        runner = submit(self.tmp_path, self.server, self.server.create_token(), patience)
        run = wait_until(records.run, timeout=60, what="the run's job")
        wait_until(lambda: any(step.state == "Complete" for step in records.steps(run)),
                   timeout=60, what="a first step to end")
        assert self.server.process is not None
        self.first_server = self.server.process.pid
        self.server.kill()
        assert dispatcher_children(self.first_server), "it runs the runner: it lives on"
        # Within a few seconds the child starts nothing more: what was queued stays so.
        time.sleep(3)
        started = {step.uuid for step in records.steps(run) if step.started_at}
        time.sleep(2)
        assert {step.uuid for step in records.steps(run) if step.started_at} == started
        assert any(step.state == "Queued" for step in records.steps(run)), \
            "every step had started before the kill: nothing was tested"
        return runner, run

    def check_ran_once(self, run_uuid: str) -> None:
        assert self.records is not None
        run = self.records.core.get_job(run_uuid)
        assert run.state == "Complete", run
        steps = self.records.steps(run)
        assert len(steps) == STEPS and all(step.state == "Complete" for step in steps)
        assert [self.records.times_started(step.uuid) for step in steps] == [1] * STEPS
        assert self.records.times_started(run.uuid) == 1
        ran = (self.tmp_path / "ran.txt").read_text().split()
        assert sorted(ran) == sorted(f"w{i}" for i in range(STEPS)), ran
        # The orphaned child ended once the runner it ran did.
        wait_until(lambda: not dispatcher_children(self.first_server),
                   what="the orphaned child to end")

    def close(self) -> None:
        self.server.__exit__(None, None, None)
        for orphan in dispatcher_children(self.first_server) if self.first_server else ():
            os.kill(orphan, signal.SIGKILL)  # a failed test's: its jobs die with the test
        if self.records is not None:
            self.records.core.close()


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    made = Scenario(tmp_path)
    yield made
    made.close()


@pytest.mark.slow
@pytest.mark.timeout(BOUND)
def test_a_submitted_run_survives_a_kill_9_of_its_server(scenario):
    runner, run = scenario.submit_and_kill()
    try:
        assert runner.poll() is None, runner.communicate()
        scenario.server.start()  # the same home, the same port
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, err
    assert "cannot reach the cluster" in err and "waiting for it" in err, err
    assert "answers again" in err, err
    said = json.loads(out)["said"]
    assert sorted(Path(item["path"]).read_text() for item in said) == \
        sorted(f"w{i}\n" for i in range(STEPS))
    scenario.check_ran_once(run.uuid)


@pytest.mark.slow
@pytest.mark.timeout(BOUND)
def test_a_submit_that_gave_up_on_its_server_says_how_to_follow_the_run(scenario):
    runner, run = scenario.submit_and_kill(patience=3)
    _, err = runner.communicate(timeout=30)
    assert runner.returncode == 1, err
    assert f"cwl-crunch jobs wait {run.uuid}" in err, err
    scenario.server.start()
    server = scenario.server
    followed = subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.main", "jobs", "wait", run.uuid],
        capture_output=True, text=True, timeout=60,
        env={**server.environment, "CWL_CRUNCH_HOME": str(scenario.tmp_path / "client-home"),
             "CWL_CRUNCH_API_URL": server.url, "CWL_CRUNCH_API_TOKEN": server.create_token()})
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.split()[:5] == [run.uuid, "Complete", "exit", "code", "0"]
    scenario.check_ran_once(run.uuid)
