"""Isolated jobs (worker/isolation.py): nothing a job starts outlives it, and a job cannot
reach the cluster's own files. The attacks of issue 12 (findings 2 and 3) as real jobs, on
an embedded cluster, through an API server in this process, and on a real
``cwl-crunch server`` process."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_until
from procs import processes_with
from server_process import stop as stop_server

import cwl_crunch
from cwl_crunch.worker.processes import KILL_GRACE, cli_command

WAIT = 30
WORKTREE = str(Path(cwl_crunch.__file__).resolve().parent.parent)
ORIGINAL = "the result, as the job itself wrote it"  # + newline: 39 bytes


def marker(base: int) -> str:
    """A sleep duration no other process uses, to find that sleep in /proc."""
    return f"{base}.{uuid.uuid4().int % 10**9:09d}"


@contextlib.contextmanager
def killed_after(*markers: str) -> Iterator[None]:
    """Whatever the test, no process carrying a marker survives it."""
    try:
        yield
    finally:
        for mark in markers:
            for pid in processes_with(mark):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def ended(cl: cwl_crunch.Cluster, future: cwl_crunch.Future) -> cwl_crunch.JobRecord:
    """The job's final record, whatever its end."""
    record = cl.client.wait([future.uuid], timeout=WAIT)[0]
    assert record.finished, f"job still {record.state} after {WAIT} s"
    return record


def daemon_attack(seconds: str) -> list[str]:
    """Finding 2: the job starts a daemon that drops its session, process group and
    environment (so no job token), then appends to the job's output after the job ended."""
    return ["sh", "-c", f"echo '{ORIGINAL}' > out/result.txt; cd out; "
                        f"env -i setsid sh -c 'exec 3>>result.txt; sleep {seconds}; "
                        "echo TAMPERED >&3' >/dev/null 2>&1 &"]


def check_daemon_cannot_touch_the_output(cl: cwl_crunch.Cluster) -> None:
    seconds = marker(2)
    with killed_after(seconds):
        first = cl.submit(daemon_attack(seconds)).result(timeout=WAIT)
        assert first.succeeded, first.failure_reason
        assert processes_with(seconds) == [], "the job's daemon outlived it"
        time.sleep(2.5)  # as long as the daemon would have slept
        # Reusing the step reads the stored block (verified against its hash).
        again = cl.submit(daemon_attack(seconds)).result(timeout=WAIT)
        assert again.reused_job_uuid == first.uuid
        assert cl.read_text(again.output_pdh or "", "result.txt") == ORIGINAL + "\n"


def test_a_daemon_left_by_a_job_cannot_write_into_its_stored_output(cluster):
    check_daemon_cannot_touch_the_output(cluster)


def test_a_double_forked_daemon_ends_with_its_job(cluster):
    seconds = marker(30)
    with killed_after(seconds):
        job = cluster.submit(["sh", "-c", f"(setsid sh -c 'sleep {seconds}' "
                                          "</dev/null >/dev/null 2>&1 &) ; exit 0"]
                             ).result(timeout=WAIT)
        assert job.succeeded
        assert processes_with(seconds) == []


@pytest.mark.parametrize("stop", ["time limit", "cancel"])
def test_time_limit_and_cancel_kill_what_left_the_process_group(cluster, stop):
    away, main = marker(40), marker(41)
    command = ["sh", "-c", f"setsid sleep {away} & sleep {main}"]
    with killed_after(away, main):
        future = cluster.submit(command, time_limit=1 if stop == "time limit" else None)
        wait_until(lambda: processes_with(away) and processes_with(main),
                   what="the job's sleeps")
        if stop == "cancel":
            cluster.client.cancel(future.uuid)
        job = cluster.client.wait([future.uuid], timeout=WAIT)[0]
        assert job.state == ("Failed" if stop == "time limit" else "Cancelled")
        assert processes_with(away) == []
        assert processes_with(main) == []


