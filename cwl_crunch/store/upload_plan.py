"""A manifest for files on disk without storing them: what a client sends a remote store.

The files are hashed block by block (the same cut as a local put, so the same PDH); each
block remembers where it came from, to be read again if the server lacks it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from cwl_crunch.errors import StoreError
from cwl_crunch.store.file_ingest import StoredContent
from cwl_crunch.store.ingest import entries_of_named_paths
from cwl_crunch.store.locators import BLOCK_SIZE, locator_for
from cwl_crunch.store.manifest import Manifest


@dataclasses.dataclass(frozen=True)
class BlockSource:
    path: Path
    offset: int
    length: int

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The block's bytes in pieces (the receiver checks them against the locator)."""
        with self.path.open("rb") as source:
            source.seek(self.offset)
            left = self.length
            while left > 0:
                piece = source.read(min(size, left))
                if not piece:
                    raise StoreError(f"{self.path} changed while it was being stored")
                left -= len(piece)
                yield piece


@dataclasses.dataclass
class UploadPlan:
    manifest: Manifest
    sources: dict[str, BlockSource]
    """Where each block's bytes are, by locator."""


def plan_upload(paths: Sequence[Path], block_size: int = BLOCK_SIZE) -> UploadPlan:
    """Hash ``paths`` (each at the top level by its basename) into a manifest."""
    sources: dict[str, BlockSource] = {}

    def hash_file(path: Path) -> StoredContent:
        locators, size = [], 0
        with path.open("rb") as source:
            for offset, chunk in _chunks(source, block_size):
                locator = locator_for(chunk)
                sources.setdefault(locator, BlockSource(path, offset, len(chunk)))
                locators.append(locator)
                size += len(chunk)
        return StoredContent(size, tuple(locators))

    return UploadPlan(Manifest(entries_of_named_paths(paths, hash_file)), sources)


def _chunks(source: BinaryIO, block_size: int) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while chunk := source.read(block_size):
        yield offset, chunk
        offset += len(chunk)
