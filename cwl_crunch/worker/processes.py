"""Telling a live process from a dead one whose pid was reused, and killing process groups.

A pid alone is not an identity: after a crash the kernel may hand it to a new process.
A (pid, start time) pair is, so records keep both and every kill checks both.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

from cwl_crunch.model import WorkerInfo

# Seconds between SIGTERM and SIGKILL when a job is stopped: time to flush and exit.
KILL_GRACE = 2.0


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None  # a zombie has finished; only its parent's wait() is missing
    return int(fields[19])


def is_alive(pid: int, ticks: int | None) -> bool:
    current = start_ticks(pid)
    return current is not None and (ticks is None or current == ticks)


def kill_group(pgid: int, ticks: int | None, sig: int = signal.SIGKILL) -> bool:
    """Signal a process group if its leader is still the process we started."""
    if ticks is not None and start_ticks(pgid) not in (None, ticks):
        return False  # the pid was reused: the group we started is gone
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def this_worker() -> WorkerInfo:
    pid = os.getpid()
    return WorkerInfo(host=socket.gethostname(), pid=pid, pid_start=start_ticks(pid) or 0)


def terminate_group(pgid: int, ticks: int | None, grace: float = KILL_GRACE) -> None:
    """SIGTERM the group, give its leader ``grace`` seconds to go, then SIGKILL the rest."""
    if not kill_group(pgid, ticks, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and is_alive(pgid, ticks):
        time.sleep(0.02)
    kill_group(pgid, None, signal.SIGKILL)


def groups_with_environment(needle: bytes) -> set[int]:
    """Process groups of the processes whose environment contains ``needle``.

    The last resort for finding a job's command when its worker died before recording
    the process group: the job's own API token is in the command's environment.
    """
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                groups.add(os.getpgid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue  # gone, or not ours to read
    return groups


def cli_command(*arguments: str) -> list[str]:
    """A ``cwl-crunch`` command line on this interpreter (so this same cwl-crunch, with
    no console script needed on PATH), exiting with the command's status."""
    return [sys.executable, "-c",
            "import sys; from cwl_crunch.cli.main import main; sys.exit(main())", *arguments]
