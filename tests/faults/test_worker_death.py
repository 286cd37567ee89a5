"""A process running a job is killed with SIGKILL: the job must end Failed, not hang.

Two forms of worker: the local dispatcher (worker threads of the process that uses the
cluster, so killing that process kills the dispatcher and its workers at once), and the
standalone ``cwl-crunch worker UUID`` command. In both, the next process that opens the
cluster (or a live dispatcher's periodic check) must fail the job with a reason saying
the worker died, kill the command it left behind, leave no output collection, and not
let the dead job stand in for new identical work. Whatever the kill interrupted, every
collection a record names must still be readable.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import cwl_crunch
from cwl_crunch.cli.main import main

# The victim job: sleeps for as long as the control file says, then writes its output.
# Its `sleep` gets the unique marker as an extra (tiny) duration, so the command can be
# found in /proc; the control file lets an identical rerun end at once.
VICTIM_SCRIPT = 'echo "started $2"; d=$(cat "$1"); sleep "$d" "$2"; echo done > out/done.txt'

SUBMITTER = f"""
import os, sys, cwl_crunch
ctl, uuid_file = sys.argv[1], sys.argv[2]
marker = os.environ["FAULT_MARKER"]
cluster = cwl_crunch.connect()
future = cluster.submit(["sh", "-c", {VICTIM_SCRIPT!r}, "victim", ctl, marker],
                        cores=0.25, name="victim")
tmp = uuid_file + ".tmp"
with open(tmp, "w") as f:
    f.write(future.uuid)
os.rename(tmp, uuid_file)
future.result()
print("the job ended although its worker was killed", file=sys.stderr)
"""


def victim_command(ctl: Path, marker: str) -> list[str]:
    return ["sh", "-c", VICTIM_SCRIPT, "victim", str(ctl), marker]


def wait_for_command(client, uuid, marker, processes_with, wait_until):
    """Until the job is Running and its command (found by marker) is alive."""
    wait_until(lambda: client.get_job(uuid).state == "Running", f"{uuid} to be Running")
    pids = wait_until(lambda: processes_with(marker), f"the command of {uuid} to start")
    # The worker records the command's process group right after starting it: give that
    # one database write time to commit, so the kill below tests the reaper, not the
    # (unavoidable) window between fork and that write.
    time.sleep(0.5)
    return pids


def assert_reaped(client, uuid, worker_pid, marker, processes_with, wait_until):
    record = wait_until(
        lambda: (r := client.get_job(uuid)).finished and r, f"{uuid} to be ended", timeout=5)
    assert record.state == "Failed", record
    assert "died" in (record.failure_reason or ""), record.failure_reason
    assert str(worker_pid) in (record.failure_reason or ""), record.failure_reason
    assert record.output_pdh is None, record
    assert record.exit_code is None, record
    # The command the dead worker left behind was killed, whole process group included.
    wait_until(lambda: not processes_with(marker), f"orphaned command {marker} to be gone",
               timeout=5)
    return record


def assert_identical_job_runs(cluster, ctl, marker, failed_uuid):
    ctl.write_text("0")
    future = cluster.submit(victim_command(ctl, marker), cores=0.25, name="victim")
    assert future.uuid != failed_uuid
    record = future.result(timeout=20)
    assert record.reused_job_uuid is None, "a failed job must not be reused"
    assert record.state == "Complete" and record.exit_code == 0
    assert cluster.read_text(record.output_pdh, "done.txt") == "done\n"
    return record


def start_and_kill_submitter(tmp_path, home, processes, marker, processes_with,
                             wait_until):
    """A separate process submits the victim and runs it; SIGKILL it mid-job."""
    ctl = tmp_path / "duration"
    ctl.write_text("300")
    uuid_file = tmp_path / "uuid"
    submitter = processes.python(SUBMITTER, str(ctl), str(uuid_file),
                                 extra_env={"FAULT_MARKER": marker}, name="submitter")
    with cwl_crunch.connect(home=home, poll_interval=0.05) as watcher:
        uuid = wait_until(lambda: uuid_file.exists() and uuid_file.read_text(),
                          "the submitter to print the job uuid")
        assert isinstance(uuid, str)
        wait_for_command(watcher.client, uuid, marker, processes_with, wait_until)
        assert submitter.poll() is None, processes.output(submitter)
        os.kill(submitter.pid, signal.SIGKILL)
        submitter.wait()
        # Nobody has looked yet: the record still says Running.
        assert watcher.client.get_job(uuid).state == "Running"
    return ctl, uuid, submitter.pid


def test_killed_dispatcher_process_fails_its_job(
    tmp_path, home, processes, new_marker, processes_with, wait_until,
    check_collections_readable,
):
    marker = new_marker()
    ctl, uuid, pid = start_and_kill_submitter(tmp_path, home, processes, marker,
                                              processes_with, wait_until)
    # The next program that opens the cluster notices the dead worker.
    with cwl_crunch.connect(home=home, poll_interval=0.05) as cluster:
        failed = assert_reaped(cluster.client, uuid, pid, marker, processes_with, wait_until)
        rerun = assert_identical_job_runs(cluster, ctl, marker, uuid)
        checked = check_collections_readable(cluster.client)
        assert rerun.output_pdh in checked
        if failed.log_pdh is not None:  # salvaged logs are a courtesy, but must be sound
            assert failed.log_pdh in checked
            assert cluster.read_text(failed.log_pdh, "stdout.txt") == f"started {marker}\n"


def test_salvaged_log_of_a_killed_worker_says_what_ran(
    tmp_path, home, processes, new_marker, processes_with, wait_until,
):
    marker = new_marker()
    _, uuid, pid = start_and_kill_submitter(tmp_path, home, processes, marker,
                                            processes_with, wait_until)
    with cwl_crunch.connect(home=home, poll_interval=0.05) as cluster:
        failed = assert_reaped(cluster.client, uuid, pid, marker, processes_with, wait_until)
        assert failed.log_pdh is not None
        worker_log = cluster.read_text(failed.log_pdh, "worker.txt")
        assert f"job {uuid}" in worker_log
        assert "running: sh -c" in worker_log


def test_killed_standalone_worker_fails_its_job(
    tmp_path, home, processes, new_marker, processes_with, wait_until,
    check_collections_readable, monkeypatch, capsys,
):
    marker, blocker_marker = new_marker(), new_marker()
    ctl = tmp_path / "duration"
    ctl.write_text("300")
    # One core for the dispatcher of this process, held by a blocker: the victim job
    # stays Queued until the standalone worker claims it.
    with cwl_crunch.connect(home=home, poll_interval=0.05, max_cores=1) as cluster:
        blocker = cluster.submit(["sleep", "300", blocker_marker], cores=1, name="blocker")
        try:
            wait_until(lambda: processes_with(blocker_marker), "the blocker to run")
            victim = cluster.submit(victim_command(ctl, marker), cores=1, name="victim")
            time.sleep(0.3)
            assert victim.record().state == "Queued"

            worker = processes.start(
                [sys.executable, "-m", "cwl_crunch.cli.main", "worker", victim.uuid],
                name="worker")
            wait_for_command(cluster.client, victim.uuid, marker, processes_with,
                             wait_until)
            assert worker.poll() is None, processes.output(worker)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()

            # This process's dispatcher is running: its periodic check reaps the job.
            assert_reaped(cluster.client, victim.uuid, worker.pid, marker,
                          processes_with, wait_until)
        finally:
            blocker.cancel()
        wait_until(lambda: blocker.done(), "the blocker to be cancelled")
        assert blocker.record().state == "Cancelled"

    # The failed job cannot be claimed again by another worker.
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(home))
    capsys.readouterr()
    assert main(["worker", victim.uuid]) == 1
    assert capsys.readouterr().err == f"job {victim.uuid} is Failed, not waiting to run\n"

    with cwl_crunch.connect(home=home, poll_interval=0.05) as cluster:
        assert cluster.client.get_job(victim.uuid).state == "Failed"
        rerun = assert_identical_job_runs(cluster, ctl, marker, victim.uuid)
        assert rerun.output_pdh in check_collections_readable(cluster.client)


KILL_IN_INGEST = """
import os, sys, cwl_crunch
uuid_file = sys.argv[1]
cluster = cwl_crunch.connect()
# Many output files: the worker spends a while ingesting them into the store.
command = ["sh", "-c", 'for i in $(seq 1 4000); do echo "$i $1" > out/f$i.txt; done; '
           'head -c 30000000 /dev/urandom > out/big.bin; echo written > "$2"',
           "writer", os.environ["FAULT_MARKER"], sys.argv[2]]
