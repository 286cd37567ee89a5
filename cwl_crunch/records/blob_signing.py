"""Signed block locators: proof that a token was handed a block, as Arvados does it.

A locator the server hands to a token (in a manifest the token may read, in the answer
to its upload) carries ``+A<signature>@<expiry>``: HMAC-SHA256 with the cluster's secret
key over the bare locator, the token's uuid and the expiry. Presenting it later (in a
manifest to store, in ``blocks/missing``) proves the block was given to that token: a
locator guessed or read from elsewhere has no valid signature, a signature made for
another token or expired does not check out. The token's uuid, not its secret, is
signed over: the uuid names the token (its secret stays with its holder) and a
signature is useless without the token itself to present it with.

The key is ``blob_signing_key`` from the config (sites with several servers sharing
one), else ``<home>/blob-signing.key``, made once (mode 0600). A SLURM worker reads the
same file through the shared home: it is the cluster, writing blocks into the store
itself, and signs the locators of what it stored for its job's token.

No SQLAlchemy here: ``cwl-crunch worker`` imports this on the HTTP side.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from cwl_crunch.errors import ConfigError
from cwl_crunch.store.locators import (
    parse_locator,
    replace_locators,
    split_signature,
    with_signature,
)

KEY_FILE = "blob-signing.key"
MIN_KEY_LENGTH = 32
"""Characters a configured key must have at least (a short one could be guessed)."""


def load_key(home: Path, configured: str = "", *, create: bool = True) -> bytes:
    """The cluster's signing key: ``configured`` (the config's ``blob_signing_key``) if
    set, else the home's key file, made (atomically: two processes starting at once
    agree on one key) if it is not there and ``create``."""
    if configured:
        if len(configured) < MIN_KEY_LENGTH:
            raise ConfigError(f"blob_signing_key must have at least {MIN_KEY_LENGTH} "
                              "characters")
        return configured.encode()
    path = home / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            raise ConfigError(f"no signing key at {path} (the server makes it when it "
                              "starts): a worker must share its server's home, or both "
                              "must set blob_signing_key") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temporary, path)  # fails if another process made one first: use that
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(f"{path} holds no signing key (fewer than {MIN_KEY_LENGTH} "
                          "characters): remove it to have a new one made")
    return key.encode()


def token_uuid_of(token: str) -> str:
    """The uuid part of an API token ``crunch/<uuid>/<secret>`` (what signatures name)."""
    parts = token.split("/")
    if len(parts) != 3:
        raise ConfigError("malformed API token (expected crunch/<uuid>/<secret>)")
    return parts[1]


class BlobSigner:
    """Signs and checks locators with one key; ``ttl``: seconds a signature holds."""

    def __init__(self, key: bytes, ttl: float) -> None:
        # Keyed once: a copy of a keyed HMAC costs a third of a new one (measured).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.ttl = ttl

    def _signature(self, locator: str, token_uuid: str, expiry: int) -> str:
        mac = self._keyed.copy()
        mac.update(f"{locator}@{token_uuid}@{expiry:x}".encode())
        return mac.hexdigest()

    def sign(self, locator: str, token_uuid: str, now: float | None = None) -> str:
        """``locator`` (bare or signed) signed for ``token_uuid`` until now + ttl."""
        bare = split_signature(locator)[0]
        expiry = int((time.time() if now is None else now) + self.ttl)
        return with_signature(bare, self._signature(bare, token_uuid, expiry), expiry)

    def sign_manifest(self, text: bytes, token_uuid: str) -> bytes:
        """The manifest text with every locator signed for ``token_uuid``."""
        now = time.time()
        return replace_locators(text, lambda locator: self.sign(locator, token_uuid, now))

    def problem(self, locator: str, token_uuid: str, now: float | None = None) -> str | None:
        """Why ``locator`` does not prove access for ``token_uuid``; None if it does."""
        bare, hint = split_signature(locator)
        parse_locator(bare)
        if hint is None:
            return "it carries no signature"
        signature, expiry = hint
        expected = self._signature(bare, token_uuid, expiry)
        if not hmac.compare_digest(signature, expected):
            return "its signature is not this cluster's for this token"
        if expiry <= (time.time() if now is None else now):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
            return f"its signature expired at {when}"
        return None


def signer_for(home: Path, configured_key: str, ttl: float) -> BlobSigner:
    """The signer of a cluster: its config's home, ``blob_signing_key`` and
    ``blob_signature_ttl``."""
    return BlobSigner(load_key(home, configured_key), ttl)


def manifest_signer(home: Path, configured_key: str, ttl: float,
                    token: str) -> Callable[[bytes], bytes]:
    """What signs a manifest for ``token``: a worker's, for the collections it stored
    into the store itself (the key must exist: only the server makes it)."""
    signer = BlobSigner(load_key(home, configured_key, create=False), ttl)
    token_uuid = token_uuid_of(token)
    return lambda text: signer.sign_manifest(text, token_uuid)
