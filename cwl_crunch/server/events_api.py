"""Job state changes: a long poll (``GET /events``) and a server-sent event stream
(``GET /events/stream``) that resumes after ``Last-Event-ID`` without missing or
repeating an event: event ids come from the records database and only grow."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cwl_crunch.core import ClusterCore
from cwl_crunch.errors import CrunchError
from cwl_crunch.model import FINAL_STATES, JobEvent
from cwl_crunch.model.codec import event_to_dict, record_to_dict
from cwl_crunch.server.auth import Caller, core_of, reader
from cwl_crunch.server.block_proofs import BlockProofs
from cwl_crunch.server.jobs_api import access_of
from cwl_crunch.store import Manifest
from cwl_crunch.store.locators import parse_locator

router = APIRouter(prefix="/api/v1", tags=["events"])
Who = Annotated[Caller, Depends(reader)]
MAX_WAIT = 30.0
HEARTBEAT = 15.0
INLINE_OUTPUT_BYTES = 4096
"""An ended job's output travels in its final stream event when its manifest and blocks
are this small together. A workflow runner reads every step's output (cwltool checksums
it): for a 500-step scatter of small outputs that saved two requests per step."""
TOKEN_RECHECK = 15.0
"""Seconds between checks that a stream's token is still valid (a job's token is revoked
when the job ends: its stream then ends too)."""
MAX_ID = (1 << 63) - 1
"""The largest ``after`` taken: no database compares with a larger number (a 500)."""


def _revoked(core: ClusterCore, who: Caller) -> bool:
    return core.token_revoked(who.token_uuid)


def _visible(request: Request, who: Caller, events: list[JobEvent]) -> list[JobEvent]:
    """A job's token sees the events of its own jobs only; a peer's, those of the jobs
    it reaches."""
    if who.is_person:
        return events
    access, shown = access_of(request), []
    for event in events:
        try:
            access.check_job(who, event.job_uuid)
        except HTTPException:
            continue
        shown.append(event)
    return shown


def _after(after: int | None, last_event_id: str | None) -> int:
    if after is not None:
        return after
    if last_event_id is None or last_event_id == "":
        return 0
    try:
        value = int(last_event_id)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_ID:
        raise HTTPException(400, f"Last-Event-ID must be an event id (a number from 0 to "
                                 f"{MAX_ID}), not {last_event_id[:100]!r}")
    return value


def _final_records(core: ClusterCore, events: list[JobEvent],
                   sign: Callable[[bytes], bytes]) -> dict[int, dict[str, Any]]:
    """What the final events carry, by event id: the job's record (a waiter needs no
    second request) and, when it is small, its output (see INLINE_OUTPUT_BYTES), its
    manifest signed by ``sign`` (for the stream's token, as a manifest read would be)."""
    final = {event.job_uuid: event.id for event in events if event.state in FINAL_STATES}
    if not final:
        return {}
    carried: dict[int, dict[str, Any]] = {}
    records = core.get_jobs(sorted(final))
    # A resident output is never carried: whoever wants it asks, and is told (or, a job
    # of this cluster's own, is recorded as having read it: server/access.py).
    staying = {pdh for pdh, found in core.residencies(
        [record.output_pdh for record in records if record.output_pdh]).items()
        if found.resident}
    for record in records:
        extra: dict[str, Any] = {"record": record_to_dict(record)}
        output = (_small_output(core, record.output_pdh, sign)
                  if record.output_pdh and record.output_pdh not in staying else None)
        if output is not None:
            extra["output"] = output
        carried[final[record.uuid]] = extra
    return carried


def _small_output(core: ClusterCore, pdh: str,
                  sign: Callable[[bytes], bytes]) -> dict[str, Any] | None:
    """The output collection's manifest and blocks (base64), if they are small together;
    None otherwise, or when a block does not check out (a reader is then told by the
    block's own request). Whoever may see a job's events may read its output."""
    try:
        text = core.manifest_text(pdh)
        locators = sorted({locator for file in Manifest.from_text(text).files()
                           for locator in file.locators})
        if len(text) + sum(parse_locator(loc)[1] for loc in locators) > INLINE_OUTPUT_BYTES:
            return None
        blocks = {loc: base64.b64encode(core.read_block(loc, pdh)).decode()
                  for loc in locators}
    except CrunchError:
        return None
    return {"manifest": sign(text).decode(), "blocks": blocks}


@router.get("/events", response_model=None)
def events(request: Request, who: Who,
           after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
           timeout: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0) -> dict[str, Any]:
    """Events with id > ``after``, waiting up to ``timeout`` seconds for the first.
    ``last`` is the id to ask after next time (events a job's token may not see are
    skipped, not repeated)."""
    core = core_of(request)
    found = core.events(core.comparable_event_id(after), timeout)
    last = found[-1].id if found else after
    return {"events": [event_to_dict(e) for e in _visible(request, who, found)], "last": last}


@router.get("/events/last", response_model=None)
def last_event(request: Request, who: Who) -> dict[str, int]:
    """The newest event id, to follow from now on."""
    return {"last": core_of(request).last_event_id()}


@router.get("/events/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request, who: Who,
                 after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
                 last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Server-sent events, one per job state change (``event: job``, ``id``: the event
    id). Reconnect with ``Last-Event-ID`` (or ``?after=``) to resume. The event of a
    job's end carries its ``record`` and, when small, its ``output`` (``manifest`` text
    and base64 ``blocks`` by locator). The stream of a job's token ends soon after the
    job does (its token is then revoked)."""
    core = core_of(request)
    start = core.comparable_event_id(_after(after, last_event_id))
    proofs: BlockProofs = request.app.state.proofs

    def sign(text: bytes) -> bytes:
        return proofs.sign_manifest(who, text)

    async def lines() -> AsyncIterator[str]:
        # Polls with no wait, sleeping between polls in the event loop: a stream must
        # not hold one of the few worker threads for as long as it is open.
        position, quiet_since = start, time.monotonic()
        checked_at = quiet_since
        yield ": cwl-crunch job events\n\n"
        revoked = False
        while not revoked and not await request.is_disconnected():
            if time.monotonic() - checked_at > TOKEN_RECHECK:
                # Before reading: the events up to the revocation (the job's end, in the
                # same transaction) are still sent.
                revoked = await run_in_threadpool(_revoked, core, who)
                checked_at = time.monotonic()
            found = await run_in_threadpool(core.events, position, 0)
            if not found:
                if time.monotonic() - quiet_since > HEARTBEAT:
                    yield ": still here\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(core.config.poll_interval)
                continue
            shown = _visible(request, who, found)
            ended = await run_in_threadpool(_final_records, core, shown, sign)
            for event in shown:
                data = event_to_dict(event)
                data.update(ended.get(event.id, {}))
                yield f"id: {event.id}\nevent: job\ndata: {json.dumps(data)}\n\n"
            position, quiet_since = found[-1].id, time.monotonic()

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