def test_sigterm_still_reaches_the_command_at_the_time_limit(cluster):
    # The command is not PID 1 of its namespace (which ignores signals it does not
    # handle): a plain sleep dies of SIGTERM, before the SIGKILL that follows it.
    seconds = marker(30)
    with killed_after(seconds):
        start = time.monotonic()
        job = ended(cluster, cluster.submit(
            ["sh", "-c", f"trap 'echo got TERM >&2; exit 3' TERM; sleep {seconds} & wait"],
            time_limit=1))
        assert job.state == "Failed"
        assert "got TERM" in cluster.read_text(job.log_pdh or "", "stderr.txt")
        plain_job = ended(cluster, cluster.submit(["sleep", seconds], time_limit=1))
        assert plain_job.state == "Failed"
        assert time.monotonic() - start < 2 * (1 + KILL_GRACE)


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_codes_and_stdin_are_the_commands(cluster, tmp_path, code):
    data = tmp_path / "in.txt"
    data.write_text("line one\nline two\n")
    pdh = cluster.put(data)
    job = ended(cluster, cluster.submit(
        ["sh", "-c", f"cat > out/copy; exit {code}"], stdin="in/in.txt",
        mounts={"in": cwl_crunch.CollectionMount(pdh)}))
    assert job.state == "Complete"
    assert job.exit_code == code
    assert cluster.read_text(job.output_pdh or "", "copy") == "line one\nline two\n"


def test_a_job_runs_as_the_worker_s_user_and_tar_keeps_working(cluster, tmp_path):
    """As root, an isolated job is root without CAP_SYS_ADMIN; otherwise the worker's own
    uid in a user namespace. Either way a tar of someone else's files extracts (in a user
    namespace mapping only root, tar's chown to uid 1001 failed: CWL's directory_output)."""
    archive = tmp_path / "owned.tar"
    subprocess.run(["tar", "cf", str(archive), "--owner=1001", "--group=1001", "-C",
                    str(Path(__file__).parent), Path(__file__).name], check=True)
    home = tmp_path / "home"
    job = ended(cluster, cluster.submit(
        ["sh", "-c", f"id -u > out/uid; cd out && tar xf ../in/owned.tar; echo $? > ../out/tar; "
                     f"umount {home} 2>/dev/null; echo $? > ../out/umount"],
        mounts={"in": cwl_crunch.CollectionMount(cluster.put(archive))}))
    assert job.state == "Complete" and job.exit_code == 0, job.failure_reason
    pdh = job.output_pdh or ""
    assert cluster.read_text(pdh, "uid").strip() == str(os.geteuid())
    assert cluster.read_text(pdh, "tar").strip() == "0"
    assert cluster.read_text(pdh, "umount").strip() != "0"


# The cluster's own files -----------------------------------------------------------

def looks_around(home: Path, config_file: Path | None = None) -> list[str]:
    """A job that lists what it can of the cluster's files and tries to write there."""
    config = f"cat {config_file} > out/config.txt; " if config_file else ""
    return ["sh", "-c",
            f"ls -A {home} > out/home.txt; ls -A {home}/work > out/work.txt; "
            f"basename \"$(dirname \"$HOME\")\" > out/own.txt; "
            f"ls -A {home}/store > out/store.txt 2>/dev/null; "
            f"cat {home}/records.sqlite > out/records.txt 2>/dev/null; {config}"
            f"touch {home}/planted 2>/dev/null && echo yes > out/planted.txt; "
            "for f in /proc/[0-9]*/environ; do cat $f; echo; done > out/environs.txt "
            "2>/dev/null; true"]


def check_cluster_files_hidden(cl: cwl_crunch.Cluster, home: Path,
                               config_file: Path | None = None) -> dict[str, str]:
    job = cl.submit(looks_around(home, config_file)).result(timeout=WAIT)
    assert job.succeeded, job.failure_reason
    seen = {e.path: cl.read_text(job.output_pdh or "", e.path)
            for e in cl.client.list_collection(job.output_pdh or "") if e.kind == "file"}
    # What leads to the job's own directory, and nothing else.
    assert seen["home.txt"].split() in ([], ["work"])
    assert seen["work.txt"].split() == [seen["own.txt"].strip()]
    assert seen.get("store.txt", "") == ""
    assert seen.get("records.txt", "") == ""
    assert "planted.txt" not in seen
    assert not (home / "planted").exists()
    if config_file is not None:
        assert seen["config.txt"] == ""
    return seen


def test_a_job_sees_none_of_the_cluster_s_files(cluster, tmp_path):
    seen = check_cluster_files_hidden(cluster, tmp_path / "home")
    # The environments of the worker (this test's process) or server are not visible.
    assert "PYTEST_CURRENT_TEST" not in seen["environs.txt"]


def mint_token(home: Path) -> list[str]:
    """Finding 3: the job opens the cluster home itself and makes a person's token."""
    return ["sh", "-c", f"CWL_CRUNCH_HOME={home} {shlex.join(cli_command('token', 'create'))}"
                        " > out/token.txt 2> out/error.txt; echo $? > out/status.txt"]


