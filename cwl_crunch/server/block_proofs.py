"""Which blocks a token has proven it may use: those it was handed signed (in a manifest
it may read, in the answer to its upload) and those whose bytes it sent itself.

Nothing else is confirmed to exist: ``blocks/missing`` reports every other block
missing, whether the store has it or not, and a manifest naming one is refused. A token
that guesses a locator learns nothing, and cannot make a collection of a block it was
never given to read it back (issue 12, finding 4).

Uploads are recorded per token (``block_uploads``) so that a client putting the same
files again with the same token sends nothing; signatures need no record. Known uploads
are cached in memory (a record is never removed while the server runs).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from cwl_crunch.core import ClusterCore
from cwl_crunch.records.blob_signing import BlobSigner, signer_for
from cwl_crunch.server.auth import Caller
from cwl_crunch.store.locators import parse_locator, split_signature

_CACHE_LIMIT = 200_000


class BlockProofs:
    def __init__(self, core: ClusterCore) -> None:
        config = core.config
        self.signer: BlobSigner = signer_for(config.home, config.blob_signing_key,
                                             config.blob_signature_ttl)
        self._core = core
        self._uploaded: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def sign(self, caller: Caller, locator: str) -> str:
        return self.signer.sign(locator, caller.token_uuid)

    def sign_manifest(self, caller: Caller, text: bytes) -> bytes:
        return self.signer.sign_manifest(text, caller.token_uuid)

    def note_upload(self, caller: Caller, locator: str) -> None:
        """Record that ``caller`` sent the bytes of block ``locator`` (bare)."""
        key = (caller.token_uuid, locator)
        with self._lock:
            if key in self._uploaded:
                return
        self._core.note_block_upload(caller.token_uuid, locator)
        self._remember([key])

    def unproven(self, caller: Caller, locators: Sequence[str]) -> dict[str, str]:
        """The bare locators of ``locators`` (signed or not) that ``caller`` has not
        proven it may use, each with the reason, in the order first named. A block is
        proven by one valid signature among the forms given, or by the caller's upload."""
        problems: dict[str, str] = {}
        proven: set[str] = set()
        for locator in locators:
            bare = split_signature(locator)[0]
            parse_locator(bare)
            if bare in proven:
                continue
            problem = self.signer.problem(locator, caller.token_uuid)
            if problem is None:
                proven.add(bare)
                problems.pop(bare, None)
            else:
                problems.setdefault(bare, problem)
        for bare in self._uploaded_of(caller, list(problems)):
            del problems[bare]
        return {bare: f"{problem}, and this token did not upload it"
                for bare, problem in problems.items()}

    def _uploaded_of(self, caller: Caller, locators: list[str]) -> set[str]:
        """Those of ``locators`` whose bytes ``caller`` sent."""
        with self._lock:
            found = {loc for loc in locators if (caller.token_uuid, loc) in self._uploaded}
        asked = [loc for loc in locators if loc not in found]
        if not asked:
            return found
        found.update(self._core.uploaded_blocks(caller.token_uuid, asked))
        self._remember((caller.token_uuid, loc) for loc in found)
        return found

    def _remember(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            if len(self._uploaded) > _CACHE_LIMIT:
                self._uploaded.clear()
            self._uploaded.update(keys)
