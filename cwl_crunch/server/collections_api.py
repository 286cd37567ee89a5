"""Routes for collections: blocks in (only those the server lacks), manifests, listings,
and verified blocks out. Every block is checked against its hash on arrival and on the
way out; the client checks again on its side.

Locators travel signed for the caller's token (see server.block_proofs): manifests are
sent signed, an upload is answered with its signed locator, and a manifest to store or
a ``blocks/missing`` question must name each block as signed for the caller or as one
it uploaded. Stored manifests and their PDHs are over bare locators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from cwl_crunch.errors import UnprovenBlocks
from cwl_crunch.model.codec import entry_to_dict
from cwl_crunch.server.auth import Caller, caller, core_of, reader
from cwl_crunch.server.block_proofs import BlockProofs
from cwl_crunch.server.jobs_api import access_of
from cwl_crunch.server.schemas import LocatorsBody
from cwl_crunch.store import Manifest, locator_for
from cwl_crunch.store.locators import (
    manifest_locators,
    parse_locator,
    parse_pdh,
    split_signature,
    strip_signatures,
)

router = APIRouter(prefix="/api/v1", tags=["collections"])
Who = Annotated[Caller, Depends(caller)]
Reader = Annotated[Caller, Depends(reader)]
OCTETS = "application/octet-stream"
MAX_MANIFEST = 256 << 20


def proofs_of(request: Request) -> BlockProofs:
    proofs: BlockProofs = request.app.state.proofs
    return proofs


@router.post("/blocks/missing", response_model=None)
def missing_blocks(request: Request, body: LocatorsBody, who: Who) -> dict[str, Any]:
    """Which of these blocks (bare or signed locators) need uploading: those the server
    lacks and those the caller has not proven it may use (signed for its token, or
    uploaded by it), whether the server has them or not. ``missing``: bare locators,
    each once; ``signed``: each other block's locator signed anew for the caller."""
    proofs = proofs_of(request)
    named = list(dict.fromkeys(split_signature(locator)[0] for locator in body.locators))
    unproven = proofs.unproven(who, body.locators)
    proven = [locator for locator in named if locator not in unproven]
    absent = set(core_of(request).missing_blocks(proven))
    return {"missing": [locator for locator in named
                        if locator in unproven or locator in absent],
            "signed": {locator: proofs.sign(who, locator)
                       for locator in proven if locator not in absent}}


@router.put("/blocks/{locator}", response_model=None, status_code=201,
            openapi_extra={"requestBody": {"content": {OCTETS: {"schema": {
                "type": "string", "format": "binary"}}}, "required": True}})
async def put_block(request: Request, locator: str, who: Who) -> dict[str, str]:
    """Store one block; its content must hash to the locator (bare). Sending the bytes
    proves the caller holds them, also when the server had the block already: the
    answer is the locator signed for the caller."""
    _, length = parse_locator(locator)
    core = core_of(request)
    if length > core.block_size:
        raise HTTPException(413, f"block {locator} is larger than {core.block_size} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > length:
            raise HTTPException(400, f"block {locator}: the body is longer than {length}")
    if locator_for(data) != locator:
        raise HTTPException(400, f"block {locator}: the body hashes to {locator_for(data)}")
    await run_in_threadpool(core.put_block, bytes(data))
    await run_in_threadpool(proofs_of(request).note_upload, who, locator)
    return {"locator": proofs_of(request).sign(who, locator)}


@router.post("/collections", response_model=None, status_code=201,
             openapi_extra={"requestBody": {"content": {"text/plain": {"schema": {
                 "type": "string"}}}, "required": True}})
async def put_manifest(request: Request, who: Who) -> dict[str, str]:
    """Store a manifest whose blocks are all on the server, each named signed for the
    caller or uploaded by it (403 naming the first that is not); returns its PDH, the
    hash of the manifest over bare locators (what is stored)."""
    text = bytearray()
    async for chunk in request.stream():
        text += chunk
        if len(text) > MAX_MANIFEST:
            raise HTTPException(413, f"a manifest may hold at most {MAX_MANIFEST} bytes")
    pdh: str = await run_in_threadpool(_store_proven_manifest, request, who, bytes(text))
    await run_in_threadpool(access_of(request).note_upload, who, pdh)
    if who.is_person:
        await run_in_threadpool(core_of(request).stored_by_person, pdh)
    return {"pdh": pdh}


def _store_proven_manifest(request: Request, who: Caller, text: bytes) -> str:
    bare_text = strip_signatures(text)
    Manifest.from_text(bare_text)  # a malformed manifest: a 400 before anything else
    unproven = proofs_of(request).unproven(who, manifest_locators(text))
    if unproven:
        locator, reason = next(iter(unproven.items()))
        raise UnprovenBlocks(f"block {locator} of the manifest is not proven to be "
                            f"this token's to use: {reason} ({len(unproven)} such "
                            "block(s); name each as the cluster signed it for this "
                            "token, or upload its bytes with PUT /blocks/<locator>)")
    stored: str = core_of(request).put_manifest(bare_text)
    return stored


def check_readable(request: Request, who: Caller, pdh: str) -> None:
    """400 for a malformed PDH, 403 unless readable, then 404 if the store lacks it. In
    that order: a token must not learn whether a collection it may not read exists (the
    PDH of a small file is as easy to guess as its block's locator)."""
    parse_pdh(pdh)
    access_of(request).check_collection(who, pdh)
    core_of(request).manifest_text(pdh)  # CollectionNotFound: a 404


@router.get("/collections/{pdh}", response_model=None)
def get_collection(request: Request, pdh: str, who: Reader) -> dict[str, Any]:
    """Whether the server holds the collection (404 if not)."""
    check_readable(request, who, pdh)
    return {"pdh": pdh}


@router.get("/collections/{pdh}/manifest", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def get_manifest(request: Request, pdh: str, who: Reader) -> Response:
    """The manifest with its locators signed for the caller (its PDH is that of the text
    with the signatures stripped)."""
    check_readable(request, who, pdh)
    core = core_of(request)
    text = core.manifest_text(pdh)
    if not who.is_person and access_of(request).resident(pdh) is not None:
        # Bare: a job's token reads a resident collection's blocks through it, but
        # cannot name them in a new collection, which would not be resident.
        return Response(text, media_type="text/plain")
    return Response(proofs_of(request).sign_manifest(who, text), media_type="text/plain")


@router.get("/collections/{pdh}/entries", response_model=None)
def list_entries(request: Request, pdh: str, who: Reader,
                 path: Annotated[str, Query(max_length=4096)] = "") -> list[dict[str, Any]]:
    """Files and directories below ``path``, recursively, sorted."""
    check_readable(request, who, pdh)
    return [entry_to_dict(entry) for entry in core_of(request).list_collection(pdh, path)]


@router.get("/collections/{pdh}/blocks/{locator}", response_class=Response,
            responses={200: {"content": {OCTETS: {}}}})
def get_block(request: Request, pdh: str, locator: str, who: Reader) -> Response:
    """One block of the collection, verified."""
    check_readable(request, who, pdh)
    access_of(request).check_contents(who, pdh)
    parse_locator(locator)
    core = core_of(request)
    if not any(locator in file.locators for file in core.manifest(pdh).files()):
        raise HTTPException(404, f"collection {pdh} has no block {locator}")
    return Response(core.read_block(locator, pdh), media_type=OCTETS)
