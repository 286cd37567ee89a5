"""Which queued jobs to start now: a pure function of the queue and the free resources."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

# Cores are floats: four 0.25-core jobs must fit one core despite rounding.
_EPSILON = 1e-9


@dataclasses.dataclass(frozen=True)
class Candidate:
    uuid: str
    cores: float
    ram: int


@dataclasses.dataclass(frozen=True)
class Capacity:
    cores: float
    ram: int


def choose_jobs(candidates: Iterable[Candidate], free: Capacity) -> list[str]:
    """Greedy in queue order (priority, then age), skipping jobs that do not fit yet.

    Skipping lets small jobs fill the gaps left beside a big one (backfill); a big job
    still starts first as soon as enough is free, because it stays ahead in the queue.
    """
    chosen = []
    cores, ram = free.cores, free.ram
    for job in candidates:
        if job.cores <= cores + _EPSILON and job.ram <= ram:
            chosen.append(job.uuid)
            cores -= job.cores
            ram -= job.ram
    return chosen


def fits_machine(cores: float, ram: int, limit: Capacity) -> bool:
    return cores <= limit.cores + _EPSILON and ram <= limit.ram
