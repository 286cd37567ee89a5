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

Isolated (``hidden`` given: see worker/isolation.py), the same script also hides the
cluster's own paths (home, store, work dir, records, config) under empty mounts, shows the
job's host directory at its path again, and runs the command in a PID namespace of its
own, in a user namespace below the one that made those mounts, so that it can neither
undo them nor leave a process behind.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from cwl_crunch.model import CollectionMount, JobSpec

# Exit code when the namespace cannot be set up (env(1) and xargs use 125 the same way:
# "the wrapper itself failed").
SETUP_FAILED = 125

# $1 host dir (the job dir is $1/job), $2 root ("" for none), $3 cwd, $4 "" (not isolated),
# "root" (isolated, run by root) or "UID:GID" (isolated: the user and group to run as),
# $5 number of read-only paths, then those paths (relative to the job dir); when
# isolating, then the number of directories to hide and (directory, inodes) for each,
# the number of files to hide and those; then the command.
_SETUP = (
    'host=$1 root=$2 cwd=$3 isolate=$4 count=$5; shift 5; job=$host/job; '
    'fail() { echo "cwl-crunch: $1 (are mount namespaces available?)" >&2; '
    f'exit {SETUP_FAILED}; }}; '
    'while [ "$count" -gt 0 ]; do '
    'mount --bind "$job/$1" "$job/$1" && mount -o remount,bind,ro "$job/$1" '
    '|| fail "cannot make $1 read-only"; shift; count=$((count - 1)); done; '
    'if [ -n "$isolate" ]; then cd "$host" || fail "no host directory $host"; '
    'count=$1; shift; while [ "$count" -gt 0 ]; do '
    'mount -t tmpfs -o "size=64k,nr_inodes=$2,mode=0755" cwl-crunch-hidden "$1" '
    '|| fail "cannot hide $1"; shift 2; count=$((count - 1)); done; '
    'count=$1; shift; while [ "$count" -gt 0 ]; do '
    'mount --bind /dev/null "$1" || fail "cannot hide $1"; shift; count=$((count - 1)); done; '
    # The shell's cwd still is the host dir under the tmpfs: show it at its path again.
    'mkdir -p "$host" && mount --no-canonicalize --rbind /proc/self/cwd "$host" '
    '|| fail "cannot show the job its directory"; fi; '
    'if [ -n "$root" ]; then mkdir -p "$root" 2>/dev/null; '
    'mount --rbind "$job" "$root" || fail "cannot show the job directory at $root"; '
    'cd "$root/$cwd"; else cd "$job/$cwd"; fi || fail "no directory $cwd"; '
    # Isolated, this shell is PID 1 of the job's PID namespace: it runs the command as its
    # child (a PID 1 ignores the signals it has no handler for: SIGTERM must reach the
    # command) and the namespace ends when it does. The command must not be able to unmount
    # what hides the cluster: run by root, it runs without CAP_SYS_ADMIN (for good: not in
    # its bounding set); otherwise in a user namespace of its own, which locks the mounts
    # above, as the user it is outside (not as root: a tar it runs would try to chown).
    'if [ "$isolate" = root ]; then '
    'setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin -- "$@"; exit; '
    'elif [ -n "$isolate" ]; then '
    'unshare --map-user="${isolate%:*}" --map-group="${isolate#*:}" -- "$@"; exit; '
    'fi; exec "$@"'
)

PID_NAMESPACE = ["--pid", "--fork", "--kill-child", "--mount-proc"]
"""A PID namespace whose processes all die with its first: ``--kill-child`` kills that one
(and so the namespace) when unshare itself is killed (cancel, a reaped dead worker)."""


def read_only_targets(spec: JobSpec) -> list[str]:
    """Job-dir paths of the mounts the command must not be able to change."""
    return sorted(target for target, mount in spec.mounts.items()
                  if isinstance(mount, CollectionMount) and not mount.writable)


def needs_namespace(spec: JobSpec) -> bool:
    return spec.root is not None or bool(read_only_targets(spec))


def namespaces_available() -> bool:
    return all(shutil.which(tool) is not None for tool in ("unshare", "mount", "setpriv"))


def namespaced_command(spec: JobSpec, job_dir: Path,
                       hidden: Sequence[Path] | None = None) -> list[str]:
    """The job's command wrapped to run in its own mount namespace; with ``hidden`` (the
    cluster's own paths) also in its own PID namespace, where those paths are empty."""
    user_namespace = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
    read_only = read_only_targets(spec)
    isolation: list[str] = []
    pid_namespace: list[str] = []
    if hidden is not None:
        pid_namespace = PID_NAMESPACE
        directories, files = hidden_mounts(hidden, job_dir.parent, spec.root)
        isolation = [str(len(directories)),
                     *(str(part) for pair in directories for part in pair),
                     str(len(files)), *files]
    return ["unshare", *user_namespace, "--mount", "--propagation", "private",
            *pid_namespace, "--", "/bin/sh", "-c", _SETUP, "cwl-crunch-job",
            str(job_dir.parent), spec.root or "", spec.cwd,
            _isolated_as(hidden is not None), str(len(read_only)), *read_only,
            *isolation, *spec.command]


def _isolated_as(isolated: bool) -> str:
    """Who the command runs as in an isolated job: the user running the worker (uid:gid,
    or "root"), as it would unisolated."""
    if not isolated:
        return ""
    return "root" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"


def hidden_mounts(hidden: Sequence[Path], host_dir: Path,
                  root: str | None) -> tuple[list[tuple[str, int]], list[str]]:
    """The directories to cover with an empty tmpfs (each with its inode limit) and the
    files to cover with /dev/null: those of ``hidden`` that exist, not inside another
    (already hidden), parents first.

    A tmpfs holds no more inodes than its root and the directories leading to the job's
    host dir (and root) below it: the job can create nothing there (no fresh records
    database in an empty home, say)."""
    directories: list[tuple[str, int]] = []
    files: list[str] = []
    shown = [str(host_dir)] + ([root] if root else [])
    for path in sorted({os.path.abspath(p) for p in hidden}, key=len):
        if any(_inside(path, d) for d, _ in directories) or _inside(path, str(host_dir)):
            continue  # already hidden, or the job's own
        if os.path.isdir(path):
            leading: set[str] = set()  # the directories mkdir -p makes in the tmpfs
            for place in shown:
                if _inside(place, path) and place != path:
                    parts = os.path.relpath(place, path).split("/")
                    leading.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))
            directories.append((path, 1 + len(leading)))
        elif os.path.isfile(path):
            files.append(path)
    return directories, files


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


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
