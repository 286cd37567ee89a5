"""Stored manifests: ``<root>/manifests/<first 2 hex>/<sha256 hex>``, checked on every read.

Writing a manifest that is already stored checks the stored copy first (a manifest is
small: hashing it costs microseconds) and replaces a damaged or truncated one, atomically,
with the text being written, whose hash is its name by construction: re-running the job
that made a collection, or putting its files again, repairs its manifest.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cwl_crunch.errors import CollectionNotFound, CorruptManifest
from cwl_crunch.store.atomic import write_into_store
from cwl_crunch.store.locators import parse_pdh
from cwl_crunch.store.manifest import Manifest


class ManifestFiles:
    """The manifests directory of one store root. Safe for many threads and processes."""

    def __init__(self, root: Path) -> None:
        self.manifests_dir = root / "manifests"
        self.tmp_dir = root / "tmp"

    def path_for(self, pdh: str) -> Path:
        """Where the manifest lives; InvalidManifest for a malformed PDH (never a path)."""
        digest, _ = parse_pdh(pdh)
        return self.manifests_dir / digest[:2] / digest

    def has(self, pdh: str) -> bool:
        """Whether a manifest of the PDH's length is stored (a stat: not verified)."""
        _, length = parse_pdh(pdh)
        try:
            return os.stat(self.path_for(pdh)).st_size == length
        except FileNotFoundError:
            return False

    def read(self, pdh: str) -> bytes:
        """The manifest text, verified against the PDH (CorruptManifest if damaged)."""
        digest, length = parse_pdh(pdh)
        try:
            text = self.path_for(pdh).read_bytes()
        except FileNotFoundError:
            raise CollectionNotFound(f"no collection {pdh} in this store") from None
        except OSError as error:
            raise CorruptManifest(pdh, f"cannot read the manifest: {error}") from None
        if hashlib.sha256(text).hexdigest() != digest:
            raise CorruptManifest(pdh, "the stored manifest does not match its hash "
                                       f"(it holds {len(text)} bytes)")
        if len(text) != length:
            # Intact, so it is another collection's: only the length in the PDH was wrong.
            raise CollectionNotFound(f"no collection {pdh} in this store")
        return text

    def holds_intact(self, pdh: str) -> bool:
        """Whether the manifest is stored and its text hashes to the PDH."""
        digest, _ = parse_pdh(pdh)
        try:
            text = self.path_for(pdh).read_bytes()
        except OSError:
            return False
        return hashlib.sha256(text).hexdigest() == digest

    def write(self, manifest: Manifest) -> str:
        """Store the manifest (its blocks must already be stored); returns its PDH.

        A stored copy that is missing, damaged or of another length is replaced.
        """
        pdh = manifest.pdh
        if not self.holds_intact(pdh):
            write_into_store(self.tmp_dir, self.path_for(pdh), [manifest.text])
        return pdh
