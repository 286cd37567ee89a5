"""Routes for a job's logs and for downloading one file of a collection.

A job's logs (``worker.txt``, ``stdout.txt``, ``stderr.txt``) are files in the worker's
host directory ``<work>/<job uuid>/logs/`` while the job runs, and a collection
(``log_pdh``) once it has finished: ``GET /jobs/{uuid}/logs/{name}?offset=N`` reads
whichever holds them, from byte ``offset`` on, so a client follows a running job's log by
asking again from the offset it was given. Both hold the same bytes, so offsets carry
over when the job finishes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from cwl_crunch.core import ClusterCore
from cwl_crunch.errors import PathNotFound
from cwl_crunch.model import JobRecord
from cwl_crunch.server.auth import Caller, core_of, reader
from cwl_crunch.server.collections_api import check_readable
from cwl_crunch.server.jobs_api import access_of
from cwl_crunch.store.locators import parse_locator

router = APIRouter(prefix="/api/v1", tags=["logs"])
Who = Annotated[Caller, Depends(reader)]
LOG_NAMES = ("worker.txt", "stdout.txt", "stderr.txt")
MAX_READ = 1 << 20
"""Bytes of log text one request returns at most: ask again from the new offset."""
MAX_OFFSET = 1 << 62
_SLACK = 3
"""Bytes read beyond the limit: enough to finish a UTF-8 character cut by it."""


@dataclasses.dataclass(frozen=True)
class LogChunk:
    data: bytes
    source: str
    """"live" (the worker's file), "collection" (the log collection) or "none" (no log)."""
    size: int | None
    """Bytes the log holds now (None: no log yet)."""


@router.get("/jobs/{uuid}/logs/{name}")
def job_log(request: Request, uuid: str, name: str, who: Who,
            offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
            limit: Annotated[int, Query(ge=1, le=MAX_READ)] = MAX_READ) -> dict[str, Any]:
    """Text of one log from byte ``offset`` on. ``offset`` in the answer is where to ask
    next; ``final`` means the job has finished and the text reached the end of the log."""
    if name not in LOG_NAMES:
        raise HTTPException(404, f"no log {name!r}: a job's logs are {', '.join(LOG_NAMES)}")
    access_of(request).check_job(who, uuid)
    core = core_of(request)
    job = core.get_job(uuid)
    access_of(request).check_logs(who, job)
    record, chunk = _read_log(core, job, name, offset, limit + _SLACK)
    if record.log_pdh != job.log_pdh:  # it ended meanwhile: its log collection decides
        access_of(request).check_logs(who, record)
    data = _up_to(chunk.data, limit)
    at_end = chunk.size is None or offset + len(data) >= chunk.size
    final = at_end and chunk.source != "live" and record.finished
    if not final:
        data = _complete_characters(data)  # the rest of a character comes next time
    return {
        "name": name, "job_uuid": uuid, "state": record.state,
        "text": data.decode("utf-8", errors="replace"), "offset": offset + len(data),
        "size": chunk.size, "source": chunk.source, "final": final,
    }


def _read_log(core: ClusterCore, record: JobRecord, name: str, offset: int,
              limit: int) -> tuple[JobRecord, LogChunk]:
    """The chunk, and the record as it was when the chunk was read."""
    if record.log_pdh is None and not record.finished:
        live = _read_live(core.config.work, record, name, offset, limit)
        if live is not None:
            return record, live
        # Not started yet, or the worker just moved the logs into the store.
        record = core.get_job(record.uuid)
    if record.log_pdh is not None:
        return record, _read_stored(core, record.log_pdh, name, offset, limit)
    return record, LogChunk(b"", "none", None)


def _read_live(work: Path, record: JobRecord, name: str, offset: int,
               limit: int) -> LogChunk | None:
    """From the worker's host dir on this machine; None if the file is not there. A job
    that joined identical running work shows the log of the job doing that work."""
    runner = record.reused_job_uuid or record.uuid
    if "/" in runner or runner.startswith("."):
        return None
    host_dir = work / runner
    path = host_dir / "logs" / name
    # A redirected stream is written in the job dir; the worker links it into the log
    # collection when the job ends.
    redirected = {"stdout.txt": record.spec.stdout, "stderr.txt": record.spec.stderr}
    if redirected.get(name):
        path = host_dir / "job" / str(redirected[name])
    try:
        with _open_inside(path, host_dir) as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(offset)
            return LogChunk(file.read(min(limit, max(size - offset, 0))), "live", size)
    except (FileNotFoundError, NotADirectoryError):
        return None


@contextlib.contextmanager
def _open_inside(path: Path, root: Path) -> Iterator[Any]:
    """Open a regular file that is really below ``root``: the job's own processes can
    write in its host dir, so a symlink there must not lead the server elsewhere."""
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise FileNotFoundError(path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        opened = Path(f"/proc/self/fd/{fd}")
        if not stat.S_ISREG(os.fstat(fd).st_mode) or (
                opened.exists() and not Path(os.readlink(opened)).is_relative_to(real_root)):
            raise FileNotFoundError(path)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as file:
        yield file


def _read_stored(core: ClusterCore, pdh: str, name: str, offset: int,
                 limit: int) -> LogChunk:
    """From the log collection: only the blocks that hold the bytes asked for."""
    found = core.manifest(pdh).file(name)
    if found is None:
        return LogChunk(b"", "collection", 0)
    data, start = bytearray(), 0
    for locator in found.locators:
        length = parse_locator(locator)[1]
        end = start + length
        if end > offset and len(data) < limit:
            block = core.read_block(locator, pdh)
            data += block[max(offset - start, 0):]
        start = end
    return LogChunk(bytes(data[:limit]), "collection", found.size)


def _up_to(data: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes, and the rest of a character cut there if ``data`` has
    it (so that even a tiny limit makes progress)."""
    end = min(limit, len(data))
    while end < len(data) and end < limit + _SLACK and data[end] & 0xC0 == 0x80:
        end += 1
    return data[:end]


def _complete_characters(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut off at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data  # ASCII: nothing is cut
        if byte >= 0xC0:  # the lead byte of the last character
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= needed else data[:-back]
    return data  # not UTF-8 where it ends: decoding replaces it anyway


@router.get("/collections/{pdh}/files/{path:path}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download(request: Request, pdh: str, path: str, who: Who) -> StreamingResponse:
    """One file of a collection, streamed block by block (each verified), as a download."""
    check_readable(request, who, pdh)
    access_of(request).check_contents(who, pdh)
    core = core_of(request)
    entry = core.entry(pdh, path)
    if entry.kind != "file":
        raise PathNotFound(f"{path!r} of collection {pdh} is a directory, not a file")
    chunks = core.read_file(pdh, entry.path)
    filename = entry.path.rsplit("/", 1)[-1]
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers={
        "Content-Length": str(entry.size),
        "Content-Disposition":
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff",
        # Job output is not ours: never run it as a page of this origin.
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, max-age=3600, immutable",
    })
