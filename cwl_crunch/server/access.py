"""What a job's token may reach: its own job and the jobs below it, the collections
those jobs were given or made, and what it stored itself. A person's token reaches all.

Positive answers are cached: a job's subtree only grows and collections never change,
so what a token could see once it can always see.
"""

from __future__ import annotations

import threading
import time
from typing import cast

from fastapi import HTTPException
from sqlalchemy import Connection, Table, insert, select

from cwl_crunch.core import ClusterCore
from cwl_crunch.errors import JobNotFound
from cwl_crunch.records.models import Job, Upload
from cwl_crunch.server.auth import Caller

JOBS = cast(Table, Job.__table__)
UPLOADS = cast(Table, Upload.__table__)
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
        if caller.job_uuid is None or uuid == caller.job_uuid:
            return
        key = (caller.job_uuid, "job:" + uuid)
        if self._cached(key):
            return
        with self._core.database.reading() as connection:
            if not _within(connection, uuid, caller.job_uuid):
                raise HTTPException(403, f"job {uuid} is not below job {caller.job_uuid}, "
                                         "whose token this is")
        self._remember(key)

    def check_collection(self, caller: Caller, pdh: str) -> None:
        """403 unless the caller may read collection ``pdh``."""
        if caller.job_uuid is None:
            return
        key = (caller.job_uuid, pdh)
        if self._cached(key):
            return
        with self._core.database.reading() as connection:
            if not _may_read(connection, caller.job_uuid, pdh):
                raise HTTPException(403, f"collection {pdh} was not given to or made by job "
                                         f"{caller.job_uuid} (whose token this is) or its "
                                         "children")
        self._remember(key)

    def note_upload(self, caller: Caller, pdh: str) -> None:
        if caller.job_uuid is None or self._cached((caller.job_uuid, pdh)):
            return
        with self._core.database.writing() as connection:
            connection.execute(insert(UPLOADS).values(job_uuid=caller.job_uuid, pdh=pdh,
                                                      created_at=time.time()))
        self._remember((caller.job_uuid, pdh))


def _within(connection: Connection, uuid: str, ancestor: str) -> bool:
    """Whether ``ancestor`` is ``uuid`` or above it in the process tree."""
    current: str | None = uuid
    seen = 0
    while current is not None and seen < 10_000:
        if current == ancestor:
            return True
        parent = connection.execute(select(JOBS.c.parent_uuid).where(JOBS.c.uuid == current))
        row = parent.first()
        if row is None:
            if current == uuid:
                raise JobNotFound(f"no job {uuid}")
            return False
        current, seen = row.parent_uuid, seen + 1
    return False


def _may_read(connection: Connection, job_uuid: str, pdh: str) -> bool:
    mounts = connection.execute(select(JOBS.c.mounts).where(JOBS.c.uuid == job_uuid)).scalar()
    if any(isinstance(m, dict) and m.get("pdh") == pdh for m in (mounts or {}).values()):
        return True
    uploaded = connection.execute(select(UPLOADS.c.id).where(
        UPLOADS.c.job_uuid == job_uuid, UPLOADS.c.pdh == pdh).limit(1)).first()
    if uploaded is not None:
        return True
    for column in (JOBS.c.output_pdh, JOBS.c.log_pdh):  # apart: each uses its index
        makers = connection.execute(
            select(JOBS.c.uuid).where(column == pdh).limit(1000)).scalars().all()
        if any(_within(connection, maker, job_uuid) for maker in makers):
            return True
    return False
