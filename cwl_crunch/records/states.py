"""The job state machine, as pure data: no database, no I/O.

    Queued ──> Running ──> Complete | Failed | Cancelled
       └──────────────────────────> Failed | Cancelled | Complete (reused)

A queued job can finish without running: cancelled, failed at staging, or completed by
reusing an identical finished job. A job that joined a running twin can be sent back to
Queued when that twin fails, so that it runs itself. Finished states are final.
"""

from __future__ import annotations

from typing import Final

from cwl_crunch.errors import IllegalTransition

QUEUED: Final = "Queued"
RUNNING: Final = "Running"
COMPLETE: Final = "Complete"
FAILED: Final = "Failed"
CANCELLED: Final = "Cancelled"

FINAL = frozenset({COMPLETE, FAILED, CANCELLED})
ALL = frozenset({QUEUED, RUNNING}) | FINAL

_ALLOWED: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, COMPLETE, FAILED, CANCELLED}),
    RUNNING: frozenset({QUEUED, COMPLETE, FAILED, CANCELLED}),
    COMPLETE: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}


def can_transition(current: str, new: str) -> bool:
    return new in _ALLOWED.get(current, frozenset())


def check_transition(job_uuid: str, current: str, new: str) -> None:
    """Raise IllegalTransition unless ``current -> new`` is allowed."""
    if current not in ALL or new not in ALL:
        raise IllegalTransition(f"job {job_uuid}: unknown state in {current} -> {new}")
    if not can_transition(current, new):
        raise IllegalTransition(f"job {job_uuid}: cannot go from {current} to {new}")
