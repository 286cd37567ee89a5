"""Stored manifests: ``<root>/manifests/<first 2 hex>/<sha256 hex>``, checked on every read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cwl_crunch.errors import CollectionNotFound, CorruptBlock
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
        _, length = parse_pdh(pdh)
        try:
            return os.stat(self.path_for(pdh)).st_size == length
        except FileNotFoundError:
            return False

    def read(self, pdh: str) -> bytes:
        """The manifest text, verified against the PDH."""
        digest, length = parse_pdh(pdh)
        try:
            text = self.path_for(pdh).read_bytes()
        except FileNotFoundError:
            raise CollectionNotFound(f"no collection {pdh} in this store") from None
        except OSError as error:
            raise CorruptBlock(pdh, pdh, f"cannot read the manifest: {error}") from None
        if hashlib.sha256(text).hexdigest() != digest:
            raise CorruptBlock(pdh, pdh, "the stored manifest does not match its hash")
        if len(text) != length:
            # Intact, so it is another collection's: only the length in the PDH was wrong.
            raise CollectionNotFound(f"no collection {pdh} in this store")
        return text

    def write(self, manifest: Manifest) -> str:
        """Store the manifest (its blocks must already be stored); returns its PDH."""
        pdh = manifest.pdh
        if not self.has(pdh):
            write_into_store(self.tmp_dir, self.path_for(pdh), [manifest.text])
        return pdh
