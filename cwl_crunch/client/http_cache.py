"""Manifests an HTTP client read, kept for a while.

A manifest is named by its hash (the PDH), so a kept copy is never stale. A workflow
runner reads each step's output twice (cwltool checksums it, then copies it out): the
second read needs no manifest request. Blocks are not kept: every read of a file's bytes
is checked against the server's store as it is now.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from cwl_crunch.store import Manifest

MANIFESTS_KEPT = 512


class ContentCache:
    def __init__(self) -> None:
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
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
