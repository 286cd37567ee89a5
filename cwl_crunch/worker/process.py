"""Starting a job's command (redirections, its own process group) and stopping it."""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO

from cwl_crunch.model import JobSpec
from cwl_crunch.worker.job_environment import API_TOKEN
from cwl_crunch.worker.processes import KILL_GRACE, kill_group, start_ticks
from cwl_crunch.worker.rooted import namespaced_command, namespaces_available, needs_namespace


@dataclasses.dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None
    failure: str | None = None
    """Why the command did not run to its own end (could not start, time limit)."""
    timed_out: bool = False
    """Stopped at its time limit."""


@dataclasses.dataclass
class StartedCommand:
    process: subprocess.Popen[bytes]
    ticks: int
    """Kernel start time of the process (with its pid, the group's identity)."""


def start_command(
    spec: JobSpec, job_dir: Path, log_dir: Path, environment: Mapping[str, str],
    *, supervisor: Sequence[str] | None = None, hidden: Sequence[Path] | None = None,
) -> StartedCommand | ProcessResult:
    """Start the command in its own session; a ProcessResult if it could not start.

    ``supervisor``: a process to run instead, which runs the command elsewhere (in a
    container) with the same redirections. ``hidden``: isolate the command (its own PID
    namespace, these paths hidden: see worker/isolation.py); None runs it as it is."""
    with ExitStack() as files:
        stdin = _open(files, job_dir / spec.stdin, "rb") if spec.stdin else subprocess.DEVNULL
        stdout = _open(files, job_dir / spec.stdout if spec.stdout else log_dir / "stdout.txt",
                       "wb")
        stderr = _open(files, job_dir / spec.stderr if spec.stderr else log_dir / "stderr.txt",
                       "wb")
        command = list(spec.command)
        if supervisor is not None:
            # The command's environment travels in the supervisor's plan.
            command = list(supervisor)
            # Its token stays: it is how a dispatcher finds the process of a dead worker.
            environment = {
                **{name: os.environ[name] for name in ("PATH", "HOME", "LANG")
                   if name in os.environ},
                API_TOKEN: environment.get(API_TOKEN, ""),
            }
        elif hidden is not None or needs_namespace(spec):
            if hidden is None and not namespaces_available():
                if spec.root is not None:
                    return ProcessResult(None, "this worker cannot give the job a fixed root: "
                                           "unshare(1), setpriv(1) and mount(8) (util-linux) "
                                           "are not installed")
            else:
                # The wrapper would start and then fail to run it: say why, as Popen would.
                unrunnable = executable_problem(spec, job_dir, environment)
                if unrunnable is not None:
                    return ProcessResult(None, unrunnable)
                command = namespaced_command(spec, job_dir, hidden)
        try:
            process = subprocess.Popen(
                command, cwd=job_dir if supervisor else job_dir / spec.cwd, env=dict(environment),
                stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError:
            return ProcessResult(None, f"executable not found: {spec.command[0]}")
        except PermissionError:
            return ProcessResult(None, f"not executable: {spec.command[0]}")
        except OSError as error:
            return ProcessResult(None, f"cannot start {spec.command[0]}: {error.strerror}")
    return StartedCommand(process, start_ticks(process.pid) or 0)


def executable_problem(spec: JobSpec, job_dir: Path,
                       environment: Mapping[str, str]) -> str | None:
    """Why exec would refuse the command's program (as execvp searches), or None.

    A program named by a path under ``JobSpec.root`` is looked for where that is on the
    host (the job dir); one the namespace hides is found here and fails there (exit 127).
    """
    name = spec.command[0]
    if "/" in name:
        if spec.root is not None and (name == spec.root or
                                      name.startswith(spec.root.rstrip("/") + "/")):
            name = str(job_dir) + name[len(spec.root.rstrip("/")):]
        candidates = [job_dir / spec.cwd / name]
    else:
        search = environment.get("PATH", os.defpath).split(os.pathsep)
        candidates = [Path(folder or ".") / name for folder in search]
        candidates = [job_dir / spec.cwd / c if not c.is_absolute() else c
                      for c in candidates]
    existing = [c for c in candidates if c.exists()]
    if any(c.is_file() and os.access(c, os.X_OK) for c in existing):
        return None
    if existing:
        return f"not executable: {spec.command[0]}"
    return f"executable not found: {spec.command[0]}"


def wait_command(started: StartedCommand, time_limit: float | None) -> ProcessResult:
    """Block until the command ends, stopping it at the time limit; then stop anything
    it left running in its process group (it could still write into the outputs)."""
    pidfd = os.pidfd_open(started.process.pid)
    try:
        ended, _, _ = select.select([pidfd], [], [], time_limit)
    finally:
        os.close(pidfd)
    if not ended:
        stop_command(started)
        return time_limit_result(started, time_limit)
    # Exited but not reaped: its pid, the group's id, cannot have been reused yet.
    kill_group(started.process.pid, None, signal.SIGKILL)
    return ProcessResult(started.process.wait())


def stop_command(started: StartedCommand) -> None:
    """SIGTERM the group, give the leader KILL_GRACE seconds, SIGKILL what is left."""
    kill_group(started.process.pid, started.ticks, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        started.process.wait(KILL_GRACE)
    kill_group(started.process.pid, None, signal.SIGKILL)  # and whatever it left in its group
    started.process.wait()


def time_limit_result(started: StartedCommand, time_limit: float | None) -> ProcessResult:
    limit = f"{time_limit:g} s" if time_limit is not None else "the time limit"
    return ProcessResult(started.process.returncode, f"time limit of {limit} exceeded",
                         timed_out=True)


def _open(files: ExitStack, path: Path, mode: str) -> IO[bytes]:
    if "w" in mode:
        path.parent.mkdir(parents=True, exist_ok=True)
    return files.enter_context(path.open(mode))
