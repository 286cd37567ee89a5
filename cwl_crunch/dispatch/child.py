"""A dispatcher run in a child process: what ``cwl-crunch server`` uses.

The server's process answers HTTP requests; starting and completing jobs (directories,
processes, storing outputs) is work of the same size, and in one process both share one
GIL. On two cores a 500-step scatter through the server took 12.9 s with the dispatcher
in the server's process and 10.5 s with it in its own (``bench/api.py``).

The child is ``cwl-crunch dispatch --parent PID`` on the same records and store. It finds
queued jobs as every dispatcher of a cluster home does, through the records; a SIGUSR1
from the server wakes it at once instead of at its next poll (sent only once the child
said it is ready: before its handler is in place, the signal would kill it). It ends when
asked to (SIGTERM: it stops claiming and waits for its running jobs) or when the server
is gone: within a poll interval of the server's death (kill -9 included: its parent
changes) it stops claiming, and ends once its running jobs have ended. Those go on,
their programs trying to reach the server (an HTTP client with a job's token keeps
trying for 10 minutes), and the child of a restarted server runs what is still queued.
If it dies, a thread of the server starts another, which fails the jobs the dead one ran.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping

from cwl_crunch.config import ENV_PREFIX
from cwl_crunch.dispatch.base import Dispatcher
from cwl_crunch.model import JobSpec, NodeSize
from cwl_crunch.worker.processes import cli_command

logger = logging.getLogger(__name__)

WAKE_SIGNAL = signal.SIGUSR1
READY = b"ready"
"""What the child prints on its stdout once a wake-up signal can no longer kill it."""
STOP_TIMEOUT = 60.0
"""Seconds to wait for the child's running jobs to end at stop before killing it."""
RESPAWN_PAUSE = 1.0
"""Seconds between a child's end and the start of its replacement."""


def dispatch_command(parent_pid: int, job_api_url: str | None) -> list[str]:
    """The child's command line (the same interpreter, so the same cwl-crunch). Its jobs
    reach the cluster at ``job_api_url`` (the server's); None: at an API the child
    serves them itself."""
    command = cli_command("dispatch", "--parent", str(parent_pid))
    if job_api_url is not None:
        command += ["--job-api-url", job_api_url]
    return command


class ChildProcessDispatcher(Dispatcher):
    """Runs the local dispatcher in a child process; ``here`` (the same kind of dispatcher
    in this process, never started) answers what a job may ask for."""

    name = "child-process"

    def __init__(self, here: Dispatcher, cluster_environment: Mapping[str, str],
                 job_api_url: str | None) -> None:
        """``cluster_environment``: the child's own (it opens the cluster embedded); its
        jobs get only their token and ``job_api_url`` (see worker.job_environment)."""
        self._here = here
        self._environment = {
            **{name: value for name, value in os.environ.items()
               if not name.startswith(ENV_PREFIX)},
            **cluster_environment,
        }
        self._command = dispatch_command(os.getpid(), job_api_url)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # held while a child is started
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def check_fits(self, spec: JobSpec) -> None:
        self._here.check_fits(spec)

    def largest_node(self) -> NodeSize:
        return self._here.largest_node()

    def start(self) -> None:
        with self._lock:
            if self._stopping.is_set() or self._watcher is not None:
                return
            self._spawn()  # here, not in the watcher: a wake-up right after reaches it
            self._watcher = threading.Thread(target=self._watch, name="dispatcher-child",
                                             daemon=True)
            self._watcher.start()

    def _spawn(self) -> None:
        process = subprocess.Popen(self._command, env=self._environment,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        # Until it says so, the child has no SIGUSR1 handler: a wake-up would kill it.
        said = process.stdout.readline() if process.stdout else b""
        if said.strip() != READY:
            logger.error("the dispatcher process %d did not start (exit code %s)",
                         process.pid, process.wait())
        self._process = process

    def _watch(self) -> None:
        """Replace a child that ended while the server runs (queued jobs would wait for
        ever); the new child fails the jobs the dead one ran."""
        while True:
            process = self._process
            assert process is not None
            exit_code = process.wait()
            if self._stopping.is_set():
                return
            logger.warning("the dispatcher process %d ended (exit code %s); starting "
                           "another", process.pid, exit_code)
            # A child that cannot even start must not make this a busy loop.
            if self._stopping.wait(RESPAWN_PAUSE):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._spawn()

    def wake(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, WAKE_SIGNAL)

    def reap_orphans(self) -> int:
        return self._here.reap_orphans()

    def stop(self) -> None:
        with self._lock:  # no child is being started from here on
            self._stopping.set()
            process = self._process
        self._here.stop()
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.warning("the dispatcher process %d did not stop in %g s; killing it",
                           process.pid, STOP_TIMEOUT)
            process.kill()
            process.wait()

    @property
    def pid(self) -> int | None:
        """The child's process id, while one was started."""
        return None if self._process is None else self._process.pid
