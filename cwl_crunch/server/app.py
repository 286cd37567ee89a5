"""The HTTP API over one cluster core (records, store, local dispatcher).

``create_app(core)`` builds the FastAPI application; ``cwl-crunch server`` runs it with
uvicorn. Errors are JSON ``{"error": <class>, "detail": <message>}`` with a 4xx status:
the HTTP client turns them back into the same exception classes.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cwl_crunch import errors
from cwl_crunch.core import ClusterCore
from cwl_crunch.federation.links import PeerClients
from cwl_crunch.server import (
    collections_api,
    events_api,
    federation_api,
    jobs_api,
    logs_api,
    residency_api,
    web,
)
from cwl_crunch.server.access import Access
from cwl_crunch.server.auth import Caller, caller, core_of, person
from cwl_crunch.server.block_proofs import BlockProofs
from cwl_crunch.server.http_limits import HeadLimits

API_VERSION = "1"
MAX_JSON_BODY = 16 << 20
"""Bytes: bigger request bodies (other than blocks and manifests) get a 413."""

STATUS: list[tuple[type[errors.CrunchError], int]] = [
    (errors.CorruptBlock, 500),  # the server's store is damaged: not the caller's fault
    (errors.JobNotFound, 404),
    (errors.RuleNotFound, 404),
    (errors.ResidencyError, 403),
    (errors.CollectionNotFound, 404),
    (errors.PathNotFound, 404),
    (errors.UnprovenBlocks, 403),  # not proven to be the caller's to use
    (errors.TokenError, 401),
    (errors.IllegalTransition, 409),
    (errors.InvalidManifest, 400),
    (errors.SubmitError, 400),
    (errors.StoreError, 400),
    (errors.ContainerError, 400),
    (errors.CrunchError, 400),
]


JOB_BODIES = frozenset({"/api/v1/jobs", "/api/v1/jobs/own"})


def status_of(error: errors.CrunchError) -> int:
    return next(code for kind, code in STATUS if isinstance(error, kind))


def create_app(core: ClusterCore) -> FastAPI:
    app = FastAPI(title="cwl-crunch", version=API_VERSION,
                  description="Jobs, collections and job events of one cwl-crunch cluster.")
    app.state.core = core
    app.state.access = Access(core)
    app.state.proofs = BlockProofs(core)
    app.state.peers = PeerClients(core.config)
    if core.config.peers:
        threading.Thread(target=federation_api.resume_held_pulls,
                         args=(core, app.state.peers), name="resume-pulls",
                         daemon=True).start()
    for router in (residency_api.router, jobs_api.router, collections_api.router, events_api.router,
                   logs_api.router, federation_api.router, web.router):
        app.include_router(router)
    _add_error_handlers(app)
    _add_meta_routes(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(HeadLimits)  # added last, so the outermost: first to see a request
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.CrunchError)
    async def crunch_error(request: Request, error: errors.CrunchError) -> JSONResponse:
        body: dict[str, str | None] = {"error": type(error).__name__, "detail": str(error)}
        if isinstance(error, errors.CorruptBlock):
            body.update(block=error.block, collection=error.collection, reason=error.reason)
        return JSONResponse(body, status_code=status_of(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": "HTTPError", "detail": error.detail},
                            status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors())
        # A job body that does not parse is a job that can never run, as for the
        # embedded client (a bad filter of GET /jobs is no submission).
        submitted = request.method == "POST" and request.url.path in JOB_BODIES
        kind = "SubmitError" if submitted else "RequestValidationError"
        return JSONResponse({"error": kind, "detail": problems}, status_code=422)


def _add_meta_routes(app: FastAPI) -> None:
    @app.get("/api/v1/cluster", tags=["meta"])
    def cluster(request: Request) -> dict[str, Any]:
        """Which cluster this is (no token needed)."""
        return {"cluster_id": core_of(request).cluster_id, "api_version": API_VERSION}

    @app.get("/api/v1/nodes/largest", tags=["meta"])
    def largest_node(request: Request,
                     who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        """Cores and RAM (bytes) of the largest node that runs jobs of one core or more:
        what a CWL runner judges its steps' ResourceRequirements against."""
        node = core_of(request).largest_node()
        return {"cores": node.cores, "ram": node.ram}

    @app.post("/api/v1/tokens", status_code=201, tags=["meta"])
    def new_token(request: Request,
                  who: Annotated[Caller, Depends(person)]) -> dict[str, str]:
        """A new person's token (only with a person's token)."""
        return {"token": core_of(request).create_token()}


class BodyLimit:
    """413 for a body larger than the limit: refused unread when its declared length is,
    and as soon as the limit is passed when it is sent in chunks of undeclared length
    (blocks and manifests check their own, larger limits while they read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _streams_its_body(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_JSON_BODY):
            response = JSONResponse({"error": "HTTPError", "detail": _TOO_LARGE},
                                    status_code=413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_JSON_BODY:
                # Raised where the app reads the body, before any answer is sent: the
                # app's exception handler answers it.
                raise HTTPException(413, _TOO_LARGE)
            return message

        await self.app(scope, counted, send)


_TOO_LARGE = f"request body larger than {MAX_JSON_BODY} bytes"


def _streams_its_body(path: str) -> bool:
    return (path.startswith("/api/v1/blocks/") and not path.endswith("/missing")) or \
        path == "/api/v1/collections"
