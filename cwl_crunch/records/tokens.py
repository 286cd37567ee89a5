"""API tokens: ``crunch/<token uuid>/<secret>``; only the secret's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, insert, select, update

from cwl_crunch.errors import TokenError
from cwl_crunch.records.ids import new_uuid
from cwl_crunch.records.models import Token

PREFIX = "crunch"
TOKENS = cast(Table, Token.__table__)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(connection: Connection, cluster_id: str, job_uuid: str | None = None,
                 *, peer_id: str | None = None) -> str:
    """A new token (for a person if ``job_uuid`` is None; for the peer cluster
    ``peer_id`` if given); returns its only plaintext copy."""
    if job_uuid is not None and peer_id is not None:
        raise TokenError("a token is a job's or a peer's, not both")
    uuid = new_uuid(cluster_id, "tok")
    secret = secrets.token_urlsafe(32)
    connection.execute(insert(TOKENS).values(
        uuid=uuid, secret_sha256=_digest(secret), job_uuid=job_uuid,
        created_at=time.time(), revoked=False, peer_id=peer_id))
    return f"{PREFIX}/{uuid}/{secret}"


def resolve_token(connection: Connection, token: str) -> Row[Any]:
    """The token's record, if the token is valid; TokenError otherwise."""
    parts = token.split("/")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenError("malformed API token (expected crunch/<uuid>/<secret>)")
    record = connection.execute(select(TOKENS).where(TOKENS.c.uuid == parts[1])).first()
    # Compare in constant time even when the uuid is unknown, so timing tells nothing.
    expected = record.secret_sha256 if record is not None else _digest("")
    if not hmac.compare_digest(expected, _digest(parts[2])) or record is None:
        raise TokenError("unknown API token")
    if record.revoked:
        raise TokenError(f"API token {record.uuid} has been revoked")
    return record


_REVOKE = (update(TOKENS)
           .where(TOKENS.c.job_uuid == bindparam("job"), TOKENS.c.revoked.is_(False))
           .values(revoked=True))


def revoke_job_tokens(connection: Connection, job_uuid: str) -> None:
    connection.execute(_REVOKE, {"job": job_uuid})


def is_revoked(connection: Connection, token_uuid: str) -> bool:
    """Whether the token was revoked (or is gone) since it was resolved."""
    revoked = connection.scalar(select(TOKENS.c.revoked).where(TOKENS.c.uuid == token_uuid))
    return revoked is None or bool(revoked)


def job_token_uuids(connection: Connection, job_uuid: str) -> list[str]:
    return list(connection.scalars(select(TOKENS.c.uuid).where(TOKENS.c.job_uuid == job_uuid)))


def person_tokens(connection: Connection) -> list[Row[Any]]:
    """Every person's and peer's token (uuid, created_at, revoked, peer_id), oldest
    first; no secret hash."""
    return list(connection.execute(
        select(TOKENS.c.uuid, TOKENS.c.created_at, TOKENS.c.revoked, TOKENS.c.peer_id)
        .where(TOKENS.c.job_uuid.is_(None)).order_by(TOKENS.c.created_at, TOKENS.c.uuid)))


def revoke_person_token(connection: Connection, token_uuid: str) -> bool:
    """Revoke a person's token; False if it already was. Every request checks its token
    against this table, so the token stops working with the next request.

    A job's token is refused: it ends with its job (cancel the job instead), and its
    worker still needs it to report the job's end.
    """
    record = connection.execute(
        select(TOKENS.c.job_uuid, TOKENS.c.revoked).where(TOKENS.c.uuid == token_uuid)).first()
    if record is None:
        raise TokenError(f"no token {token_uuid}")
    if record.job_uuid is not None:
        raise TokenError(f"token {token_uuid} is job {record.job_uuid}'s: it ends with the "
                         f"job (cwl-crunch jobs cancel {record.job_uuid})")
    if record.revoked:
        return False
    connection.execute(update(TOKENS).where(TOKENS.c.uuid == token_uuid).values(revoked=True))
    return True
