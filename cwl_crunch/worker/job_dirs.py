"""Host directories for job runs, recycled instead of made and removed for every job.

Making a run's skeleton (``logs/``, ``job/out/``, ``tmp/``) and removing it afterwards
costs more than a trivial job's whole command on this kind of filesystem (each mkdir and
rmdir allocates or frees a directory block). A released directory whose contents were
emptied is just as fresh, so a process keeps a few: each is renamed to
``<work>/<job uuid>`` while a job uses it (where a dispatcher that finds the worker dead
looks for its logs) and back to ``<work>/.pool/<owner>-<n>`` afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

from cwl_crunch.worker.processes import is_alive, start_ticks

# The parts of a run's host directory that are kept between jobs.
SKELETON = ("logs", "job/out", "tmp")
# Directories one process keeps for reuse (more are removed when released).
POOL_LIMIT = 32


class JobDirs:
    def __init__(self, work_root: Path, *, pooled: bool = True) -> None:
        self._work_root = work_root
        self._pooled = pooled
        pid = os.getpid()
        self._owner = f"{pid}.{start_ticks(pid) or 0}"
        self._pool_root = work_root / ".pool"
        self._free: list[Path] = []
        self._made = 0
        self._lock = threading.Lock()
        if pooled:
            self._remove_dead_owners()

    def acquire(self, job_uuid: str) -> Path:
        """A fresh host directory at ``<work>/<job uuid>`` with the skeleton in place."""
        host_dir = self._work_root / job_uuid
        with self._lock:
            spare = self._free.pop() if self._free else None
        if spare is not None:
            try:
                os.rename(spare, host_dir)
                return host_dir
            except OSError:
                shutil.rmtree(spare, ignore_errors=True)
        for part in SKELETON:
            (host_dir / part).mkdir(parents=True, exist_ok=True)
        return host_dir

    def release(self, host_dir: Path) -> None:
        """Empty the directory and keep it for the next job (or remove it).

        The job may have replaced parts of it by symlinks: none is ever followed (a link
        is removed as a link), as emptying through one would delete someone else's files.
        """
        if os.path.islink(host_dir):
            os.unlink(host_dir)
            return
        if self._pooled:
            with self._lock:
                keep = len(self._free) < POOL_LIMIT
                self._made += keep
                name = f"{self._owner}-{self._made}"
            if keep:
                try:
                    _empty_to_skeleton(host_dir)
                    spare = self._pool_root / name
                    self._pool_root.mkdir(exist_ok=True)
                    os.rename(host_dir, spare)
                except OSError:
                    pass  # anything odd in it: remove it instead
                else:
                    with self._lock:
                        self._free.append(spare)
                    return
        shutil.rmtree(host_dir, ignore_errors=True)

    def _remove_dead_owners(self) -> None:
        """Spare directories left by processes that died are removed."""
        if not self._pool_root.is_dir():
            return
        for spare in self._pool_root.iterdir():
            owner = spare.name.split("-", 1)[0]
            pid, _, ticks = owner.partition(".")
            with contextlib.suppress(ValueError):
                if is_alive(int(pid), int(ticks)):
                    continue
            shutil.rmtree(spare, ignore_errors=True)


def _empty_to_skeleton(host_dir: Path) -> None:
    """Remove everything but the skeleton's own directories (raises OSError on trouble)."""
    keep = {host_dir / part for part in SKELETON} | {host_dir / "job"}
    for directory in (host_dir, host_dir / "job", host_dir / "job" / "out",
                      host_dir / "logs", host_dir / "tmp"):
        if os.path.islink(directory):
            raise OSError(f"{directory} is a symlink")  # rmtree removes it as a link
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                if path in keep:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    _make_removable(path)
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
    for part in SKELETON:
        if not (host_dir / part).is_dir():
            raise OSError(f"{host_dir / part} is gone")


def _make_removable(path: Path) -> None:
    """A job may leave read-only directories; rmtree needs write access to empty them."""
    for folder, subdirs, _ in os.walk(path):
        for name in subdirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, name), 0o755)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o755)
