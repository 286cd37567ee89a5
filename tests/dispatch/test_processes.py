"""cwl_crunch.worker.processes: (pid, start ticks) identities and process-group kills."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from cwl_crunch.worker.processes import (
    is_alive,
    kill_group,
    start_ticks,
    terminate_group,
    this_worker,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

CLK_TCK = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def spawn():
    """Start commands in their own session (pgid == pid); kill every group at the end."""
    started: list[subprocess.Popen] = []

    def start(args, **kwargs):
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


def wait_until(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def uptime_ticks() -> float:
    return float(Path("/proc/uptime").read_text().split()[0]) * CLK_TCK


def unused_pid() -> int:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    for pid in range(pid_max - 1, 1, -1):
        if not Path(f"/proc/{pid}").exists():
            return pid
    raise AssertionError("no free pid")


def test_start_ticks_of_a_new_process_is_about_now(spawn):
    before = uptime_ticks()
    proc = spawn(["sleep", "30"])
    ticks = start_ticks(proc.pid)
    after = uptime_ticks()
    assert isinstance(ticks, int)
    # Start time counts clock ticks since boot: between the two uptime readings.
    assert before - CLK_TCK <= ticks <= after + CLK_TCK
    assert ticks >= start_ticks(os.getpid())  # started after this test process
    assert start_ticks(proc.pid) == ticks  # stable


def test_start_ticks_with_parentheses_and_spaces_in_the_name(spawn, tmp_path):
    odd = tmp_path / "a) b (c"
    shutil.copy(shutil.which("sleep"), odd)
    plain = spawn(["sleep", "30"])
    proc = spawn([str(odd), "30"])
    assert wait_until(lambda: "a) b (c" in Path(f"/proc/{proc.pid}/stat").read_text())
    ticks = start_ticks(proc.pid)
    assert ticks is not None
    assert abs(ticks - start_ticks(plain.pid)) <= CLK_TCK  # a time, not a misparsed field
    assert is_alive(proc.pid, ticks)


def test_start_ticks_of_missing_process_is_none():
    assert start_ticks(unused_pid()) is None


def test_is_alive(spawn):
    proc = spawn(["sleep", "30"])
    ticks = start_ticks(proc.pid)
    assert is_alive(proc.pid, ticks)
    assert is_alive(proc.pid, None)
    assert not is_alive(proc.pid, ticks + 1)  # another process that reused the pid
    proc.kill()
    proc.wait(5)
    assert not is_alive(proc.pid, ticks)
    assert not is_alive(proc.pid, None)


def test_zombie_counts_as_dead(spawn):
    proc = spawn(["sleep", "30"])
    ticks = start_ticks(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    # Not reaped yet: a zombie until wait(), but finished all the same.
    assert wait_until(lambda: start_ticks(proc.pid) is None)
    assert Path(f"/proc/{proc.pid}").exists()
    assert not is_alive(proc.pid, ticks)
    proc.wait(5)


def group_with_member(spawn, leader_exits=False):
    """A shell leading a group with a background sleep; returns (shell, sleep pid)."""
    script = "sleep 30 & echo $!" + ("" if leader_exits else "; wait")
    proc = spawn(["sh", "-c", script], stdout=subprocess.PIPE, text=True)
    member = int(proc.stdout.readline())
    return proc, member


def test_kill_group_kills_leader_and_members(spawn):
    proc, member = group_with_member(spawn)
    ticks = start_ticks(proc.pid)
    assert os.getpgid(member) == proc.pid
    assert kill_group(proc.pid, ticks) is True
    assert proc.wait(5) == -signal.SIGKILL
    assert wait_until(lambda: start_ticks(member) is None)


def test_kill_group_refuses_when_the_start_time_differs(spawn):
    proc = spawn(["sleep", "30"])
    ticks = start_ticks(proc.pid)
    assert kill_group(proc.pid, ticks - 1) is False
    time.sleep(0.05)
    assert proc.poll() is None
    assert is_alive(proc.pid, ticks)


def test_kill_group_without_ticks_kills(spawn):
    proc = spawn(["sleep", "30"])
    assert kill_group(proc.pid, None, signal.SIGTERM) is True
    assert proc.wait(5) == -signal.SIGTERM


def test_kill_group_reaches_members_after_the_leader_exited(spawn):
    proc, member = group_with_member(spawn, leader_exits=True)
    ticks = start_ticks(proc.pid)
    proc.wait(5)
    assert start_ticks(member) is not None
    assert kill_group(proc.pid, ticks) is True
    assert wait_until(lambda: start_ticks(member) is None)


def test_kill_group_of_no_group():
    assert kill_group(unused_pid(), None) is False


def test_this_worker():
    worker = this_worker()
    assert worker.host == socket.gethostname()
    assert worker.pid == os.getpid()
    assert worker.pid_start == start_ticks(os.getpid())
    assert worker.pid_start > 0
    assert is_alive(worker.pid, worker.pid_start)


def test_terminate_group_stops_a_well_behaved_group_quickly(spawn):
    proc = spawn(["sleep", "30"])
    started = time.monotonic()
    terminate_group(proc.pid, start_ticks(proc.pid), grace=5.0)
    assert time.monotonic() - started < 1.0  # did not sit out the grace period
    assert proc.wait(5) == -signal.SIGTERM


def test_terminate_group_kills_what_ignores_sigterm(spawn):
    proc = spawn(["sh", "-c", "trap '' TERM; echo ready; exec sleep 30"],
                 stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    started = time.monotonic()
    terminate_group(proc.pid, start_ticks(proc.pid), grace=0.3)
    elapsed = time.monotonic() - started
    assert proc.wait(5) == -signal.SIGKILL
    assert elapsed >= 0.3


def test_terminate_group_leaves_a_reused_pid_alone(spawn):
    proc = spawn(["sleep", "30"])
    terminate_group(proc.pid, start_ticks(proc.pid) + 5, grace=0.1)
    time.sleep(0.05)
    assert proc.poll() is None

