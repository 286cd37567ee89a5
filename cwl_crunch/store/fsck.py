"""Checking a whole store: every manifest and every block hashed, and repair from copies.

Three passes, so that memory stays bounded whatever the store holds (what is kept is the
damage found, not the store's contents):

1. manifests: each read and hashed against its name (they are small); each intact one's
   blocks are stat'ed, so a block that is absent is found with the collections naming it;
2. blocks: each file streamed through SHA-256 (a 256 KiB buffer) against its name;
3. only if a block was damaged: the manifests again, to name the collections using it.

Hashing is the cost: one thread reads and hashes (measured on this 2-core VM: a second
thread hashing beside it was no faster, 0.20 against 0.23 GiB/s while it was loaded).

Repair takes a copy from outside the store where one is known: the put cache
(:mod:`cwl_crunch.store.put_cache`) remembers, for each file put, its identity and the
blocks it was cut into; a file whose identity (inode, size, mtime, ctime) is still the
remembered one, and whose bytes at the block's offset hash to the block's name, is a copy.
The block is rewritten from it through a temporary file that is renamed into place only
once its content hashed right, so a reader sees the damaged block or the good one, never
a mix. Manifests have no copy outside the store; the records layer deals with them (the
jobs that made a damaged collection are made ineligible for reuse: running them again
rewrites it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cwl_crunch.errors import CorruptBlock, InvalidManifest
from cwl_crunch.store.atomic import write_into_store
from cwl_crunch.store.blocks import BLOCK_MTIME_NS, BlockStore
from cwl_crunch.store.locators import parse_locator
from cwl_crunch.store.manifest import Manifest
from cwl_crunch.store.put_cache import BlockSource, PutCache

_HEX = frozenset("0123456789abcdef")
_COPY_CHUNK = 1 << 20


@dataclasses.dataclass
class Damage:
    """One damaged store file."""

    kind: str
    """``block`` or ``manifest``."""
    digest: str
    """Its name in the store: the SHA-256 its content should have."""
    problem: str
    locator: str | None = None
    """A block's locator (``digest+length``) as a manifest names it, when one does."""
    collections: list[str] = dataclasses.field(default_factory=list)
    """PDHs of the intact manifests that name this block."""
    repaired_from: str | None = None
    """Where a good copy was taken from, once repaired."""

    @property
    def name(self) -> str:
        return self.locator or self.digest


@dataclasses.dataclass
class Tally:
    """How far the check is, for a progress line."""

    manifests: int = 0
    blocks: int = 0
    blocks_total: int = 0
    bytes: int = 0
    damaged: int = 0


Progress = Callable[[Tally], None]


