"""Routes for collections: blocks in (only those the server lacks), manifests, listings,
and verified blocks out. Every block is checked against its hash on arrival and on the
way out; the client checks again on its side."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from cwl_crunch.client.codec import entry_to_dict
from cwl_crunch.server.auth import Caller, caller, core_of
from cwl_crunch.server.jobs_api import access_of
from cwl_crunch.server.schemas import LocatorsBody
from cwl_crunch.store import locator_for
from cwl_crunch.store.locators import parse_locator, parse_pdh

router = APIRouter(prefix="/api/v1", tags=["collections"])
Who = Annotated[Caller, Depends(caller)]
OCTETS = "application/octet-stream"
MAX_MANIFEST = 256 << 20


@router.post("/blocks/missing", response_model=None)
def missing_blocks(request: Request, body: LocatorsBody, who: Who) -> dict[str, list[str]]:
    """Which of these blocks the server lacks: only those need uploading."""
    for locator in body.locators:
        parse_locator(locator)
    return {"missing": core_of(request).store.missing_blocks(body.locators)}


@router.put("/blocks/{locator}", response_model=None, status_code=201,
            openapi_extra={"requestBody": {"content": {OCTETS: {"schema": {
                "type": "string", "format": "binary"}}}, "required": True}})
async def put_block(request: Request, locator: str, who: Who) -> dict[str, str]:
    """Store one block; its content must hash to the locator."""
    _, length = parse_locator(locator)
    store = core_of(request).store
    if length > store.block_size:
        raise HTTPException(413, f"block {locator} is larger than {store.block_size} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > length:
            raise HTTPException(400, f"block {locator}: the body is longer than {length}")
    if locator_for(data) != locator:
        raise HTTPException(400, f"block {locator}: the body hashes to {locator_for(data)}")
    await run_in_threadpool(store.put_block, bytes(data))
    return {"locator": locator}


@router.post("/collections", response_model=None, status_code=201,
             openapi_extra={"requestBody": {"content": {"text/plain": {"schema": {
                 "type": "string"}}}, "required": True}})
async def put_manifest(request: Request, who: Who) -> dict[str, str]:
    """Store a manifest whose blocks are all on the server; returns its PDH."""
    text = bytearray()
    async for chunk in request.stream():
        text += chunk
        if len(text) > MAX_MANIFEST:
            raise HTTPException(413, f"a manifest may hold at most {MAX_MANIFEST} bytes")
    pdh: str = await run_in_threadpool(core_of(request).store.put_manifest, bytes(text))
    await run_in_threadpool(access_of(request).note_upload, who, pdh)
    return {"pdh": pdh}


def check_readable(request: Request, who: Caller, pdh: str) -> None:
    """400 for a malformed PDH, 404 for one the store lacks, then 403 unless readable."""
    parse_pdh(pdh)
    core_of(request).store.manifest_text(pdh)  # CollectionNotFound first: a 404
    access_of(request).check_collection(who, pdh)


@router.get("/collections/{pdh}", response_model=None)
def get_collection(request: Request, pdh: str, who: Who) -> dict[str, Any]:
    """Whether the server holds the collection (404 if not)."""
    check_readable(request, who, pdh)
    return {"pdh": pdh}


@router.get("/collections/{pdh}/manifest", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def get_manifest(request: Request, pdh: str, who: Who) -> Response:
    check_readable(request, who, pdh)
    return Response(core_of(request).store.manifest_text(pdh), media_type="text/plain")


@router.get("/collections/{pdh}/entries", response_model=None)
def list_entries(request: Request, pdh: str, who: Who,
                 path: Annotated[str, Query(max_length=4096)] = "") -> list[dict[str, Any]]:
    """Files and directories below ``path``, recursively, sorted."""
    check_readable(request, who, pdh)
    return [entry_to_dict(entry) for entry in core_of(request).store.list(pdh, path)]


@router.get("/collections/{pdh}/blocks/{locator}", response_class=Response,
            responses={200: {"content": {OCTETS: {}}}})
def get_block(request: Request, pdh: str, locator: str, who: Who) -> Response:
    """One block of the collection, verified."""
    check_readable(request, who, pdh)
    parse_locator(locator)
    store = core_of(request).store
    if not any(locator in file.locators for file in store.manifest(pdh).files()):
        raise HTTPException(404, f"collection {pdh} has no block {locator}")
    return Response(store.read_block(locator, pdh), media_type=OCTETS)
