"""Store one file's content as blocks: by copying it, or by adopting it (move).

Copying reads each block once; the hash and the write of a block run in worker threads
(hashlib and file writes release the GIL) while the next block is read.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar

from cwl_crunch.errors import StoreError
from cwl_crunch.store.blocks import BlockStore
from cwl_crunch.store.locators import locator_for
from cwl_crunch.store.put_cache import FileIdentity, PutCacheSession

_Result = TypeVar("_Result")

_BLOCKS_IN_FLIGHT = 2
"""Blocks being hashed and written while the next is read: bounds memory per put."""


@dataclasses.dataclass(frozen=True)
class StoredContent:
    size: int
    locators: tuple[str, ...]


def read_blocks(
    blocks: BlockStore, source: BinaryIO, block_size: int
) -> StoredContent:
    """Read ``source`` to its end, storing it block by block."""
    locators: list[str] = []
    size = 0
    with ThreadPoolExecutor(_BLOCKS_IN_FLIGHT, thread_name_prefix="block-write") as pool:
        pending: deque[Future[str]] = deque()
        while data := source.read(block_size):
            size += len(data)
            pending.append(pool.submit(blocks.put, data))
            if len(pending) >= _BLOCKS_IN_FLIGHT:
                locators.append(pending.popleft().result())
        locators.extend(future.result() for future in pending)
    return StoredContent(size, tuple(locators))


def copy_file_in(
    blocks: BlockStore, source: Path, block_size: int, cache: PutCacheSession
) -> StoredContent:
    """Store a copy of ``source`` (never a link: its owner may edit it later)."""
    with _opened(source) as source_file:
        before = os.fstat(source_file.fileno())
        identity = FileIdentity.of(os.path.realpath(source), before)
        cached = cache.lookup(identity)
        # Blocks the cache names are hashed unless this store knows them intact, or their
        # stat is still the one the cache recorded when a store knew them intact: a
        # damaged one must be rewritten from the file, not trusted on its size and mtime.
        if cached is not None and blocks.all_intact(cached.locators, cached.block_stats):
            known = blocks.known_good_stats(cached.locators)
            if known != cached.block_stats:
                # Hashed again (linked into a job, say, or repaired elsewhere): record the
                # new stats, so the next put in any process need not hash them either.
                cache.remember(identity, cached.locators, known)
            return StoredContent(before.st_size, cached.locators)
        content = _guarded(source, lambda: read_blocks(blocks, source_file, block_size))
        after = FileIdentity.of(identity.realpath, os.fstat(source_file.fileno()))
    if after == identity and after.size == content.size and after.is_settled(time.time_ns()):
        cache.remember(identity, content.locators, blocks.known_good_stats(content.locators))
    return content


def move_file_in(
    blocks: BlockStore, source: Path, block_size: int, owned_dir: Path
) -> StoredContent:
    """Store ``source``, which the caller gives up, linking it in rather than copying.

    Only a file that really lives below ``owned_dir`` and has no other hard link is
    adopted: anything else (a symlink target elsewhere, a file also linked from outside)
    is someone else's and must not become read-only under them. Where the file lives
    is asked of the open file itself, and that open file is what ``BlockStore.adopt``
    links, so a directory swapped for a symlink meanwhile cannot lead elsewhere.
    """
    realpath = Path(os.path.realpath(source))
    with _opened(realpath, os.O_NOFOLLOW) as source_file:
        info = os.fstat(source_file.fileno())
        if info.st_size > block_size:
            return _guarded(source, lambda: read_blocks(blocks, source_file, block_size))
        data = _guarded(source, source_file.read)
        if not data:
            return StoredContent(0, ())
        locator = locator_for(data)
        adoptable = (info.st_nlink == 1 and len(data) == info.st_size
                     and _lives_below(source_file.fileno(), os.path.realpath(owned_dir)))
        if not (adoptable and blocks.adopt(realpath, locator, read_as=info,
                                           opened=source_file.fileno())):
            _guarded(source, lambda: blocks.put_known(locator, data))
    return StoredContent(len(data), (locator,))


def _lives_below(fd: int, directory: str) -> bool:
    """Whether the open file's own path (as the kernel has it, whatever links led to
    it) is below the real path ``directory``; False where /proc cannot tell."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return path.startswith(directory.rstrip("/") + "/")


def _opened(source: Path, flags: int = 0) -> BinaryIO:
    try:
        return open(source, "rb", opener=lambda path, mode: os.open(path, mode | flags))
    except OSError as error:
        raise StoreError(f"cannot read {source}: {error.strerror}") from None


def _guarded(source: Path, action: Callable[[], _Result]) -> _Result:
    try:
        return action()
    except OSError as error:
        raise StoreError(f"cannot store {source}: {error}") from None