def _store_files(directory: Path) -> Iterator[Path]:
    """``directory/<2 hex>/<64 hex>`` files, in name order (leftovers skipped)."""
    try:
        prefixes = sorted(entry.name for entry in os.scandir(directory)
                          if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return
    for prefix in prefixes:
        names = sorted(entry.name for entry in os.scandir(directory / prefix)
                       if len(entry.name) == 64 and entry.name.startswith(prefix)
                       and set(entry.name) <= _HEX)
        for name in names:
            yield directory / prefix / name


class StoreCheck:
    """Verifies every manifest and block of the store at ``root``."""

    def __init__(self, root: Path, progress: Progress | None = None) -> None:
        self.root = Path(root)
        self.blocks = BlockStore(self.root)
        self.tally = Tally()
        self._progress = progress or (lambda tally: None)
        self.damage: dict[tuple[str, str], Damage] = {}

    def run(self) -> list[Damage]:
        """Everything damaged: manifests first, then blocks, each in name order."""
        self.tally.blocks_total = sum(1 for _ in _store_files(self.root / "blocks"))
        self._check_manifests(record_users=False)
        damaged_blocks = self._check_blocks()
        if damaged_blocks:
            self._check_manifests(record_users=True)
        return sorted(self.damage.values(), key=lambda d: (d.kind != "manifest", d.digest))

    def _add(self, damage: Damage) -> Damage:
        found = self.damage.setdefault((damage.kind, damage.digest), damage)
        self.tally.damaged = len(self.damage)
        return found

    def _check_manifests(self, *, record_users: bool) -> None:
        for path in _store_files(self.root / "manifests"):
            manifest = self._intact_manifest(path, count=not record_users)
            if manifest is None:
                continue
            for locator in dict.fromkeys(
                    locator for file in manifest.files() for locator in file.locators):
                digest, _ = parse_locator(locator)
                known = self.damage.get(("block", digest))
                if known is None and not record_users and \
                        not self.blocks.path_for(locator).exists():
                    known = self._add(Damage("block", digest, "block file is missing"))
                if known is not None:
                    known.locator = known.locator or locator
                    if manifest.pdh not in known.collections:
                        known.collections.append(manifest.pdh)

    def _intact_manifest(self, path: Path, *, count: bool) -> Manifest | None:
        try:
            text = path.read_bytes()
        except OSError as error:
            problem: str | None = f"cannot read the manifest: {error.strerror}"
            text = b""
        else:
            problem = None if hashlib.sha256(text).hexdigest() == path.name else (
                f"the stored manifest does not match its hash (it holds {len(text)} bytes)")
        if count:
            self.tally.manifests += 1
        manifest = None
        if problem is None:
            try:
                manifest = Manifest.from_text(text)
            except InvalidManifest as error:  # hashes right, yet not ours: report it
                problem = f"not a valid manifest: {error}"
        if problem is not None:
            if count:
                self._add(Damage("manifest", path.name, problem))
            return None
        return manifest

    def _check_blocks(self) -> int:
        damaged = 0
        last_report = 0.0
        for path in _store_files(self.root / "blocks"):
            problem, size = _block_problem(path)
            self.tally.blocks += 1
            self.tally.bytes += size
            if problem is not None:
                damaged += 1
                self._add(Damage("block", path.name, problem))
            now = time.monotonic()
            if now - last_report >= 0.2:
                last_report = now
                self._progress(self.tally)
        self._progress(self.tally)
        return damaged

    # Repairing ------------------------------------------------------------------------
    def repair_from_put_sources(self, damaged: list[Damage]) -> None:
        """Rewrite each damaged block some put file still holds (``repaired_from``)."""
        wanted = {damage.digest: damage for damage in damaged if damage.kind == "block"}
        if not wanted:
            return
        cache = PutCache(self.root / "cache" / "put-cache.sqlite3")
        for digest, sources in cache.sources_of(set(wanted)).items():
            damage = wanted[digest]
            for source in sources:
                if self._rewrite_from(source, digest):
                    damage.repaired_from = source.realpath
                    damage.locator = damage.locator or f"{digest}+{source.length}"
                    break
        unrepaired = {digest for digest, damage in wanted.items()
                      if damage.repaired_from is None}
        # A later put of those files must read them again, not trust the damaged block.
        cache.forget_blocks(unrepaired)

    def _rewrite_from(self, source: BlockSource, digest: str) -> bool:
        """Whether ``source`` still holds the block and it is now stored from it."""
        try:
            info = os.stat(source.realpath)
        except OSError:
            return False
        if not source.matches(info):
            return False
        locator = f"{digest}+{source.length}"
        try:
            write_into_store(self.blocks.tmp_dir, self.blocks.path_for(locator),
                             _verified_range(source, digest), mtime_ns=BLOCK_MTIME_NS)
        except (OSError, _NotACopy):
            return False
        try:
            return self.blocks.verify(locator, None) is not None
        except CorruptBlock:
            return False


class _NotACopy(Exception):
    """The source's bytes no longer hash to the block: nothing is renamed into place."""


def _verified_range(source: BlockSource, digest: str) -> Iterator[bytes]:
    """The block's bytes from ``source``, streamed; raises before the last chunk is
    handed on (so before the rename) if they do not hash to ``digest``."""
    hasher = hashlib.sha256()
    left = source.length
    with open(source.realpath, "rb") as copy:
        copy.seek(source.offset)
        pending = b""
        while left:
            chunk = copy.read(min(_COPY_CHUNK, left))
            if not chunk:
                raise _NotACopy
            left -= len(chunk)
            hasher.update(chunk)
            if pending:
                yield pending
            pending = chunk
    if hasher.hexdigest() != digest:
        raise _NotACopy
    yield pending


def _block_problem(path: Path) -> tuple[str | None, int]:
    """What is wrong with the block file (None: its content hashes to its name), and
    how many bytes were read."""
    try:
        with open(path, "rb", buffering=0) as block_file:
            size = os.fstat(block_file.fileno()).st_size
            actual = hashlib.file_digest(block_file, "sha256").hexdigest()
    except FileNotFoundError:
        return None, 0  # replaced or removed meanwhile: not damage found here
    except OSError as error:
        return f"cannot read block: {error.strerror}", 0
    if actual != path.name:
        return f"content ({size} bytes) does not match its hash", size
    return None, size
