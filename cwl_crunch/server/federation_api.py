"""Routes between clusters.

On the receiving side (a peer's token): ``GET /federation/hello`` (who this is) and
``POST /federation/runs`` (start a workflow run for a person of the peer, below one of
its jobs). The run is built here from references (``model.runs.runner_spec``): a peer
cannot name a command. Collections this cluster lacks are pulled from the peer first.

On the sending side (a person's or a job's token): ``POST /peers/{id}/runs`` hands a
run to peer ``id`` with the peer token of this cluster's config, after recording that
its collections were sent there (so that the peer's token may pull them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from cwl_crunch.core import ClusterCore
from cwl_crunch.errors import ApiError, CrunchError
from cwl_crunch.federation.images import ImageFetch, fetch_image, plan_image_fetches
from cwl_crunch.federation.links import CorePeerLinks, PeerClients, handed_to
from cwl_crunch.federation.pull import PullPlan
from cwl_crunch.model import JOB_PAGE_LIMIT, CollectionMount, JobRecord, cluster_of
from cwl_crunch.model.codec import entry_to_dict, record_to_dict
from cwl_crunch.model.runs import PULL_FAILED, RunRequest, pinned_images, runner_spec
from cwl_crunch.server.auth import Caller, caller, core_of, peer, reader
from cwl_crunch.server.jobs_api import access_of
from cwl_crunch.server.schemas import PartBody, PeerRunBody, RunBody

router = APIRouter(prefix="/api/v1", tags=["federation"])
Who = Annotated[Caller, Depends(caller)]
Anyone = Annotated[Caller, Depends(reader)]
PeerCaller = Annotated[Caller, Depends(peer)]
PeerId = Annotated[str, Path(pattern=r"^[a-z0-9]{5}$")]
JOB_PATTERN = r"^[a-z0-9]{5}-job-[a-z0-9]{15}$"
JobUuid = Annotated[str, Path(pattern=JOB_PATTERN)]
PdhPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}\+[0-9]{1,20}$")]
DigestPath = Annotated[str, Path(pattern=r"^sha256:[0-9a-f]{64}$")]
MAX_WAIT = 30.0
"""Seconds a wait for a remote job may last, at most."""
WAIT_STEP = 0.05
"""Seconds between looks at what the peer's event stream showed (in memory)."""
MAX_REMOTE_DEPTH = 100
"""Ancestors on a peer walked up, at most, to find the home job a remote one is below."""
T = TypeVar("T")
VERSION = version("cwl-crunch")


@router.get("/federation/hello", response_model=None)
def hello(request: Request, who: Anyone) -> dict[str, Any]:
    """This cluster's id and version, and what it takes the caller's token for."""
    return {"cluster_id": core_of(request).cluster_id, "version": VERSION,
            "peer_id": who.peer_id}


@router.post("/federation/runs", response_model=None, status_code=201)
def run_for_peer(request: Request, body: PeerRunBody, who: PeerCaller) -> dict[str, Any]:
    """Start a run for a person of the calling peer. The peer is the token's: the parent
    job and the owner must be of that cluster (a request cannot say otherwise)."""
    sender = str(who.peer_id)
    for what, uuid in (("parent", body.parent_uuid), ("owner", body.owner)):
        if uuid is not None and cluster_of(uuid) != sender:
            raise HTTPException(403, f"{what} {uuid} is not of cluster {sender}, whose "
                                     "token this is")
    core = core_of(request)
    links = CorePeerLinks(core, peer_clients(request), caller_job=None, caller_token="")
    plans = _plans(core, links, sender, [body.run_pdh, *body.input_pdhs])
    pinned = {name: digest for name, digest in body.images.items()
              if digest and body.use_container}
    fetches = _at_peer(sender, lambda: plan_image_fetches(
        core, links.peer_client(sender), pinned))
    staying = _resident_inputs(core, body.run_pdh, body.input_pdhs)
    spec = runner_spec(body.run_pdh, [pdh for pdh in body.input_pdhs if pdh not in staying],
                       name=body.name, reuse=body.reuse, use_container=body.use_container,
                       images=pinned)
    hold = hold_reason(plans, fetches, sender)
    record = core.submit(spec, parent_uuid=body.parent_uuid, peer_id=sender,
                         remote_owner=body.owner,
                         hold=hold or ("noting its resident inputs" if staying else None))
    for pdh in staying:  # readable by the run (not staged: see _resident_inputs)
        core.note_upload(record.uuid, pdh)
    if staying and hold is None:
        core.release_held(record.uuid)
        record = core.get_job(record.uuid)
    if record.queue_reason is not None:
        threading.Thread(target=_pull_then_release,
                         args=(core, links, record.uuid, sender, plans, fetches),
                         name=f"pull-{record.uuid}", daemon=True).start()
    return record_to_dict(record)


