"""Manifests and small blocks an HTTP client read, kept for a while.

Both are named by their hash (a PDH, a block locator) and were checked against it when
they arrived, so a kept copy is never stale. A workflow runner reads each step's output
twice (cwltool checksums it, then copies it out to ``--outdir``): the second read needs
no request. Only small blocks are kept, up to a fixed total, so that a runner copying out
a large file does not hold it in memory. A kept block is not asked for again: if the
server's copy was damaged since, its next reader elsewhere is told, not this one (which
has the right bytes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from cwl_crunch.store import Manifest

MANIFESTS_KEPT = 2048
BLOCKS_KEPT_BYTES = 32 * 1024 * 1024
LARGEST_BLOCK_KEPT = 256 * 1024


class ContentCache:
    def __init__(self) -> None:
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        self._blocks: OrderedDict[str, bytes] = OrderedDict()
        self._block_bytes = 0
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
