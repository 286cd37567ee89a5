"""Running a job's command: redirections, its own process group, time limit, cancel."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from collections.abc import Callable, Mapping
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO

from cwl_crunch.client.base import JobSpec
from cwl_crunch.dispatch.processes import KILL_GRACE, kill_group, start_ticks


@dataclasses.dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None
    failure: str | None = None
    """Why the command did not run to its own end (could not start, time limit)."""


def run_command(
    spec: JobSpec,
    job_dir: Path,
    log_dir: Path,
    environment: Mapping[str, str],
    on_started: Callable[[int, int], None],
) -> ProcessResult:
    """Run the command to its end; ``on_started(pgid, ticks)`` is called once it runs."""
    with ExitStack() as files:
        stdin = _open(files, job_dir / spec.stdin, "rb") if spec.stdin else subprocess.DEVNULL
        stdout = _open(files, job_dir / spec.stdout if spec.stdout else log_dir / "stdout.txt",
                       "wb")
        stderr = _open(files, job_dir / spec.stderr if spec.stderr else log_dir / "stderr.txt",
                       "wb")
        try:
            process = subprocess.Popen(
                list(spec.command), cwd=job_dir / spec.cwd, env=dict(environment),
                stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError:
            return ProcessResult(None, f"executable not found: {spec.command[0]}")
        except PermissionError:
            return ProcessResult(None, f"not executable: {spec.command[0]}")
        except OSError as error:
            return ProcessResult(None, f"cannot start {spec.command[0]}: {error.strerror}")
    ticks = start_ticks(process.pid)
    on_started(process.pid, ticks or 0)
    try:
        return ProcessResult(process.wait(timeout=spec.time_limit))
    except subprocess.TimeoutExpired:
        kill_group(process.pid, ticks, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(KILL_GRACE)
        kill_group(process.pid, None, signal.SIGKILL)  # and whatever it left in its group
        process.wait()
        return ProcessResult(None, f"time limit of {spec.time_limit:g} s exceeded")


def _open(files: ExitStack, path: Path, mode: str) -> IO[bytes]:
    if "w" in mode:
        path.parent.mkdir(parents=True, exist_ok=True)
    return files.enter_context(path.open(mode))
