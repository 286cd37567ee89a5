"""Routes for jobs: submit, read, list, cancel; and the worker's side of a job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from cwl_crunch.model import (
    ALL_STATES,
    JOB_PAGE_LIMIT,
    JobFilter,
    JobRecord,
    WorkerInfo,
    cluster_of,
)
from cwl_crunch.model.codec import (
    claim_to_dict,
    outcome_from_dict,
    record_to_dict,
    spec_from_dict,
)
from cwl_crunch.server.access import Access
from cwl_crunch.server.auth import Caller, caller, core_of, person, reader
from cwl_crunch.server.schemas import (
    JobSpecBody,
    OutcomeBody,
    OwnJobBody,
    ProcessBody,
    WorkerBody,
)

router = APIRouter(prefix="/api/v1", tags=["jobs"])
Who = Annotated[Caller, Depends(caller)]
Person = Annotated[Caller, Depends(person)]
Reader = Annotated[Caller, Depends(reader)]
MAX_LIST = JOB_PAGE_LIMIT
NO_NUL = r"^[^\x00]*$"
"""PostgreSQL refuses a NUL in any text it is asked to compare (a 500): a 422 instead."""
JobUuid = Annotated[str, Path(pattern=NO_NUL)]
Plain = Annotated[str, Field(pattern=NO_NUL)]
JOB_UUID = r"^[a-z0-9]{5}-job-[a-z0-9]{15}$"
"""What ``records.ids.new_uuid`` makes of a job: a parent of another form is a 422 (a
well-formed one that matches nothing lists nothing, as Arvados answers a filter)."""
State = Annotated[str, Field(pattern=f"^({'|'.join(sorted(ALL_STATES))})$")]


def access_of(request: Request) -> Access:
    access: Access = request.app.state.access
    return access


def _check_mounts(request: Request, who: Caller, body: JobSpecBody) -> None:
    """A job's token may mount only what it can read itself."""
    for mount in body.mounts.values():
        if mount.kind == "collection":
            access_of(request).check_collection(who, mount.pdh)


@router.post("/jobs", response_model=None, status_code=201)
def submit(request: Request, body: JobSpecBody, who: Who,
           parent_uuid: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
           ) -> dict[str, Any]:
    """Create a job (or reuse or join identical work). A job's token makes it the parent;
    a person may name a job of another cluster as ``parent_uuid``."""
    _check_mounts(request, who, body)
    spec = spec_from_dict(body.model_dump())
    core = core_of(request)
    return record_to_dict(core.submit(spec, parent_uuid=core.parent_for(who.job_uuid,
                                                                        parent_uuid)))


@router.post("/jobs/own", response_model=None, status_code=201)
def start_own_job(request: Request, body: OwnJobBody, who: Who) -> dict[str, Any]:
    """Record work the caller does itself (a workflow runner) as a Running job. A job's
    own work is done by that job's worker: the record names it, not the process the
    request names (in the job's PID namespace, its pid means nothing out here)."""
    _check_mounts(request, who, body.spec)
    spec = spec_from_dict(body.spec.model_dump())
    worker = WorkerInfo(**body.worker.model_dump())
    if who.job_uuid is not None:
        worker = core_of(request).job_worker_of(who.job_uuid) or worker
    return claim_to_dict(core_of(request).start_own_job(
        spec, worker, parent_uuid=who.job_uuid))


@router.get("/caller", response_model=None)
def caller_job(who: Who) -> dict[str, Any]:
    """The job whose token this is (null for a person's token)."""
    return {"job_uuid": who.job_uuid, "token_uuid": who.token_uuid}


@router.get("/jobs/{uuid}", response_model=None)
def get_job(request: Request, uuid: JobUuid, who: Reader) -> dict[str, Any]:
    access_of(request).check_job(who, uuid)
    return record_to_dict(core_of(request).get_job(uuid))


IMPURE_LISTING = "GET /api/v1/jobs (list jobs)"
"""What a job token's listing of jobs records on its job (see docs/internals.md,
"Pure and impure jobs")."""


