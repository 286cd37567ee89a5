"""The collection store of one cluster: blocks and manifests below one root directory.

Layout::

    <root>/blocks/<2 hex>/<sha256>      block files, 0o444, sentinel mtime
    <root>/manifests/<2 hex>/<sha256>   manifest texts, named by their PDH's hash
    <root>/tmp/                         temp files, renamed into place when complete
    <root>/cache/put-cache.sqlite3      which blocks hold which user file

Directories are created when first needed, so any number of processes and threads may
use one root at once: every write is a complete file renamed into place, and two writers
of the same block or manifest write the same bytes.

Reading is verified: ``open_file`` and ``export`` hash every block every time, and
``stage`` hashes a block before hard-linking it into a job unless this instance has
seen that inode intact with the same stat, ctime included, since (see
:mod:`cwl_crunch.store.known_good`). The put cache keeps those stats for the blocks of
the files it remembers, so a put of an unchanged file in a new process hashes only the
blocks whose stat moved. The one window left: bit rot in a block a store instance wrote
or verified, with its stat unchanged since, reaches a job through a link unhashed and is
kept by a put of its file in any process; ``open_file`` and ``export`` still catch it.
``missing_blocks`` and ``is_untouched`` are stat checks only and never detect silent
corruption.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from cwl_crunch.errors import (
    CollectionNotFound,
    CorruptBlock,
    CorruptManifest,
    CrunchError,
    MissingBlocks,
    PathNotFound,
    StoreError,
)
from cwl_crunch.model import CollectionEntry
from cwl_crunch.store.blocks import BlockStore
from cwl_crunch.store.ingest import manifest_of_directory, manifest_of_paths
from cwl_crunch.store.listing import checked_path, entry_at, list_entries
from cwl_crunch.store.locators import BLOCK_SIZE, parse_locator
from cwl_crunch.store.manifest import Manifest
from cwl_crunch.store.manifest_files import ManifestFiles
from cwl_crunch.store.put_cache import PutCache
from cwl_crunch.store.staging import Placer

_log = logging.getLogger(__name__)

DamageHook = Callable[[str, CorruptBlock], str | None]
"""Told ``(pdh, error)`` when a reader finds a collection's manifest or a block damaged;
returns what the user should do, appended to the error's message (None: nothing)."""


