"""What a job's token may reach: its own job and the jobs below it, the collections
those jobs were given or made, and what it stored itself. A person's token reaches all.

Positive answers are cached: a job's subtree only grows and collections never change,
so what a token could see once it can always see.
"""

from __future__ import annotations

import threading
import time

from fastapi import HTTPException

from cwl_crunch.core import ClusterCore
from cwl_crunch.model import JobRecord
from cwl_crunch.model.residency import CollectionResidency
from cwl_crunch.model.runs import is_made_runner
from cwl_crunch.server.auth import Caller

_CACHE_LIMIT = 100_000
TRAVELS_FOR = 5.0
"""Seconds a "no residency record" answer is kept for a job's reads. A collection
becomes resident when a person says so (through this server: the answers are dropped
at once) or when the job that makes it ends, before its PDH is known to anyone; so a
kept answer misses nothing a reader could not read already. Saves a records read per
block a job reads: bench/api.py's scatter of 200 steps took 3.6 s before residency
(median of 4), 4.1 s with that read, and the same as before with this."""


class Access:
    def __init__(self, core: ClusterCore) -> None:
        self._core = core
        self._allowed: set[tuple[str, str]] = set()
        self._travels: dict[str, float] = {}
        self._lock = threading.Lock()

    def resident(self, pdh: str) -> CollectionResidency | None:
        """``pdh``'s record if it stays here (for a job's reads: see TRAVELS_FOR)."""
        now = time.monotonic()
        with self._lock:
            if self._travels.get(pdh, 0.0) > now:
                return None
        found = self._core.resident_here(pdh)
        if found is None:
            with self._lock:
                if len(self._travels) > _CACHE_LIMIT:
                    self._travels.clear()
                self._travels[pdh] = now + TRAVELS_FOR
        return found

    def forget_residency(self) -> None:
        """A person made a collection resident: ask the records again."""
        with self._lock:
            self._travels.clear()

    def _cached(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._allowed

    def _remember(self, key: tuple[str, str]) -> None:
        with self._lock:
            if len(self._allowed) > _CACHE_LIMIT:
                self._allowed.clear()
            self._allowed.add(key)

    def check_job(self, caller: Caller, uuid: str) -> None:
        """403 unless the caller may see job ``uuid`` (404 if there is none)."""
        if caller.is_person or uuid == caller.job_uuid:
            return
        key = (caller.reach, "job:" + uuid)
        if self._cached(key):
            return
        if caller.peer_id is not None:
            if not self._core.peer_reaches_job(caller.peer_id, uuid):
                raise HTTPException(403, f"job {uuid} is not one that cluster "
                                         f"{caller.peer_id} submitted here, nor below one")
        elif caller.job_uuid is not None and not self._core.job_within(uuid, caller.job_uuid):
            raise HTTPException(403, f"job {uuid} is not below job {caller.job_uuid}, "
                                         "whose token this is")
        self._remember(key)

    def check_collection(self, caller: Caller, pdh: str) -> None:
        """403 unless the caller may read collection ``pdh``: never, for a peer, if it
        is resident here (asked each time: a person may make it so at any moment)."""
        if caller.is_person:
            return
        if caller.peer_id is not None:
            self._refuse_resident(pdh, f"it may not leave cluster {self._core.cluster_id}")
        key = (caller.reach, pdh)
        if self._cached(key):
            return
        if caller.peer_id is not None:
            if not self._core.peer_may_read(caller.peer_id, pdh):
                raise HTTPException(403, f"collection {pdh} was neither sent to cluster "
                                         f"{caller.peer_id} nor given to or made by a job it "
                                         "submitted here")
        elif caller.job_uuid is not None and \
                not self._core.job_may_read(caller.job_uuid, pdh):
            raise HTTPException(403, f"collection {pdh} was not given to or made by job "
                                         f"{caller.job_uuid} (whose token this is) or its "
                                         "children")
        self._remember(key)

    def check_contents(self, caller: Caller, pdh: str) -> None:
        """After ``check_collection``, for reading the bytes of ``pdh``: a run a peer
        submitted (or a job below it) may not read a resident collection's contents,
        since its values travel to that peer; any other job may, and what it makes
        stays here with them (records.residency)."""
        if caller.is_person or caller.job_uuid is None:
            return
        found = self.resident(pdh)
        if found is None:
            return
        peer = self._core.below_peer_run(caller.job_uuid)
        if peer is not None:
            self._refuse_resident(pdh, f"job {caller.job_uuid} is part of a run cluster "
                                       f"{peer} submitted, whose values travel there: it "
                                       "may read the names and sizes of its files and "
                                       "the hashes of their blocks, not their contents")
        self._core.note_resident_read(caller.job_uuid, pdh)

    def check_logs(self, caller: Caller, job: JobRecord) -> None:
        """After ``check_job``, for reading job ``job``'s logs: refused to a peer (and
        to a run a peer submitted) when they are resident, or, while the job runs,
        when it read resident data."""
        if caller.is_person:
            return
        if job.log_pdh is not None:
            if caller.peer_id is not None:
                self._refuse_resident(job.log_pdh, f"the logs of job {job.uuid} may not "
                                                   f"leave cluster {self._core.cluster_id}")
            self.check_contents(caller, job.log_pdh)
            return
        outward = caller.peer_id or (caller.job_uuid is not None
                                     and self._core.below_peer_run(caller.job_uuid))
        # A job that joined a twin shows the twin's live log: the twin's reads decide.
        source = (self._core.job_resident_cause(job.reused_job_uuid or job.uuid)
                  if outward else None)
        if outward and source is None and self._core.keeps_everything \
                and not is_made_runner(job.spec.command, job.peer_id, job.parent_uuid):
            source = f"none, but cluster {self._core.cluster_id} keeps everything"
        if source is not None:
            raise HTTPException(403, f"the logs of job {job.uuid} are resident on cluster "
                                     f"{self._core.cluster_id}: it read resident collection "
                                     f"{source}, and they may not leave")

    def _refuse_resident(self, pdh: str, why: str) -> None:
        found = self._core.resident_here(pdh)
        if found is not None:
            raise HTTPException(403, f"collection {pdh} is resident on cluster "
                                     f"{self._core.cluster_id} ({found.reason}): {why}")

    def note_upload(self, caller: Caller, pdh: str) -> None:
        if caller.job_uuid is None or self._cached((caller.job_uuid, pdh)):
            return
        self._core.note_upload(caller.job_uuid, pdh)
        self._remember((caller.job_uuid, pdh))
