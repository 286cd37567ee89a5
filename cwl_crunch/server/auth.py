"""Who is calling: the bearer token of every request, resolved to a person or a job."""

from __future__ import annotations

import dataclasses

from fastapi import Header, HTTPException, Request

from cwl_crunch.core import ClusterCore
from cwl_crunch.errors import TokenError


@dataclasses.dataclass(frozen=True)
class Caller:
    token_uuid: str
    job_uuid: str | None
    """The job whose token this is; None for a person's token."""

    @property
    def is_person(self) -> bool:
        return self.job_uuid is None


def core_of(request: Request) -> ClusterCore:
    core: ClusterCore = request.app.state.core
    return core


def caller(request: Request, authorization: str | None = Header(default=None)) -> Caller:
    """FastAPI dependency: 401 unless the request carries a valid, unrevoked token."""
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing API token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    core = core_of(request)
    try:
        token_uuid, job_uuid = core.resolve_token(
            authorization.removeprefix("Bearer ").strip())
    except TokenError as error:
        raise HTTPException(401, str(error), headers={"WWW-Authenticate": "Bearer"}) from None
    return Caller(token_uuid, job_uuid)


def person(request: Request, authorization: str | None = Header(default=None)) -> Caller:
    """FastAPI dependency: a person's token (a job's token may not do this)."""
    found = caller(request, authorization)
    if not found.is_person:
        raise HTTPException(403, "a job's token cannot do this; use a person's token")
    return found
