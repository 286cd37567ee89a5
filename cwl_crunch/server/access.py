"""What a job's token may reach: its own job and the jobs below it, the collections
those jobs were given or made, and what it stored itself. A person's token reaches all.

Positive answers are cached: a job's subtree only grows and collections never change,
so what a token could see once it can always see.
"""

from __future__ import annotations

import threading

from fastapi import HTTPException

from cwl_crunch.core import ClusterCore
from cwl_crunch.server.auth import Caller

_CACHE_LIMIT = 100_000


class Access:
    def __init__(self, core: ClusterCore) -> None:
        self._core = core
        self._allowed: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

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
        """403 unless the caller may read collection ``pdh``."""
        if caller.is_person:
            return
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

    def note_upload(self, caller: Caller, pdh: str) -> None:
        if caller.job_uuid is None or self._cached((caller.job_uuid, pdh)):
            return
        self._core.note_upload(caller.job_uuid, pdh)
        self._remember((caller.job_uuid, pdh))
