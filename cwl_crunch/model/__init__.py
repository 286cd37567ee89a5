"""The domain model: what a job is, its states, and the interface to a cluster.

The bottom layer: it imports nothing of cwl-crunch but ``errors``, and every other
package takes these types from here (see docs/design.md for the layers).
"""

from __future__ import annotations

from cwl_crunch.model.client import ClusterClient
from cwl_crunch.model.collections import CollectionEntry
from cwl_crunch.model.jobs import (
    EVERY_JOB,
    JOB_PAGE_LIMIT,
    JOB_UUID,
    Claim,
    CollectionMount,
    JobEvent,
    JobFilter,
    JobOutcome,
    JobRecord,
    JobSpec,
    LiteralMount,
    Mount,
    NodeSize,
    WorkerInfo,
    cluster_of,
)
from cwl_crunch.model.states import (
    ACTIVE_STATES,
    ALL_STATES,
    BACKENDS,
    FINAL_STATES,
    EndReason,
    JobState,
    can_transition,
    check_transition,
)

__all__ = [
    "ACTIVE_STATES",
    "ALL_STATES",
    "BACKENDS",
    "Claim",
    "ClusterClient",
    "CollectionEntry",
    "CollectionMount",
    "EVERY_JOB",
    "EndReason",
    "FINAL_STATES",
    "JOB_PAGE_LIMIT",
    "JOB_UUID",
    "JobEvent",
    "JobFilter",
    "JobOutcome",
    "JobRecord",
    "JobSpec",
    "JobState",
    "LiteralMount",
    "Mount",
    "NodeSize",
    "WorkerInfo",
    "can_transition",
    "check_transition",
    "cluster_of",
]
