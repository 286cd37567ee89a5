"""Manifests and small blocks an HTTP client read, kept for a while.

Both are named by their hash (a PDH, a block locator) and were checked against it when
they arrived, so a kept copy is never stale. A workflow runner reads each step's output
twice (cwltool checksums it, then copies it out to ``--outdir``): the second read needs
no request. Only small blocks are kept, up to a fixed total, so that a runner copying out
a large file does not hold it in memory. A kept block is not asked for again: if the
server's copy was damaged since, its next reader elsewhere is told, not this one (which
has the right bytes).

Locators arrive signed for this client's token (in manifests and upload answers). The
manifests kept are over bare locators (as their PDHs are); the signed forms are kept
apart, by bare locator, to name the blocks in a manifest this client stores later (a
runner making a collection of files it read): a signature is what proves to the server
that this token was given the block. An expired one is no harm: the server then asks
for the bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from cwl_crunch.store import Manifest
from cwl_crunch.store.locators import split_signature

MANIFESTS_KEPT = 2048
BLOCKS_KEPT_BYTES = 32 * 1024 * 1024
LARGEST_BLOCK_KEPT = 256 * 1024
SIGNED_LOCATORS_KEPT = 100_000
"""About 20 MB of signed locators: the blocks of a thousand 6 GB files."""


class ContentCache:
    def __init__(self) -> None:
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        self._blocks: OrderedDict[str, bytes] = OrderedDict()
        self._block_bytes = 0
        self._signed: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def manifest(self, pdh: str) -> Manifest | None:
        with self._lock:
            found = self._manifests.get(pdh)
            if found is not None:
                self._manifests.move_to_end(pdh)
            return found

    def keep_manifest(self, pdh: str, manifest: Manifest) -> None:
        with self._lock:
            self._manifests[pdh] = manifest
            while len(self._manifests) > MANIFESTS_KEPT:
                self._manifests.popitem(last=False)

    def block(self, locator: str) -> bytes | None:
        with self._lock:
            found = self._blocks.get(locator)
            if found is not None:
                self._blocks.move_to_end(locator)
            return found

    def keep_block(self, locator: str, data: bytes) -> None:
        """Keep ``data``, already checked against ``locator``, if it is small."""
        if len(data) > LARGEST_BLOCK_KEPT:
            return
        with self._lock:
            if locator in self._blocks:
                return
            self._blocks[locator] = data
            self._block_bytes += len(data)
            while self._block_bytes > BLOCKS_KEPT_BYTES:
                _, dropped = self._blocks.popitem(last=False)
                self._block_bytes -= len(dropped)

    def keep_signed(self, locators: Iterable[str]) -> None:
        """Keep the signed ones of ``locators`` (the newest signature of each block)."""
        with self._lock:
            for locator in locators:
                bare, hint = split_signature(locator)
                if hint is not None:
                    self._signed[bare] = locator
                    self._signed.move_to_end(bare)
            while len(self._signed) > SIGNED_LOCATORS_KEPT:
                self._signed.popitem(last=False)

    def signed(self, locator: str) -> str:
        """The signed form of bare ``locator`` kept, else ``locator`` itself."""
        with self._lock:
            return self._signed.get(locator, locator)
