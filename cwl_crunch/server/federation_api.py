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

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

import cwl_crunch
from cwl_crunch.config import Peer
from cwl_crunch.core import ClusterCore, EmbeddedClient
from cwl_crunch.errors import ApiError
from cwl_crunch.federation import peer_client, pull_collection
from cwl_crunch.model import cluster_of
from cwl_crunch.model.codec import record_from_dict, record_to_dict
from cwl_crunch.model.runs import runner_spec
from cwl_crunch.server.auth import Caller, caller, core_of, peer, reader
from cwl_crunch.server.jobs_api import access_of
from cwl_crunch.server.schemas import PeerRunBody, RunBody

router = APIRouter(prefix="/api/v1", tags=["federation"])
Who = Annotated[Caller, Depends(caller)]
Anyone = Annotated[Caller, Depends(reader)]
PeerCaller = Annotated[Caller, Depends(peer)]
PeerId = Annotated[str, Path(pattern=r"^[a-z0-9]{5}$")]


@router.get("/federation/hello", response_model=None)
def hello(request: Request, who: Anyone) -> dict[str, Any]:
    """This cluster's id and version, and what it takes the caller's token for."""
    return {"cluster_id": core_of(request).cluster_id, "version": cwl_crunch.__version__,
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
    _pull_missing(core, sender, [body.run_pdh, *body.input_pdhs])
    spec = runner_spec(body.run_pdh, body.input_pdhs, name=body.name, reuse=body.reuse,
                       use_container=body.use_container)
    return record_to_dict(core.submit(spec, parent_uuid=body.parent_uuid, peer_id=sender,
                                      remote_owner=body.owner))


def _pull_missing(core: ClusterCore, sender: str, pdhs: list[str]) -> None:
    """Pull from the sending peer what this cluster lacks of ``pdhs``."""
    missing = [pdh for pdh in dict.fromkeys(pdhs) if not core.has_collection(pdh)]
    if not missing:
        return
    known = core.config.peers.get(sender)
    if known is None:
        raise HTTPException(400, f"collection {missing[0]} is not on this cluster, and "
                                 f"cluster {sender} is not among its peers to pull it from "
                                 f"(peers: {', '.join(sorted(core.config.peers)) or 'none'})")
    source = _reach(core, known)
    try:
        target = EmbeddedClient.over(core)
        for pdh in missing:
            pull_collection(pdh, [(sender, source)], target)
    finally:
        source.close()


@router.post("/peers/{peer_id}/runs", response_model=None, status_code=201)
def run_on_peer(request: Request, peer_id: PeerId, body: RunBody, who: Who) -> dict[str, Any]:
    """Hand a run to peer ``peer_id``: below the caller's job (a job's token), for the
    caller. Its collections must be readable by the caller; they are recorded as sent
    to that peer, which may then pull them."""
    core, access = core_of(request), access_of(request)
    known = core.config.peers.get(peer_id)
    if known is None:
        raise HTTPException(404, f"no peer {peer_id} in this cluster's config (peers: "
                                 f"{', '.join(sorted(core.config.peers)) or 'none'})")
    pdhs = list(dict.fromkeys([body.run_pdh, *body.input_pdhs]))
    for pdh in pdhs:
        access.check_collection(who, pdh)
        core.entry(pdh)  # a 404 here, rather than the peer's failed pull
    for pdh in pdhs:
        core.note_sent(peer_id, pdh)
    sent = PeerRunBody(**body.model_dump(), parent_uuid=who.job_uuid,
                       owner=who.token_uuid)
    remote = _reach(core, known)
    try:
        record = remote.post_json("/federation/runs", sent.model_dump())
    except ApiError as error:
        raise HTTPException(error.status or 502,
                            f"peer {peer_id} ({known.url}): {error}") from None
    finally:
        remote.close()
    return record_to_dict(record_from_dict(record))


def _reach(core: ClusterCore, known: Peer) -> Any:
    try:
        return peer_client(core.config, known)
    except ApiError as error:
        raise HTTPException(502, f"peer {known.cluster_id} ({known.url}) does not answer: "
                                 f"{error}") from None
