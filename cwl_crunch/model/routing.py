"""Which backend runs a job: the one routing decision, as pure data.

A cluster's config names the dispatcher for jobs of one core or more (``dispatcher``:
``local`` or ``slurm``). Jobs under one core (workflow runners take 0.25 core and spend
their life waiting for their steps) always run on the cluster's own host: SLURM allocates
whole CPUs, so each runner would hold a CPU of the cluster while it waits, and wait in
SLURM's queue before that. Every dispatcher, the records' queue queries and the
submission check ask :class:`Routing`; nothing else compares cores with one.
"""

from __future__ import annotations

import dataclasses

from cwl_crunch.model.jobs import JobSpec
from cwl_crunch.model.states import BACKENDS

WHOLE_CORE = 1 - 1e-9
"""Cores are floats: a 1-core job must not count as under one core through rounding."""
HOST = "local"
"""The backend of the cluster's own host, which runs every job under one core."""


@dataclasses.dataclass(frozen=True)
class Routing:
    """Where the jobs of a cluster whose config names ``dispatcher`` run."""

    dispatcher: str = HOST

    def __post_init__(self) -> None:
        if self.dispatcher not in BACKENDS:
            raise ValueError(f"unknown backend {self.dispatcher!r} (known: "
                             f"{', '.join(BACKENDS)})")

    def route(self, spec: JobSpec) -> str:
        """The backend that runs ``spec``."""
        return self.route_cores(spec.cores)

    def route_cores(self, cores: float) -> str:
        return self.dispatcher if cores >= WHOLE_CORE else HOST

    def backends(self) -> tuple[str, ...]:
        """Every backend that runs some of this cluster's jobs."""
        return (HOST,) if self.dispatcher == HOST else (HOST, self.dispatcher)

    def whole_cores(self, backend: str) -> bool | None:
        """Which queued jobs ``backend`` takes, as the records' queue queries filter
        them: None, all; True, those of one core or more; False, those under one."""
        if self.dispatcher == HOST:
            return None
        return backend != HOST