def _plans(core: ClusterCore, links: CorePeerLinks, sender: str,
           pdhs: list[str]) -> list[PullPlan]:
    """What pulling from the sending peer what this cluster lacks of ``pdhs`` moves
    (the manifests are fetched and checked now; the blocks come after)."""
    missing = [pdh for pdh in dict.fromkeys(pdhs) if not core.has_collection(pdh)]
    unproven = [pdh for pdh in dict.fromkeys(pdhs)
                if pdh not in missing and _must_prove(core, sender, pdh)]
    if (missing or unproven) and sender not in core.config.peers:
        raise HTTPException(400, f"collection {(missing or unproven)[0]} is not on this "
                                 f"cluster for cluster {sender}, and {sender} is not among "
                                 f"its peers to pull it from (peers: "
                                 f"{', '.join(sorted(core.config.peers)) or 'none'})")
    plans = []
    for pdh in [*unproven, *missing]:  # a false claim fails first, naming it
        prove = pdh in unproven
        plan = _at_peer(sender, lambda pdh=pdh, prove=prove: links.plan(  # type: ignore[misc]
            sender, pdh, prove=prove))
        if plan is not None:
            plans.append(plan)
    return plans


def _must_prove(core: ClusterCore, sender: str, pdh: str) -> bool:
    """Whether ``pdh`` is held here but not the sender's to name (neither sent to it
    nor given to or made by a job it submitted): it must give every block, as if it
    were missing, or its run could read what this cluster never gave that peer. A
    resident collection may be named without proof: that is how a peer runs an analysis
    here, and nothing derived from it leaves unless a release rule says so."""
    return core.has_collection(pdh) and core.resident_here(pdh) is None \
        and not core.peer_may_read(sender, pdh)


def _resident_inputs(core: ClusterCore, run_pdh: str, input_pdhs: list[str]) -> set[str]:
    """Those of a peer's run's inputs that stay here. They are not mounts of its runner
    job (whose directory its workflow's expressions could read as files): the runner
    reaches them through the API, which gives it their names, sizes and checksums and
    its steps their contents (server/access.py). The run's own collection may not be
    resident (403)."""
    found = core.resident_here(run_pdh)
    if found is not None:
        raise HTTPException(403, f"collection {run_pdh}, the run's workflow and inputs, "
                                 f"is resident on cluster {core.cluster_id} "
                                 f"({found.reason})")
    return {pdh for pdh in input_pdhs if core.resident_here(pdh) is not None}


def hold_reason(plans: list[PullPlan], fetches: list[ImageFetch], sender: str) -> str | None:
    """What a job waits for while its collections and images come here: "fetching 12
    blocks, 340.0 MB, from sitea", "fetching 3 blocks, 0.1 MB, and image debian:12
    (sha256:238a44efa821…, 246.9 MB) from sitea" (None: nothing to fetch)."""
    images = " and ".join(fetch.describe() for fetch in fetches)
    if not plans:
        return f"fetching {images} from {sender}" if images else None
    blocks = sum(len(plan.missing) for plan in plans)
    size = sum(plan.missing_bytes for plan in plans)
    what = f"{blocks} block{'s' * (blocks != 1)}, {size / 2**20:.1f} MB,"
    return f"fetching {what}{' and ' + images if images else ''} from {sender}"


