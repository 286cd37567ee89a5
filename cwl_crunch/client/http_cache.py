"""Manifests and small blocks an HTTP client read, kept for a while.

Both are named by their content's hash, so a kept copy is never stale. A workflow
runner reads each step's small output twice (cwltool checksums it, then copies it out):
the second read costs no request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from cwl_crunch.store import Manifest

MANIFESTS_KEPT = 512
SMALL_BLOCK = 1 << 20
"""Bytes: larger blocks are streamed through, never kept."""
BLOCK_BYTES_KEPT = 64 << 20


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
        if len(data) > SMALL_BLOCK:
            return
        with self._lock:
            if locator in self._blocks:
                return
            self._blocks[locator] = data
            self._block_bytes += len(data)
            while self._block_bytes > BLOCK_BYTES_KEPT:
                _, dropped = self._blocks.popitem(last=False)
                self._block_bytes -= len(dropped)
