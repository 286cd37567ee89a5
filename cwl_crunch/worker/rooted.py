"""Running a command in a private mount namespace: fixed root and read-only inputs.

Two things need the command to see its files differently from the host, and a private
mount namespace (``unshare``; plus a user namespace when not root) gives both without a
container:

- ``JobSpec.root``: the job directory is bind-mounted at a fixed absolute path, so paths
  baked into a command (a CWL tool's ``runtime.outdir``, its inputs' paths) are the same on
  every run and host, and hold literally inside the job.
- Read-only collection mounts are hard links to the store's block files; bind-mounting
  each one read-only over itself stops a job from writing through them into the store.

Nothing outside the namespace sees these mounts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from cwl_crunch.client.base import CollectionMount, JobSpec

# Exit code when the namespace cannot be set up (env(1) and xargs use 125 the same way:
# "the wrapper itself failed").
SETUP_FAILED = 125

# $1 job dir, $2 root ("" for none), $3 cwd, $4 number of read-only paths, then those
# paths (relative to the job dir), then the command.
_SETUP = (
    'job=$1 root=$2 cwd=$3 count=$4; shift 4; '
    'fail() { echo "cwl-crunch: $1 (are mount namespaces available?)" >&2; '
    f'exit {SETUP_FAILED}; }}; '
    'while [ "$count" -gt 0 ]; do '
    'mount --bind "$job/$1" "$job/$1" && mount -o remount,bind,ro "$job/$1" '
    '|| fail "cannot make $1 read-only"; shift; count=$((count - 1)); done; '
    'if [ -n "$root" ]; then mkdir -p "$root" 2>/dev/null; '
    'mount --rbind "$job" "$root" || fail "cannot show the job directory at $root"; '
    'cd "$root/$cwd"; else cd "$job/$cwd"; fi && exec "$@"'
)


def read_only_targets(spec: JobSpec) -> list[str]:
    """Job-dir paths of the mounts the command must not be able to change."""
    return sorted(target for target, mount in spec.mounts.items()
                  if isinstance(mount, CollectionMount) and not mount.writable)


def needs_namespace(spec: JobSpec) -> bool:
    return spec.root is not None or bool(read_only_targets(spec))


def namespaces_available() -> bool:
    return shutil.which("unshare") is not None and shutil.which("mount") is not None


def namespaced_command(spec: JobSpec, job_dir: Path) -> list[str]:
    """The job's command wrapped to run in its own mount namespace."""
    user_namespace = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
    read_only = read_only_targets(spec)
    return ["unshare", *user_namespace, "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", _SETUP, "cwl-crunch-job", str(job_dir), spec.root or "",
            spec.cwd, str(len(read_only)), *read_only, *spec.command]


def path_inside(root: str, relative: str) -> str:
    """Where the command sees the job-dir path ``relative``."""
    return root if relative in ("", ".") else f"{root.rstrip('/')}/{relative}"


def remap_root_links(directory: Path, places: Mapping[str, str], job_dir: Path) -> None:
    """Symlinks the command made to where it saw its job dir point there on the host.

    ``places``: absolute paths the command saw (``root``, a container's binds) and the
    job-dir paths shown there ("" for the job dir itself). Outside the namespace or the
    container those paths are not the job's, so such links would dangle (or worse, lead
    elsewhere) when the outputs are stored.
    """
    # Longest first: a bind inside the root wins over the root.
    ordered = sorted(places.items(), key=lambda place: -len(place[0]))
    for folder, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            link = Path(folder) / name
            if not link.is_symlink():
                continue
            moved = _host_target(os.readlink(link), ordered, job_dir)
            if moved is not None:
                link.unlink()
                link.symlink_to(moved)


def _host_target(target: str, places: list[tuple[str, str]], job_dir: Path) -> Path | None:
    for seen, relative in places:
        seen = seen.rstrip("/")
        if target == seen or target.startswith(seen + "/"):
            rest = target[len(seen) + 1:]
            return job_dir / relative / rest if rest else job_dir / relative
    return None