def _pull_then_release(core: ClusterCore, links: CorePeerLinks, uuid: str, sender: str,
                       plans: list[PullPlan], fetches: list[ImageFetch]) -> None:
    """Pull what a held job waits for (from its sender first), then let it run; fail
    it if that cannot be."""
    try:
        for plan in plans:
            links.complete(plan)
        for fetch in fetches:
            fetch_image(core, links.peer_client(sender), fetch)
    except CrunchError as error:
        core.release_held(uuid, failure=f"{PULL_FAILED}: {error}")
        return
    core.release_held(uuid)


def resume_held_pulls(core: ClusterCore, peers: PeerClients) -> None:
    """After a restart: take up the pulls of the jobs still held for them."""
    links = CorePeerLinks(core, peers, caller_job=None, caller_token="")
    for job in core.held_jobs():
        if job.peer_id is None:
            continue
        pdhs = [mount.pdh for mount in job.spec.mounts.values()
                if isinstance(mount, CollectionMount)]
        try:
            plans = [plan for pdh in pdhs if (plan := links.plan(
                job.peer_id, pdh, prove=_must_prove(core, job.peer_id, pdh)))]
            fetches = plan_image_fetches(core, links.peer_client(job.peer_id),
                                         pinned_images(job.spec))
        except CrunchError as error:
            core.release_held(job.uuid, failure=f"{PULL_FAILED}: {error}")
            continue
        _pull_then_release(core, links, job.uuid, job.peer_id, plans, fetches)


def peer_clients(request: Request) -> PeerClients:
    peers: PeerClients = request.app.state.peers
    return peers


def links_of(request: Request, who: Caller) -> CorePeerLinks:
    return CorePeerLinks(core_of(request), peer_clients(request), caller_job=who.job_uuid,
                         caller_token=who.token_uuid)


@router.get("/peers", response_model=None)
def list_peers(request: Request, who: Who) -> list[dict[str, str]]:
    """This cluster's peers (their ids and URLs; never their tokens)."""
    peers = core_of(request).config.peers
    return [{"cluster_id": name, "url": peers[name].url} for name in sorted(peers)]


@router.post("/peers/{peer_id}/runs", response_model=None, status_code=201)
def run_on_peer(request: Request, peer_id: PeerId, body: RunBody, who: Who) -> dict[str, Any]:
    """Hand a run to peer ``peer_id``: below the caller's job (a job's token), for the
    caller. Its collections must be readable by the caller; they are recorded as sent
    to that peer, which may then pull them."""
    _known(request, peer_id)
    access = access_of(request)
    naming = _naming_caller(request, who, peer_id) if body.made_by else who
    for pdh, job in body.made_by.items():
        if pdh not in body.input_pdhs:
            raise HTTPException(422, f"made_by names {pdh}, which is not an input")
        try:
            _check_made_by(request, peer_id, job, pdh, naming)
        except HTTPException as error:
            raise HTTPException(error.status_code, f"made_by names job {job} on {peer_id}: "
                                f"{error.detail}") from None
    core = core_of(request)
    for pdh in [body.run_pdh, *body.input_pdhs]:
        # One not held here must be held there (hand_run asks the peer).
        if pdh not in body.made_by and (pdh == body.run_pdh or core.has_collection(pdh)):
            access.check_collection(who, pdh)
    run = RunRequest(body.run_pdh, tuple(body.input_pdhs), body.name, body.reuse,
                     body.use_container, dict(body.made_by), dict(body.images))
    return record_to_dict(_at_peer(peer_id, lambda: links_of(request, who).hand_run(
        peer_id, run)))


@router.get("/peers/{peer_id}/jobs/{uuid}", response_model=None)
def remote_job(request: Request, peer_id: PeerId, uuid: JobUuid, who: Who) -> dict[str, Any]:
    """A job on peer ``peer_id`` that this cluster handed there, read with its token."""
    return record_to_dict(_reachable(request, peer_id, uuid, who))


