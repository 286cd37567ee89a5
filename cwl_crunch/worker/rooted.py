"""Running a command that sees its job directory at a fixed absolute path (``JobSpec.root``).

The command runs in a private mount namespace (``unshare``) where the job directory is
bind-mounted at ``root``; nothing outside the namespace sees the mount. A user who is not
root gets a user namespace too. So absolute paths baked into a command (a CWL tool's
``runtime.outdir``, its inputs' paths) are the same on every run and every host, and hold
literally inside the job.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# Exit code when the job directory cannot be shown at its root (as env(1)/xargs use 125
# for "the wrapper itself failed").
ROOT_FAILED = 125

_ENTER_ROOT = (
    'mkdir -p "$2" 2>/dev/null; '
    'mount --bind "$1" "$2" || { echo "cwl-crunch: cannot show the job directory at $2 '
    f'(mount namespaces unavailable?)" >&2; exit {ROOT_FAILED}; }}; '
    'cd "$2/$3" && shift 3 && exec "$@"'
)


def rooted_command(command: Sequence[str], job_dir: Path, root: str, cwd: str) -> list[str]:
    """``command`` wrapped to run in ``root/cwd`` with ``job_dir`` mounted at ``root``."""
    user_namespace = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
    return ["unshare", *user_namespace, "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", _ENTER_ROOT, "cwl-crunch-root", str(job_dir), root, cwd,
            *command]


def path_inside(root: str, relative: str) -> str:
    """Where the command sees the job-dir path ``relative``."""
    return root if relative in ("", ".") else f"{root.rstrip('/')}/{relative}"


def remap_root_links(directory: Path, root: str, job_dir: Path) -> None:
    """Symlinks the command made to ``root/...`` point into the job dir on the host.

    Outside the namespace ``root`` is an empty mountpoint, so such links would dangle
    when the outputs are stored; their targets are where the command saw them.
    """
    prefix = root.rstrip("/") + "/"
    for folder, dirnames, filenames in os.walk(directory):
        for name in dirnames + filenames:
            link = Path(folder) / name
            if not link.is_symlink():
                continue
            target = os.readlink(link)
            if target == root or target.startswith(prefix):
                link.unlink()
                link.symlink_to(job_dir / target[len(prefix):] if target != root else job_dir)