def check_no_token_minted(cl: cwl_crunch.Cluster, home: Path) -> None:
    job = cl.submit(mint_token(home), env={"PYTHONPATH": WORKTREE}).result(timeout=WAIT)
    assert job.succeeded, job.failure_reason
    status = cl.read_text(job.output_pdh or "", "status.txt").strip()
    token = cl.read_text(job.output_pdh or "", "token.txt").strip()
    assert status != "0", f"a job minted a token: {token}"
    assert token == ""


def test_a_job_cannot_mint_a_token(cluster, tmp_path):
    check_no_token_minted(cluster, tmp_path / "home")


# A real `cwl-crunch server` process ---------------------------------------------------

@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[cwl_crunch.Cluster, Path, Path]]:
    """``cwl-crunch server`` with its config file outside its home and a secret in its
    environment; yields a client cluster, the home and the config file."""
    home, config_file = tmp_path / "home", tmp_path / "cluster.toml"
    config_file.write_text("poll_interval = 0.05  # the site's secret settings\n")
    env = {"CWL_CRUNCH_HOME": str(home), "CWL_CRUNCH_CONFIG": str(config_file),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": WORKTREE,
           "SERVER_SECRET": "server-secret-value"}
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen([*cli_command("server", "--listen", "127.0.0.1:0")],
                                  stderr=sink, stdin=subprocess.DEVNULL, env=env)
    try:
        banner = wait_until(lambda: re.search(r"at (http://\S+)", log.read_text()),
                            what="the server's banner", timeout=60)
        token = subprocess.run(cli_command("token", "create"), env=env, check=True,
                               capture_output=True, text=True).stdout.strip()
        with cwl_crunch.connect(home=tmp_path / "client-home", api_url=banner[1],
                                api_token=token) as cl:
            yield cl, home, config_file
    finally:
        stop_server(server)


@pytest.mark.timeout(120)
def test_on_a_server_process_the_attacks_fail(server_process):
    cl, home, config_file = server_process
    check_daemon_cannot_touch_the_output(cl)
    seen = check_cluster_files_hidden(cl, home, config_file)
    assert "server-secret-value" not in seen["environs.txt"]
    check_no_token_minted(cl, home)


@pytest.mark.timeout(60)
def test_a_server_refuses_to_start_when_jobs_cannot_be_isolated(tmp_path):
    # No unshare(1) on this PATH: the server's jobs could not be isolated.
    env = {"CWL_CRUNCH_HOME": str(tmp_path / "home"), "PATH": str(tmp_path / "empty"),
           "PYTHONPATH": WORKTREE}
    refused = subprocess.run(cli_command("server", "--listen", "127.0.0.1:0"), env=env,
                             capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    assert refused.returncode != 0
    assert "jobs cannot be isolated" in refused.stderr
    assert 'isolation = "none"' in refused.stderr
    # Said explicitly, it starts.
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(cli_command("server", "--listen", "127.0.0.1:0"),
                                  env={**env, "CWL_CRUNCH_ISOLATION": "none"}, stderr=sink,
                                  stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: re.search(r"at (http://\S+)", log.read_text()),
                   what="the server's banner", timeout=60)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


# Without namespaces ----------------------------------------------------------------

def test_unisolated_the_job_log_says_so_and_outputs_are_copied(tmp_path, monkeypatch):
    monkeypatch.setattr("cwl_crunch.worker.job_worker.isolation_problem",
                        lambda: "no namespaces here (test)")
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05) as cl:
        seconds = marker(1)
        with killed_after(seconds):
            first = cl.submit(daemon_attack(seconds)).result(timeout=WAIT)
            assert first.succeeded
            log = cl.read_text(first.log_pdh or "", "worker.txt")
            assert "not isolated: no namespaces here (test)" in log
            wait_until(lambda: not processes_with(seconds), what="the daemon's end")
            time.sleep(0.3)
            again = cl.submit(daemon_attack(seconds)).result(timeout=WAIT)
            assert again.reused_job_uuid == first.uuid
            assert cl.read_text(again.output_pdh or "", "result.txt") == ORIGINAL + "\n"


def test_the_probe_finds_isolation_works_here():
    from cwl_crunch.worker.isolation import isolation_problem
    assert isolation_problem() is None
