"""The records' answers to what a token may reach: a job's place in the process tree,
the collections a job may read, and what a token stored itself. Pure queries on a
connection; the server caches the positive answers (server/access.py,
server/block_proofs.py) and turns the negative ones into 403s."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Table, insert, or_, select

from cwl_crunch.errors import JobNotFound
from cwl_crunch.model.runs import PULL_FAILED
from cwl_crunch.records.models import BlockUpload, Job, SentCollection, SentImage, Upload

JOBS = cast(Table, Job.__table__)
UPLOADS = cast(Table, Upload.__table__)
BLOCK_UPLOADS = cast(Table, BlockUpload.__table__)
SENT = cast(Table, SentCollection.__table__)
SENT_IMAGES = cast(Table, SentImage.__table__)
_LOOKUP_BATCH = 500
"""Locators per ``IN (...)`` query: well under SQLite's limit of bound parameters."""


def within(connection: Connection, uuid: str, ancestor: str) -> bool:
    """Whether ``ancestor`` is ``uuid`` or above it in the process tree."""
    current: str | None = uuid
    seen = 0
    while current is not None and seen < 10_000:
        if current == ancestor:
            return True
        parent = connection.execute(select(JOBS.c.parent_uuid).where(JOBS.c.uuid == current))
        row = parent.first()
        if row is None:
            if current == uuid:
                raise JobNotFound(f"no job {uuid}")
            return False
        current, seen = row.parent_uuid, seen + 1
    return False


def may_read(connection: Connection, job_uuid: str, pdh: str) -> bool:
    """Whether job ``job_uuid`` was given collection ``pdh`` (a mount), stored it, or
    it was made (output or log) by the job or a job below it."""
    mounts = connection.execute(select(JOBS.c.mounts).where(JOBS.c.uuid == job_uuid)).scalar()
    if any(isinstance(m, dict) and m.get("pdh") == pdh for m in (mounts or {}).values()):
        return True
    uploaded = connection.execute(select(UPLOADS.c.id).where(
        UPLOADS.c.job_uuid == job_uuid, UPLOADS.c.pdh == pdh).limit(1)).first()
    if uploaded is not None:
        return True
    for column in (JOBS.c.output_pdh, JOBS.c.log_pdh):  # apart: each uses its index
        makers = connection.execute(
            select(JOBS.c.uuid).where(column == pdh).limit(1000)).scalars().all()
        if any(within(connection, maker, job_uuid) for maker in makers):
            return True
    return False


def note_upload(connection: Connection, job_uuid: str, pdh: str) -> None:
    """Job ``job_uuid``'s token stored collection ``pdh``: that job may read it."""
    connection.execute(insert(UPLOADS).values(job_uuid=job_uuid, pdh=pdh,
                                              created_at=time.time()))


def note_block_upload(connection: Connection, token_uuid: str, locator: str) -> None:
    """Token ``token_uuid`` sent the bytes of block ``locator`` (bare)."""
    known = connection.execute(select(BLOCK_UPLOADS.c.id).where(
        BLOCK_UPLOADS.c.token_uuid == token_uuid,
        BLOCK_UPLOADS.c.locator == locator)).first()
    if known is None:
        connection.execute(insert(BLOCK_UPLOADS).values(
            token_uuid=token_uuid, locator=locator, created_at=time.time()))


def uploaded_blocks(connection: Connection, token_uuid: str,
                    locators: Sequence[str]) -> set[str]:
    """Those of ``locators`` (bare) whose bytes token ``token_uuid`` sent."""
    found: set[str] = set()
    for start in range(0, len(locators), _LOOKUP_BATCH):
        batch = list(locators[start:start + _LOOKUP_BATCH])
        found.update(connection.execute(select(BLOCK_UPLOADS.c.locator).where(
            BLOCK_UPLOADS.c.token_uuid == token_uuid,
            BLOCK_UPLOADS.c.locator.in_(batch))).scalars())
    return found


def peer_root(connection: Connection, uuid: str) -> str | None:
    """The peer cluster that submitted the top of job ``uuid``'s local subtree (the
    highest ancestor kept here), or None: a job a peer's token may reach."""
    current, seen = uuid, 0
    while seen < 10_000:
        row = connection.execute(select(JOBS.c.parent_uuid, JOBS.c.peer_id)
                                 .where(JOBS.c.uuid == current)).first()
        if row is None:
            if current == uuid:
                raise JobNotFound(f"no job {uuid}")
            return None
        if row.peer_id is not None:
            return str(row.peer_id)
        if row.parent_uuid is None:
            return None
        current, seen = row.parent_uuid, seen + 1
    return None


def peer_may_read(connection: Connection, peer_id: str, pdh: str) -> bool:
    """Whether peer ``peer_id``'s token may read collection ``pdh``: this cluster sent
    it to that peer as a reference, or it was given to or made by a job that peer
    submitted (or a job below one)."""
    sent = connection.execute(select(SENT.c.id).where(
        SENT.c.peer_id == peer_id, SENT.c.pdh == pdh).limit(1)).first()
    if sent is not None:
        return True
    for column in (JOBS.c.output_pdh, JOBS.c.log_pdh):
        makers = connection.execute(
            select(JOBS.c.uuid).where(column == pdh).limit(1000)).scalars().all()
        if any(peer_root(connection, maker) == peer_id for maker in makers):
            return True
    # Only runs that got their inputs: a run still held while they are pulled (or
    # proved, see server.federation_api._plans), or failed for it, gives nothing.
    submitted = connection.execute(select(JOBS.c.mounts).where(
        JOBS.c.peer_id == peer_id, JOBS.c.queue_reason.is_(None),
        or_(JOBS.c.failure_reason.is_(None),
            ~JOBS.c.failure_reason.startswith(PULL_FAILED))
    ).order_by(JOBS.c.created_at.desc()).limit(10_000))
    return any(isinstance(m, dict) and m.get("pdh") == pdh
               for mounts in submitted.scalars() for m in (mounts or {}).values())


def note_sent(connection: Connection, peer_id: str, pdh: str) -> None:
    """This cluster handed collection ``pdh`` to peer ``peer_id`` as a reference."""
    known = connection.execute(select(SENT.c.id).where(
        SENT.c.peer_id == peer_id, SENT.c.pdh == pdh)).first()
    if known is None:
        connection.execute(insert(SENT).values(peer_id=peer_id, pdh=pdh,
                                               created_at=time.time()))


def note_sent_image(connection: Connection, peer_id: str, digest: str, name: str) -> None:
    """This cluster offered peer ``peer_id`` the image ``digest`` (as ``name``)."""
    known = connection.execute(select(SENT_IMAGES.c.id).where(
        SENT_IMAGES.c.peer_id == peer_id, SENT_IMAGES.c.digest == digest)).first()
    if known is None:
        connection.execute(insert(SENT_IMAGES).values(peer_id=peer_id, digest=digest,
                                                      name=name, created_at=time.time()))


def image_sent(connection: Connection, peer_id: str, digest: str) -> bool:
    """Whether peer ``peer_id``'s token may export image ``digest`` from here."""
    return connection.execute(select(SENT_IMAGES.c.id).where(
        SENT_IMAGES.c.peer_id == peer_id, SENT_IMAGES.c.digest == digest)).first() is not None
