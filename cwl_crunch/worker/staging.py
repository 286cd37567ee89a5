"""Putting a job's mounts in place inside its fresh job directory."""

from __future__ import annotations

import os
from pathlib import Path

from cwl_crunch.client.base import CollectionMount, JobSpec, LiteralMount
from cwl_crunch.store import CollectionStore


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
    (job_dir / spec.output_path).mkdir(parents=True, exist_ok=True)
    (job_dir / spec.cwd).mkdir(parents=True, exist_ok=True)
