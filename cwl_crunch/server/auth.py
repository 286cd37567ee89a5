"""Who is calling: the bearer token of every request, resolved to a person, a job or a
peer cluster. Each route says which of them it serves; a peer's token is refused
everywhere but where federation needs it (``reader`` and ``peer`` routes)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from cwl_crunch.core import ClusterCore
from cwl_crunch.errors import TokenError


@dataclasses.dataclass(frozen=True)
class Caller:
    token_uuid: str
    job_uuid: str | None
    """The job whose token this is; None for a person's or a peer's token."""
    peer_id: str | None = None
    """The peer cluster this token was issued to; None for a person's or a job's."""

    @property
    def is_person(self) -> bool:
        return self.job_uuid is None and self.peer_id is None

    @property
    def reach(self) -> str:
        """Whose reach decides what this caller may see (a cache key): its job or its
        peer cluster."""
        return self.job_uuid or f"peer:{self.peer_id}"


PEER_REACH = ("a peer's token may only submit federated runs, follow and cancel them, "
              "and read what they were given or made")


def core_of(request: Request) -> ClusterCore:
    core: ClusterCore = request.app.state.core
    return core


def reader(request: Request, authorization: str | None = Header(default=None)) -> Caller:
    """FastAPI dependency: 401 unless the request carries a valid, unrevoked token; a
    person's, a job's or a peer's (routes that read, follow or cancel)."""
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing API token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    core = core_of(request)
    try:
        token_uuid, job_uuid, peer_id = core.resolve_token(
            authorization.removeprefix("Bearer ").strip())
    except TokenError as error:
        raise HTTPException(401, str(error), headers={"WWW-Authenticate": "Bearer"}) from None
    return Caller(token_uuid, job_uuid, peer_id)


def caller(request: Request, authorization: str | None = Header(default=None)) -> Caller:
    """FastAPI dependency: a person's or a job's token (a peer's is refused: 403)."""
    found = reader(request, authorization)
    if found.peer_id is not None:
        raise HTTPException(403, f"{PEER_REACH}: {request.method} {request.url.path} is "
                                 f"none of those (token issued to cluster {found.peer_id})")
    return found


def person(request: Request, authorization: str | None = Header(default=None)) -> Caller:
    """FastAPI dependency: a person's token (a job's token may not do this)."""
    found = caller(request, authorization)
    if not found.is_person:
        raise HTTPException(403, "a job's token cannot do this; use a person's token")
    return found


def peer(request: Request, authorization: str | None = Header(default=None)) -> Caller:
    """FastAPI dependency: a peer cluster's token (``cwl-crunch token create --peer``)."""
    found = reader(request, authorization)
    if found.peer_id is None:
        raise HTTPException(403, "only a peer cluster's token can do this (cwl-crunch "
                                 "token create --peer ID, on this cluster)")
    return found


Who = Annotated[Caller, Depends(caller)]
"""A route's caller: a person's or a job's token."""
Person = Annotated[Caller, Depends(person)]
PeerCaller = Annotated[Caller, Depends(peer)]
