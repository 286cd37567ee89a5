"""Routes for data residency: a collection's residency record, making one resident (a
person's token), where a collection is among this cluster and its peers (the home
runner's placement question), and a peer's question of whether this cluster holds a
collection and keeps it. What is enforced, and where: server/access.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from cwl_crunch.federation.links import CorePeerLinks
from cwl_crunch.model.residency import (
    Whereabouts,
    residency_to_dict,
    whereabouts_to_dict,
)
from cwl_crunch.server.auth import PeerCaller, Person, Who, core_of
from cwl_crunch.server.collections_api import check_readable
from cwl_crunch.server.federation_api import peer_clients
from cwl_crunch.server.jobs_api import access_of

router = APIRouter(prefix="/api/v1", tags=["residency"])
PdhPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}\+[0-9]{1,20}$")]


class ResidentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=4096)


@router.get("/collections/{pdh}/residency", response_model=None)
def collection_residency(request: Request, pdh: PdhPath, who: Who) -> dict[str, Any]:
    """Whether the collection stays on this cluster: its record (``residency``: null
    when it may travel), and this cluster's id."""
    check_readable(request, who, pdh)
    core = core_of(request)
    return {"pdh": pdh, "cluster_id": core.cluster_id,
            "residency": residency_to_dict(core.residency(pdh))}


@router.post("/collections/{pdh}/resident", response_model=None)
def make_resident(request: Request, pdh: PdhPath, body: ResidentBody,
                  who: Person) -> dict[str, Any]:
    """Make a collection of this cluster resident (a person's token)."""
    core = core_of(request)
    made = core.make_resident(pdh, body.reason)
    access_of(request).forget_residency()
    return {"pdh": pdh, "cluster_id": core.cluster_id, "residency": residency_to_dict(made)}


@router.get("/collections/{pdh}/whereabouts", response_model=None)
def whereabouts(request: Request, pdh: PdhPath, who: Who) -> list[dict[str, Any]]:
    """Which of this cluster and its peers hold the collection, and whether it stays
    there: this cluster first, then each peer that answers (one that does not is left
    out)."""
    core = core_of(request)
    links = CorePeerLinks(core, peer_clients(request), caller_job=who.job_uuid,
                          caller_token=who.token_uuid)
    try:
        access_of(request).check_collection(who, pdh)
    except HTTPException:  # not this token's to know of here: asked of the peers only
        found = links.whereabouts(pdh, here=False)
    else:
        found = links.whereabouts(pdh)
    return [whereabouts_to_dict(place) for place in found]


@router.get("/federation/collections/{pdh}", response_model=None)
def held_for_peer(request: Request, pdh: PdhPath, who: PeerCaller) -> dict[str, Any]:
    """For a peer: whether this cluster holds the collection and keeps it resident
    (the reason too); a collection that is neither resident nor the peer's to read is
    not held, as far as it is told. Contents stay refused to a peer either way."""
    core = core_of(request)
    place: Whereabouts = core.whereabouts(pdh)
    if place.held and not place.resident and not core.peer_may_read(str(who.peer_id), pdh):
        place = Whereabouts(core.cluster_id, held=False)
    return whereabouts_to_dict(place)