@router.get("/peers/{peer_id}/jobs/{uuid}/wait", response_model=None)
async def wait_remote(request: Request, peer_id: PeerId, uuid: JobUuid, who: Who,
                      timeout: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 10.0,
                      ) -> dict[str, Any]:
    """The job on the peer once it has ended, or after ``timeout`` seconds: this cluster
    follows the peer's event stream (one per peer, shared by every waiter) and the wait
    holds no thread, so a hundred remote steps followed at once cost the peer one
    stream and one record read per wait."""
    _known(request, peer_id)
    client = peer_clients(request)
    # Before the record is read: no end slips by unseen.
    await run_in_threadpool(_at_peer, peer_id, lambda: client.get(peer_id).follow_events())
    record = await run_in_threadpool(_reachable, request, peer_id, uuid, who)
    deadline = time.monotonic() + timeout
    while not record.finished and time.monotonic() < deadline \
            and not await request.is_disconnected():
        seen = client.get(peer_id).seen_end(uuid)
        if isinstance(seen, JobRecord):
            record = seen
        elif seen:
            record = await run_in_threadpool(_reachable, request, peer_id, uuid, who)
        else:
            await asyncio.sleep(WAIT_STEP)
    return record_to_dict(record)


@router.post("/peers/{peer_id}/jobs/{uuid}/cancel", response_model=None)
def cancel_remote(request: Request, peer_id: PeerId, uuid: JobUuid,
                  who: Who) -> dict[str, Any]:
    _reachable(request, peer_id, uuid, who)
    return record_to_dict(_at_peer(peer_id, lambda: links_of(request, who).cancel(
        peer_id, uuid)))


@router.post("/peers/{peer_id}/jobs/{uuid}/pull", response_model=None)
def pull_results(request: Request, peer_id: PeerId, uuid: JobUuid,
                 who: Who) -> dict[str, Any]:
    """Pull a remote job's output and log collections here (only the blocks this
    cluster lacks); the caller's job may read them afterwards."""
    _reachable(request, peer_id, uuid, who)
    return record_to_dict(_at_peer(peer_id, lambda: links_of(request, who).pull_results(
        peer_id, uuid)))


def _naming_caller(request: Request, who: Caller, peer_id: str) -> Caller:
    """Whose reach decides which jobs on ``peer_id`` a handed run may name the outputs
    of (``made_by``): a remote step's own job (its run started it for itself, with the
    command handed_to reads, and only the runner holds its token) names what its run
    reaches there, the outputs of the run's earlier steps on that peer; any other
    caller, what it reaches itself."""
    if who.job_uuid is None:
        return who
    job = core_of(request).get_job(who.job_uuid)
    if handed_to(job) != peer_id or job.parent_uuid is None:
        return who
    return dataclasses.replace(who, job_uuid=job.parent_uuid)


@router.get("/federation/images/{digest}", response_model=None)
def offered_image(request: Request, digest: DigestPath, who: PeerCaller) -> dict[str, Any]:
    """An image this cluster offered the calling peer with a run: its size, and the
    repository digests a registry may give it by."""
    size, repo_digests = _offered(request, who, digest)
    return {"digest": digest, "size": size, "repo_digests": repo_digests}


@router.get("/federation/images/{digest}/archive", response_model=None)
def offered_image_archive(request: Request, digest: DigestPath,
                          who: PeerCaller) -> StreamingResponse:
    """The ``docker save`` archive of an image offered the calling peer, streamed."""
    _offered(request, who, digest)
    return StreamingResponse(core_of(request).export_image(digest),
                             media_type="application/x-tar")


def _offered(request: Request, who: Caller, digest: str) -> tuple[int, list[str]]:
    """Image ``digest``'s size and repository digests; 403 unless this cluster offered
    it to the calling peer; 404 if its engine no longer has it."""
    core = core_of(request)
    if not core.image_sent(str(who.peer_id), digest):
        raise HTTPException(403, f"image {digest} was not offered to cluster {who.peer_id} "
                                 "with a run")
    described = core.described_image(digest)
    if described is None:
        raise HTTPException(404, f"image {digest} is no longer on this cluster's engine")
    return described


def _known(request: Request, peer_id: str) -> None:
    peers = core_of(request).config.peers
    if peer_id not in peers:
        raise HTTPException(404, f"no peer {peer_id} in this cluster's config (peers: "
                                 f"{', '.join(sorted(peers)) or 'none'})")