@router.get("/jobs", response_model=None)
def list_jobs(
    request: Request, who: Reader,
    uuid: Annotated[list[Plain] | None, Query(max_length=MAX_LIST)] = None,
    parent: Annotated[str | None, Query(pattern=JOB_UUID)] = None,
    top_level: bool = False,
    state: Annotated[list[State] | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
    after: Annotated[str | None, Query(pattern=NO_NUL)] = None,
) -> JSONResponse:
    """Jobs by UUID (in the order asked), or by filter (newest first, ties by UUID
    descending). For the next page, ask again with ``after`` = the last UUID listed."""
    core, access = core_of(request), access_of(request)
    if uuid:
        for one in uuid:
            access.check_job(who, one)
        return _records(core.get_jobs(uuid))
    if who.peer_id is not None:
        return _peer_children(request, who, parent, top_level, limit)
    if who.job_uuid is not None:
        if top_level or parent is None:
            raise HTTPException(403, "a job's token lists only the children of its jobs: "
                                     "give ?parent=")
        access.check_job(who, parent)
        if after is not None:  # its creation time is where the page starts
            access.check_job(who, after)
        # What a listing answers depends on when it is asked, not on the job's inputs.
        core.mark_impure(who.job_uuid, IMPURE_LISTING)
    job_filter = JobFilter(parent_uuid=parent, top_level=top_level,
                           states=frozenset(state) if state else None, limit=limit,
                           after=after)
    return _records(core.list_jobs(job_filter))


def _peer_children(request: Request, who: Caller, parent: str | None, top_level: bool,
                   limit: int) -> JSONResponse:
    """What a peer's token may list: the children of a job it reaches here, or those of
    one of its own cluster's jobs that it submitted here (its remote runs)."""
    if parent is None or top_level:
        raise HTTPException(403, "a peer's token lists only the children of a job: give "
                                 "?parent= (or ?uuid=)")
    core, access = core_of(request), access_of(request)
    if cluster_of(parent) != who.peer_id:
        access.check_job(who, parent)
        return _records(core.list_jobs(JobFilter(parent_uuid=parent, limit=limit)))
    found = core.list_jobs(JobFilter(parent_uuid=parent, limit=limit))
    return _records([job for job in found if job.peer_id == who.peer_id])


def _records(records: list[JobRecord]) -> JSONResponse:
    """Records as JSON, without FastAPI's jsonable_encoder: they are JSON types already,
    and it took 7 of the 9 s a page of 10,000 took (measured on a loaded 2-core host)."""
    return JSONResponse([record_to_dict(record) for record in records])


@router.post("/jobs/{uuid}/cancel", response_model=None)
def cancel(request: Request, uuid: JobUuid, who: Reader) -> dict[str, Any]:
    """Cancel a job and its unfinished descendants."""
    access_of(request).check_job(who, uuid)
    return record_to_dict(core_of(request).cancel(uuid))


# The worker's side ------------------------------------------------------------------------
@router.post("/jobs/{uuid}/claim", response_model=None,
             responses={204: {"description": "not queued: someone else has it"}})
def claim(request: Request, uuid: JobUuid, body: WorkerBody, who: Person) -> Any:
    """Mark a queued job Running for a worker (a person's token: a dispatcher's)."""
    got = core_of(request).claim_job(uuid, WorkerInfo(**body.model_dump()))
    return Response(status_code=204) if got is None else claim_to_dict(got)


@router.post("/jobs/{uuid}/process", response_model=None)
def set_process(request: Request, uuid: JobUuid, body: ProcessBody, who: Who) -> dict[str, Any]:
    """Record the command's process group (the job's own token, or a person's)."""
    _own_or_person(who, uuid)
    core = core_of(request)
    core.get_job(uuid)  # a 404 for no such job (the update alone would change nothing)
    requested = core.set_job_process(uuid, body.pgid, body.pgid_start)
    return {"cancel_requested": requested}


@router.post("/jobs/{uuid}/finish", response_model=None)
def finish(request: Request, uuid: JobUuid, body: OutcomeBody, who: Who) -> dict[str, Any]:
    """Record the end of a job (the job's own token, or a person's)."""
    _own_or_person(who, uuid)
    # A job's token names as its results only what it may read: a job's output is
    # readable by its ancestors, so any other PDH would hand them a collection.
    for pdh in (body.output_pdh, body.log_pdh):
        if pdh is not None:
            access_of(request).check_collection(who, pdh)
    outcome = outcome_from_dict(body.model_dump())
    return record_to_dict(core_of(request).finish_job(uuid, outcome))


def _own_or_person(who: Caller, uuid: str) -> None:
    if who.job_uuid is not None and who.job_uuid != uuid:
        raise HTTPException(403, f"job {who.job_uuid}'s token cannot report on job {uuid}")

