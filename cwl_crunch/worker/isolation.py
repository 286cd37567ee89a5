"""What keeps a job from the cluster's own state and from outliving its end.

An isolated job's command runs (``worker/rooted.py``) in namespaces of its own:

- a PID namespace: when the command ends, the kernel kills whatever it left running
  (a daemon that called setsid, cleared its environment, double-forked), and the worker
  stores the outputs only after that; cancel and the time limit kill the namespace;
- a mount namespace where the cluster home, store, work dir (other jobs), records
  database and config file are empty (a tmpfs over directories, /dev/null over files),
  while the job's own host directory stays at its path, and ``/proc`` shows only the
  job's processes (not the worker's or server's environment);
- a user namespace below the one that made those mounts, so the command cannot unmount
  them (the kernel locks mounts inherited by a less privileged namespace).

Where that does not work (no ``unshare``, user namespaces forbidden), a server refuses to
start unless its config says ``isolation = "none"``; anything else runs its jobs as
before, saying so in the job's worker log, and stores their outputs by copying: a process
the job left behind could otherwise still write into a stored block.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import tempfile
from pathlib import Path

from cwl_crunch.config import Config
from cwl_crunch.errors import ConfigError
from cwl_crunch.model import JobSpec
from cwl_crunch.worker.rooted import namespaced_command, namespaces_available

PROBE_TIMEOUT = 10.0
"""Seconds the one-time check that isolated jobs can run here may take."""


@dataclasses.dataclass(frozen=True)
class Isolation:
    """How a JobWorker isolates the jobs it runs."""

    hidden: tuple[Path, ...] = ()
    """Paths the command must not see (the cluster's own state)."""
    enabled: bool = True
    """False: ``isolation = "none"`` in the config."""
    required: bool = False
    """A server's worker: a job that cannot be isolated fails instead of running."""

    @classmethod
    def of(cls, config: Config, *, required: bool = False) -> Isolation:
        return cls(hidden_paths(config), config.isolation != "none", required)


def hidden_paths(config: Config) -> tuple[Path, ...]:
    """The cluster's own paths: home, store, work dir, the SQLite records (with the files
    SQLite and the writer lock keep next to them) and the config file."""
    paths = [config.home, config.store, config.work]
    database = sqlite_file(config.database)
    if database is not None:
        paths += [database, *(database.with_name(database.name + suffix)
                              for suffix in ("-wal", "-shm", "-journal", ".lock"))]
    if config.config is not None:
        paths.append(config.config)
    return tuple(paths)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URL; None for other databases."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):].partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


@functools.cache
def isolation_problem() -> str | None:
    """None if isolated jobs can run on this host, else why not. Tried once per process
    with a real isolated command (a few ms)."""
    if not namespaces_available():
        return "unshare(1), setpriv(1) and mount(8) (util-linux) are not installed"
    with tempfile.TemporaryDirectory(prefix="cwl-crunch-probe-") as scratch:
        hidden = Path(scratch) / "hidden"
        job_dir = hidden / "host" / "job"
        job_dir.mkdir(parents=True)
        (hidden / "secret").write_text("")
        spec = JobSpec(command=("/bin/sh", "-c", f"test ! -e {hidden}/secret"))
        try:
            probe = subprocess.run(
                namespaced_command(spec, job_dir, [hidden]), capture_output=True,
                stdin=subprocess.DEVNULL, timeout=PROBE_TIMEOUT, check=False,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"cannot run unshare: {error}"
    if probe.returncode != 0:
        said = probe.stderr.decode(errors="replace").strip().splitlines()
        return (said[-1] if said else f"exit code {probe.returncode}") + \
            " (PID, mount and user namespaces are needed: unshare(1))"
    return None


def check_isolation(config: Config) -> None:
    """For a server: refuse to run jobs unisolated unless the config says so."""
    if config.isolation == "none":
        return
    problem = isolation_problem()
    if problem is not None:
        raise ConfigError(f"jobs cannot be isolated on this host: {problem}. Set "
                          "isolation = \"none\" in the config (or CWL_CRUNCH_ISOLATION=none) "
                          "to run them anyway, with access to the cluster's own files")