future = cluster.submit(command, cores=0.25, name="writer")
with open(uuid_file + ".tmp", "w") as f:
    f.write(future.uuid)
os.rename(uuid_file + ".tmp", uuid_file)
future.result()
"""


def test_kill_during_output_ingest_leaves_store_consistent(
    tmp_path, home, processes, new_marker, wait_until, check_collections_readable,
):
    """Killed while storing a job's output: no record may name a half-stored collection."""
    uuid_file, written = tmp_path / "uuid", tmp_path / "written"
    submitter = processes.python(KILL_IN_INGEST, str(uuid_file), str(written),
                                 extra_env={"FAULT_MARKER": new_marker()}, name="ingest")
    wait_until(written.exists, "the job to finish writing its output")
    time.sleep(0.05)  # into the ingest of the output dir
    os.kill(submitter.pid, signal.SIGKILL)
    submitter.wait()
    uuid = uuid_file.read_text()
    with cwl_crunch.connect(home=home, poll_interval=0.05) as cluster:
        record = wait_until(lambda: (r := cluster.client.get_job(uuid)).finished and r,
                            "the job to be ended", timeout=5)
        # Either the worker finished before the kill, or the job was reaped.
        if record.state == "Complete":
            assert record.output_pdh is not None
        else:
            assert record.state == "Failed" and "died" in record.failure_reason
            assert record.output_pdh is None
        check_collections_readable(cluster.client)
        # The store still works for new data after whatever the kill left in store/tmp.
        pdh = cluster.put(tmp_path / "uuid")
        assert cluster.read_text(pdh, "uuid") == uuid
