"""Drawing the process tree: a job, its children, theirs, with state and results."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cwl_crunch.cli.table import human_duration
from cwl_crunch.client import JobRecord
from cwl_crunch.model import JobState, cluster_of

Children = Callable[[str], Sequence[JobRecord]]


def job_line(job: JobRecord, home: str | None = None) -> str:
    """One job on a line; with ``home``, a job of another cluster says where it ran."""
    reused = f"reused {job.reused_job_uuid}" if job.reused_job_uuid else ""
    state: str = job.state
    if job.complete and job.exit_code not in (0, None):
        state = f"Complete (exit {job.exit_code})"
    if job.state == JobState.FAILED and job.failure_reason:
        state = f"Failed ({job.failure_reason})"
    parts = [job.uuid, job.name or "-", state, human_duration(job.duration)]
    if home is not None and cluster_of(job.uuid) != home:
        parts.insert(1, f"[on {cluster_of(job.uuid)}]")
    if reused:
        parts.append(reused)
    if job.output_pdh:
        parts.append(f"out {job.output_pdh}")
    return "  ".join(parts)


def parent_text(parent_uuid: str | None, cluster_id: str) -> str | None:
    """A parent as shown: one of another cluster says so (its record is there)."""
    if parent_uuid is None or cluster_of(parent_uuid) == cluster_id:
        return parent_uuid
    return f"{parent_uuid} (on cluster {cluster_of(parent_uuid)}, not readable here)"


def render_tree(root: JobRecord, children: Children, cluster_id: str | None = None,
                ) -> list[str]:
    """The tree below ``root``; with ``cluster_id``, a parent of ``root`` on another
    cluster heads it as a leaf (its records are that cluster's)."""
    lines = [job_line(root, cluster_id)]
    if cluster_id is not None and root.parent_uuid is not None \
            and cluster_of(root.parent_uuid) != cluster_id:
        lines.insert(0, f"parent {parent_text(root.parent_uuid, cluster_id)}")
    _render_children(root.uuid, children, "", lines, cluster_id)
    return lines


def may_have_children(job: JobRecord) -> bool:
    """Whether the job can be anyone's parent. A job's children are what its token
    submitted, and a job that took over another's work (reused or joined it) never had a
    token: that job ran, and the children are its. Asking nothing about these saves a
    request per reused step (one each: a tree of 10,000 steps took 42 s embedded, on a
    loaded 2-core host)."""
    return job.reused_job_uuid is None


def _render_children(uuid: str, children: Children, prefix: str, lines: list[str],
                     home: str | None) -> None:
    kids = sorted(children(uuid), key=lambda job: (job.created_at, job.name, job.uuid))
    for index, kid in enumerate(kids):
        last = index == len(kids) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{job_line(kid, home)}")
        if may_have_children(kid):
            _render_children(kid.uuid, children, prefix + ("    " if last else "│   "), lines,
                             home)
