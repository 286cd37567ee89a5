"""The job state machine and the vocabulary of a job's end, as pure data: no I/O.

    Queued ──> Running ──> Complete | Failed | Cancelled
       └──────────────────────────> Failed | Cancelled | Complete (reused)

A queued job can finish without running: cancelled, failed at staging, or completed by
reusing an identical finished job. A job that joined a running twin can be sent back to
Queued when that twin fails, so that it runs itself. Finished states are final.
"""

from __future__ import annotations

import enum

from cwl_crunch.errors import IllegalTransition


class JobState(enum.StrEnum):
    """A job's state; the only spelling of the five states anywhere in the code."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


FINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED})
"""States a job never leaves."""
ACTIVE_STATES: frozenset[JobState] = frozenset({JobState.QUEUED, JobState.RUNNING})
"""States of a job that is not finished yet (waiting, or being run)."""
ALL_STATES: frozenset[JobState] = frozenset(JobState)

_ALLOWED: dict[str, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {JobState.RUNNING, JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {JobState.QUEUED, JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED}),
    JobState.COMPLETE: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def can_transition(current: str, new: str) -> bool:
    return new in _ALLOWED.get(current, frozenset())


def check_transition(job_uuid: str, current: str, new: str) -> None:
    """Raise IllegalTransition unless ``current -> new`` is allowed."""
    if current not in ALL_STATES or new not in ALL_STATES:
        raise IllegalTransition(f"job {job_uuid}: unknown state in {current} -> {new}")
    if not can_transition(current, new):
        raise IllegalTransition(f"job {job_uuid}: cannot go from {current} to {new}")


class EndReason(enum.StrEnum):
    """Why a job ended, for programs (``failure_reason`` says it in words, for people).

    Every end of a job records one (older records may have none: they ended before
    schema version 8, and only those with an exit code were given ``EXIT``).
    """

    EXIT = "exit"
    """The command ran and exited; ``exit_code`` and the state say how it went."""
    TIME_LIMIT = "time limit"
    """Stopped at its time limit (its own, or the backend's)."""
    CANCELLED = "cancelled"
    """Cancelled by a person or a parent, or by the backend's operator (scancel)."""
    OUT_OF_MEMORY = "out of memory"
    """The backend killed it for using more memory than it asked for."""
    LOST = "lost"
    """The backend lost it: its node failed, it was preempted, or the backend forgot it."""
    REFUSED = "refused"
    """The backend would not take it (sbatch refused it, or could not be run)."""
    WORKER_DIED = "worker died"
    """The process running the job died before it could report the job's end."""
    ERROR = "error"
    """The cluster could not run the command or keep its results (staging, isolation,
    container engine, a worker error): ``failure_reason`` says what."""
    REUSED = "reused"
    """It did no work of its own: it took the result of an identical job."""


BACKENDS = ("local", "slurm")
"""Who runs a claimed job: ``local``, a worker process on a host of this cluster (its
``worker_host`` and ``worker_pid``); ``slurm``, a SLURM batch job (``backend_job_id``)."""