def _reachable(request: Request, peer_id: str, uuid: str, who: Caller) -> JobRecord:
    """The remote job, if the caller reaches it: it is, or is below, a run handed there
    below one of the caller's jobs (a person reaches every one the peer shows this
    cluster: those handed there from here and what is below them)."""
    _known(request, peer_id)
    links = links_of(request, who)
    record = _at_peer(peer_id, lambda: links.remote_job(peer_id, uuid))
    if who.is_person:
        return record
    home, above = core_of(request).cluster_id, record
    for _ in range(MAX_REMOTE_DEPTH):
        parent = above.parent_uuid
        if parent is None or cluster_of(parent) not in (home, peer_id):
            break
        if cluster_of(parent) == home:
            access_of(request).check_job(who, parent)
            return record
        above = _at_peer(peer_id, lambda parent=parent: links.remote_job(  # type: ignore[misc]
            peer_id, parent))
    raise HTTPException(403, f"job {uuid} on {peer_id} is not below a job of this cluster "
                             "that this token reaches")


@router.get("/peers/{peer_id}/jobs", response_model=None)
def remote_children(request: Request, peer_id: PeerId, who: Who,
                    parent: Annotated[str, Query(pattern=JOB_PATTERN)],
                    limit: Annotated[int, Query(ge=1, le=JOB_PAGE_LIMIT)] = 100,
                    ) -> list[dict[str, Any]]:
    """The children on peer ``peer_id`` of job ``parent``: a job of this cluster handed
    there (its remote runner), or a job there that the caller reaches."""
    _known(request, peer_id)
    if cluster_of(parent) == core_of(request).cluster_id:
        access_of(request).check_job(who, parent)
    else:
        _reachable(request, peer_id, parent, who)
    found = _at_peer(peer_id, lambda: links_of(request, who).remote_children(peer_id, parent))
    return [record_to_dict(record) for record in found[:limit]]


@router.get("/peers/{peer_id}/jobs/{uuid}/logs/{name}", response_model=None)
def remote_log(request: Request, peer_id: PeerId, uuid: JobUuid, name: str, who: Who,
               offset: Annotated[int, Query(ge=0)] = 0) -> Any:
    """A log of a job on the peer, read there with this cluster's peer token."""
    _reachable(request, peer_id, uuid, who)
    client = peer_clients(request).get(peer_id)
    return _at_peer(peer_id, lambda: client.get_json(
        f"/jobs/{uuid}/logs/{quote(name)}?offset={offset}"))


@router.get("/peers/{peer_id}/collections/{pdh}/entries", response_model=None)
def remote_entries(request: Request, peer_id: PeerId, pdh: PdhPath, who: Who,
                   job: Annotated[str, Query(pattern=JOB_PATTERN)]) -> Any:
    """The files of a collection a reachable job on the peer made (``?job=``)."""
    _check_made_by(request, peer_id, job, pdh, who)
    client = peer_clients(request).get(peer_id)
    return _at_peer(peer_id, lambda: [entry_to_dict(entry)
                                      for entry in client.list_collection(pdh)])


@router.post("/peers/{peer_id}/collections/{pdh}/part", response_model=None)
def pull_part(request: Request, peer_id: PeerId, pdh: PdhPath, body: PartBody,
              who: Who) -> dict[str, Any]:
    """Pull home the part of a collection that a reachable job on the peer made (its
    output or log) at or below ``paths``: only the blocks this cluster lacks move. The
    part's PDH; the caller's job may read it afterwards."""
    _check_made_by(request, peer_id, body.job, pdh, who)
    part = _at_peer(peer_id, lambda: links_of(request, who).pull_part(
        peer_id, pdh, body.paths, body.job))
    return {"pdh": part}


def _check_made_by(request: Request, peer_id: str, job: str, pdh: str, who: Caller) -> None:
    """403 unless the caller reaches job ``job`` on the peer and ``pdh`` is its output
    or log collection."""
    record = _reachable(request, peer_id, job, who)
    if pdh not in (record.output_pdh, record.log_pdh):
        raise HTTPException(403, f"collection {pdh} is not what job {job} made")


def _at_peer(peer_id: str, call: Callable[[], T]) -> T:
    """``call``'s answer; a peer that does not answer or refuses is the peer's word."""
    try:
        return call()
    except ApiError as error:
        raise HTTPException(error.status or 502, f"peer {peer_id}: {error}") from None
