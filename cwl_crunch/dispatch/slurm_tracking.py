"""What the SLURM dispatcher does about the jobs it handed to SLURM: a pure function of
their records and of what SLURM says of them (no I/O here; ``slurm.py`` does it).

A job handed to SLURM is Running in the records with ``backend`` BACKEND and
``backend_job_id`` the SLURM job id (None until sbatch has answered). Its worker reports the
job's end itself, through the API; the dispatcher steps in only when that cannot happen:

* the SLURM job ended without the worker reporting (killed by ``scancel``, SLURM's time
  limit, a lost node, a worker that crashed): the job ends Failed with SLURM's words, or
  goes back to Queued when it was no fault of the job's (node failure, preemption);
* SLURM no longer knows the job at all: Failed, saying so;
* a cancel was requested: ``scancel``; the job ends Cancelled once SLURM says it ended;
* a record with no SLURM id (the dispatcher stopped between claiming and sbatch): adopt
  the SLURM job of that name if there is one, else submit it (nothing runs twice).

Correct only if SLURM's view is read *before* the records: a worker reports before it
exits, so a job SLURM saw ended that is still Running afterwards never reported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from cwl_crunch.dispatch.slurm_commands import Disposition, SlurmJob, classify
from cwl_crunch.model import EndReason, JobState

BACKEND = "slurm"
"""The ``backend`` of jobs handed to SLURM (model.BACKENDS)."""


@dataclasses.dataclass(frozen=True)
class Tracked:
    """A Running job of BACKEND, as the records hold it."""

    uuid: str
    slurm_id: str | None
    """None: claimed, but no sbatch is known to have taken it."""
    cancel_requested: bool = False


@dataclasses.dataclass(frozen=True)
class Adopt:
    """The job's SLURM job exists (found by name): record its id."""

    uuid: str
    slurm_id: str


@dataclasses.dataclass(frozen=True)
class Submit:
    """No SLURM job runs this claimed job: sbatch it."""

    uuid: str


@dataclasses.dataclass(frozen=True)
class Cancel:
    """Cancel requested and SLURM still has the job: scancel it."""

    uuid: str
    slurm_id: str


@dataclasses.dataclass(frozen=True)
class End:
    """The SLURM job is over and the worker did not report: end the record (or requeue
    it, if ``retry`` and the job has attempts left)."""

    uuid: str
    slurm_id: str
    state: JobState
    reason: str
    end_reason: EndReason
    retry: bool = False


Action = Adopt | Submit | Cancel | End


def decide(tracked: Iterable[Tracked], seen: Mapping[str, SlurmJob | None]) -> list[Action]:
    """``seen``: SLURM's view by job id, read before ``tracked``; None for an id SLURM
    said it does not know. Jobs of ids absent from ``seen`` are left for next time."""
    by_uuid: dict[str, list[SlurmJob]] = {}
    for job in seen.values():
        if job is not None and job.job_uuid is not None:
            by_uuid.setdefault(job.job_uuid, []).append(job)
    actions: list[Action] = []
    for record in tracked:
        if record.slurm_id is None:
            actions.append(_unsubmitted(record, by_uuid.get(record.uuid, [])))
        elif record.slurm_id in seen:
            action = _submitted(record, record.slurm_id, seen[record.slurm_id])
            if action is not None:
                actions.append(action)
    return actions


def _unsubmitted(record: Tracked, named: list[SlurmJob]) -> Action:
    if not named:
        return Submit(record.uuid)
    # Several: an earlier attempt ended and another was submitted; the newest counts.
    newest = max(named, key=lambda job: int(job.slurm_id))
    return Adopt(record.uuid, newest.slurm_id)


def _submitted(record: Tracked, slurm_id: str, job: SlurmJob | None) -> Action | None:
    ended: JobState = JobState.CANCELLED if record.cancel_requested else JobState.FAILED
    if job is None:
        return End(record.uuid, slurm_id, ended,
                   f"SLURM job {slurm_id} is gone: SLURM no longer knows it (it ended "
                   "longer ago than MinJobAge, or SLURM lost its state) and its worker "
                   "never reported", EndReason.LOST)
    outcome = classify(job)
    if outcome.disposition is Disposition.ACTIVE:
        return Cancel(record.uuid, slurm_id) if record.cancel_requested else None
    if outcome.disposition is Disposition.COMPLETED:
        return End(record.uuid, slurm_id, ended,
                   f"SLURM job {slurm_id} ended without its worker reporting the job's end",
                   EndReason.WORKER_DIED)
    retry = outcome.requeue and not record.cancel_requested
    return End(record.uuid, slurm_id, ended, f"{outcome.reason} (SLURM job {slurm_id})",
               end_reason_of(job.state), retry)


_END_REASONS = {
    "TIMEOUT": EndReason.TIME_LIMIT, "DEADLINE": EndReason.TIME_LIMIT,
    "CANCELLED": EndReason.CANCELLED, "OUT_OF_MEMORY": EndReason.OUT_OF_MEMORY,
    "NODE_FAIL": EndReason.LOST, "BOOT_FAIL": EndReason.LOST, "PREEMPTED": EndReason.LOST,
}


def end_reason_of(slurm_state: str) -> EndReason:
    """The end reason of a job whose SLURM job ended in ``slurm_state`` before its
    worker reported; FAILED and the rest: the worker itself failed or was killed."""
    return _END_REASONS.get(slurm_state, EndReason.WORKER_DIED)