class CollectionStore:
    """Content-addressed collections on a local or shared filesystem.

    Annotations say ``builtins.list`` because the method ``list`` shadows it here.
    """

    def __init__(self, root: Path, *, block_size: int = BLOCK_SIZE) -> None:
        if block_size <= 0:
            raise ValueError(f"block_size must be positive, not {block_size}")
        self.root = Path(root)
        self.block_size = block_size
        self._blocks = BlockStore(self.root)
        self._manifests = ManifestFiles(self.root)
        self._put_cache = PutCache(self.root / "cache" / "put-cache.sqlite3")
        self.on_damage: DamageHook | None = None
        """Set by the cluster that owns the records (the embedded client): a collection
        found damaged while read makes the jobs that made it ineligible for reuse."""

    # Storing -----------------------------------------------------------------------
    def put_paths(self, paths: Sequence[Path]) -> str:
        """Copy files and directories in, each at the top level by its basename."""
        manifest = manifest_of_paths(self._blocks, paths, self.block_size, self._put_cache)
        return self._manifests.write(manifest)

    def ingest_dir(self, directory: Path, *, move: bool = False,
                   confine: Path | None = None) -> str:
        """Store the directory's contents as a collection; ``move`` gives the files up;
        ``confine`` skips symlinks leading outside that directory (a job's outputs)."""
        manifest = manifest_of_directory(self._blocks, directory, self.block_size, move=move,
                                         confine=confine)
        return self._manifests.write(manifest)

    def put_manifest(self, text: bytes) -> str:
        """Store a canonical manifest whose blocks are all here already; returns its PDH."""
        manifest = Manifest.from_text(text)
        missing = self.missing_blocks(
            locator for file in manifest.files() for locator in file.locators
        )
        if missing:
            raise MissingBlocks(
                f"cannot store collection {manifest.pdh}: {len(missing)} of its blocks "
                f"are not in the store: {' '.join(missing)}"
            )
        return self._manifests.write(manifest)

    def put_block(self, data: bytes) -> str:
        """Store one block; returns its locator."""
        if not 0 < len(data) <= self.block_size:
            raise StoreError(
                f"a block must hold 1 to {self.block_size} bytes, not {len(data)}"
            )
        return self._blocks.put(data)

    def read_block(self, locator: str, pdh: str | None = None) -> bytes:
        """One block's bytes, verified against its locator (``pdh``: for messages)."""
        parse_locator(locator)
        try:
            return self._blocks.read_verified(locator, pdh)
        except CorruptBlock as error:
            raise self._damaged(pdh, error) from None

    # Looking -----------------------------------------------------------------------
    def has_collection(self, pdh: str) -> bool:
        return self._manifests.has(pdh)

    def manifest(self, pdh: str) -> Manifest:
        """The parsed manifest, verified against its PDH; CollectionNotFound if absent."""
        return Manifest.from_text(self.manifest_text(pdh))

    def manifest_text(self, pdh: str) -> bytes:
        try:
            return self._manifests.read(pdh)
        except CorruptBlock as error:
            raise self._damaged(pdh, error) from None

    def damage_of(self, pdh: str) -> str | None:
        """What is wrong with the stored collection, or None if it is stored intact.

        Its manifest is hashed, and each block unless this instance knows it good (see
        :mod:`cwl_crunch.store.known_good` for the gap that leaves); absent or resized
        blocks are found by a stat before anything is hashed. What reuse asks before
        handing a job's output on.
        """
        try:
            manifest = Manifest.from_text(self._manifests.read(pdh))
        except CollectionNotFound:
            return f"collection {pdh} is not in the store"
        except CorruptBlock as error:
            return str(error)
        locators = list(dict.fromkeys(
            locator for file in manifest.files() for locator in file.locators))
        # Those a stat already shows touched first: no hashing if one is plainly damaged.
        touched = set(self._blocks.missing(locators))
        for locator in sorted(locators, key=lambda locator: locator not in touched):
            problem = self._blocks.problem_of(locator, pdh)
            if problem is not None:
                return problem
        return None

    def _damaged(self, pdh: str | None, error: CorruptBlock) -> CorruptBlock:
        """``error``, with what to do added by the on_damage hook."""
        collection = pdh or error.collection
        if self.on_damage is None or collection is None:
            return error
        try:
            hint = self.on_damage(collection, error)
        except CrunchError as hook_error:  # never hide the damage behind another error
            _log.warning("could not record the damage of %s: %s", collection, hook_error)
            return error
        if not hint:
            return error
        if isinstance(error, CorruptManifest):
            return CorruptManifest(error.block, f"{error.reason}; {hint}")
        return CorruptBlock(error.block, error.collection, f"{error.reason}; {hint}")

    def missing_blocks(self, locators: Iterable[str]) -> builtins.list[str]:
        """Blocks absent or touched since stored (size or mtime changed), each once.

        A cheap stat check: it does not detect silent corruption (bytes changed with size
        and mtime as stored). Reading a block (open_file, export, stage) verifies its hash
        and reports such damage; putting the original data again repairs it.
        """
        return self._blocks.missing(locators)

    def is_untouched(self, locator: str) -> bool:
        """Whether the block file is there with its stored size and sentinel mtime.

        Stat only, like missing_blocks: it cannot see silent corruption.
        """
        return self._blocks.is_untouched(locator)

    # Reading -----------------------------------------------------------------------
    def open_file(self, pdh: str, path: str) -> Iterator[bytes]:
        """The file's content in chunks, each block verified before it is yielded."""
        manifest = self.manifest(pdh)
        path = checked_path(path, pdh)
        file = manifest.file(path)
        if file is None:
            what = "a directory" if manifest.is_dir(path) else "not there"
            raise PathNotFound(f"cannot read {path!r} of collection {pdh}: it is {what}")
        return self._reporting(pdh, _as_bytes(self._blocks.verified_views(file.locators, pdh)))

    def _reporting(self, pdh: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from chunks
        except CorruptBlock as error:
            raise self._damaged(pdh, error) from None

    def export(self, pdh: str, path: str, dest: Path) -> None:
        """Copy a file or directory out, like ``cp -r``, verifying every block."""
        manifest = self.manifest(pdh)
        try:
            Placer(self._blocks, manifest).export(path, Path(dest))
        except CorruptBlock as error:
            raise self._damaged(pdh, error) from None

    def stage(self, pdh: str, path: str, dest: Path, *, writable: bool) -> None:
        """Place a file or directory ("" = whole collection) at ``dest`` for a job."""
        manifest = self.manifest(pdh)
        try:
            Placer(self._blocks, manifest).stage(path, Path(dest), writable=writable)
        except CorruptBlock as error:
            raise self._damaged(pdh, error) from None

    def entry(self, pdh: str, path: str = "") -> CollectionEntry:
        """The file or directory at ``path`` (CollectionNotFound, PathNotFound)."""
        return entry_at(self.manifest(pdh), path)

    def list(self, pdh: str, path: str = "") -> builtins.list[CollectionEntry]:
        """Entries below ``path``, recursively, sorted; a file path lists just itself."""
        return list_entries(self.manifest(pdh), path)


_CHUNK_SIZE = 1 << 20
"""Bytes per chunk handed out by open_file: small enough for the allocator to reuse."""


def _as_bytes(views: Iterator[memoryview]) -> Iterator[bytes]:
    for view in views:
        for start in range(0, len(view), _CHUNK_SIZE):
            yield bytes(view[start : start + _CHUNK_SIZE])
