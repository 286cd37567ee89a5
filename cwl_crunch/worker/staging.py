"""Putting a job's mounts in place inside its fresh job directory.

Read-only inputs are hard links to the store's block files (no copy). Outside a
container nothing stops a job running as the store's owner from writing through one, as
nothing stops a cwltool job from writing through its symlinked inputs; so the worker
notes each linked input's identity before the run and checks it after
(:func:`linked_inputs` / :func:`modified_inputs`): a job that changed its input fails
saying so, and the damaged block is caught by hash on its next read.
"""

from __future__ import annotations

import os
from pathlib import Path

from cwl_crunch.model import CollectionMount, JobSpec, LiteralMount
from cwl_crunch.store import CollectionStore

LinkSnapshot = dict[str, tuple[int, int, int]]


def stage_mounts(spec: JobSpec, job_dir: Path, store: CollectionStore) -> None:
    """Place every mount; parents before children so nested targets land inside."""
    for target in sorted(spec.mounts, key=lambda t: (t.count("/"), t)):
        mount = spec.mounts[target]
        dest = job_dir / target
        if isinstance(mount, CollectionMount):
            store.stage(mount.pdh, mount.path, dest, writable=mount.writable)
        else:
            _write_literal(mount, dest)


def _write_literal(mount: LiteralMount, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(mount.content)
    mode = 0o644 if mount.writable else 0o444
    if mount.executable:
        mode |= 0o111
    os.chmod(dest, mode)


def prepare_dirs(spec: JobSpec, job_dir: Path) -> None:
    """The output and working directories exist (a mount may already have made them)."""
    for needed in {spec.output_path, spec.cwd} - {"out", "."}:  # those two always exist
        (job_dir / needed).mkdir(parents=True, exist_ok=True)


def linked_inputs(spec: JobSpec, job_dir: Path) -> LinkSnapshot:
    """(inode, size, mtime) of every staged file that is a link into the store."""
    snapshot: LinkSnapshot = {}
    for target, mount in spec.mounts.items():
        if not isinstance(mount, CollectionMount) or mount.writable:
            continue
        root = job_dir / target
        paths = [root] if root.is_file() else [
            Path(folder) / name for folder, _, names in os.walk(root) for name in names]
        for path in paths:
            info = path.lstat()
            if info.st_nlink > 1:
                snapshot[str(path.relative_to(job_dir))] = (
                    info.st_ino, info.st_size, info.st_mtime_ns)
    return snapshot


def modified_inputs(snapshot: LinkSnapshot, job_dir: Path) -> list[str]:
    """The linked inputs whose content the job changed (a moved or deleted link is fine:
    that changes the job dir, not the store)."""
    modified = []
    for relative, (inode, size, mtime) in snapshot.items():
        try:
            info = (job_dir / relative).lstat()
        except FileNotFoundError:
            continue
        if info.st_ino == inode and (info.st_size, info.st_mtime_ns) != (size, mtime):
            modified.append(relative)
    return sorted(modified)
