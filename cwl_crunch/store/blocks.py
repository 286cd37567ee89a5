"""Content-addressed block files: ``<root>/blocks/<first 2 hex>/<sha256 hex>``.

Every block file is read-only (0o444) and has the same sentinel mtime. Jobs get blocks
as hard links, and a job running as root can write through a read-only link; any write
changes the inode's mtime (and usually its size), so one ``stat`` tells whether a block
may have been damaged, without hashing it. Readers that hand bytes to someone still
verify the hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from cwl_crunch.errors import CorruptBlock
from cwl_crunch.store.atomic import Chunk, write_into_store
from cwl_crunch.store.locators import locator_for, parse_locator

BLOCK_MTIME_NS = 946_684_800 * 1_000_000_000
"""2000-01-01T00:00:00Z: the mtime of every untouched block file."""

_READ_AHEAD = 1
"""Blocks read and verified in the background while the caller uses the current one."""


class BlockStore:
    """The blocks directory of one store root. Safe for many threads and processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blocks_dir = root / "blocks"
        self.tmp_dir = root / "tmp"

    def path_for(self, locator: str) -> Path:
        digest, _ = parse_locator(locator)
        return self.blocks_dir / digest[:2] / digest

    def is_untouched(self, locator: str) -> bool:
        """Whether the block is present and its size and mtime are as stored."""
        _, length = parse_locator(locator)
        try:
            info = os.stat(self.path_for(locator))
        except FileNotFoundError:
            return False
        return (
            stat.S_ISREG(info.st_mode)
            and info.st_size == length
            and info.st_mtime_ns == BLOCK_MTIME_NS
        )

    def missing(self, locators: Iterable[str]) -> list[str]:
        """Locators whose block is absent or touched, each once, in the order given."""
        unique = dict.fromkeys(locators)
        return [locator for locator in unique if not self.is_untouched(locator)]

    def put(self, data: Chunk) -> str:
        """Store one block (unless an untouched copy is there); returns its locator."""
        locator = locator_for(data)
        self.put_known(locator, data)
        return locator

    def put_known(self, locator: str, data: Chunk) -> None:
        """Store a block whose locator the caller has just computed from ``data``."""
        if not self.is_untouched(locator):
            # A touched copy is replaced: rename swaps in a fresh inode, so anything still
            # holding the damaged one (a misbehaving job) no longer shares it.
            write_into_store(
                self.tmp_dir, self.path_for(locator), [data], mtime_ns=BLOCK_MTIME_NS
            )

    def adopt(self, source: Path, locator: str) -> bool:
        """Make the file ``source`` (content hashing to ``locator``) the block, by hard link.

        The caller gives the file up: it becomes read-only with the sentinel mtime.
        Returns False, changing nothing in the store, when the file cannot be linked
        (another filesystem, not permitted...); the caller then copies it.
        """
        if self.is_untouched(locator):
            return True
        dest = self.path_for(locator)
        try:
            os.chmod(source, 0o444)
            os.utime(source, ns=(BLOCK_MTIME_NS, BLOCK_MTIME_NS))
            os.makedirs(dest.parent, exist_ok=True)
            try:
                os.link(source, dest)
            except FileExistsError:
                self._replace_by_link(source, dest)
        except OSError:
            return False
        return True

    def _replace_by_link(self, source: Path, dest: Path) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)
        temp_path = self.tmp_dir / f"{dest.name}.{os.getpid()}.{secrets.token_hex(6)}"
        os.link(source, temp_path)
        try:
            os.rename(temp_path, dest)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise

    def read_verified(self, locator: str, collection: str | None) -> bytes:
        """The block's bytes, after checking them against the locator."""
        buffer = bytearray(parse_locator(locator)[1])
        self._read_into(locator, collection, buffer)
        return bytes(buffer)

    def verified_views(
        self, locators: Iterable[str], collection: str | None
    ) -> Iterator[memoryview]:
        """Each block's verified bytes in order, reading the next ones in a thread.

        A view is only valid until the next one is asked for: the buffers are reused,
        because allocating fresh memory for every block costs more than reading it.
        """
        wanted = list(locators)
        # Sized once: a buffer must not be resized while the caller holds a view of it.
        largest = max((parse_locator(locator)[1] for locator in wanted), default=0)
        buffers = [bytearray(largest) for _ in range(min(_READ_AHEAD + 1, len(wanted)))]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="block-read") as pool:
            pending: deque[Future[memoryview]] = deque()
            for index, locator in enumerate(wanted):
                # Round robin: the buffer reused here was yielded and released before.
                buffer = buffers[index % len(buffers)]
                pending.append(pool.submit(self._read_into, locator, collection, buffer))
                if len(pending) > _READ_AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _read_into(self, locator: str, collection: str | None, buffer: bytearray) -> memoryview:
        digest, length = parse_locator(locator)
        view = memoryview(buffer)[:length]
        try:
            with open(self.path_for(locator), "rb", buffering=0) as block_file:
                size = os.fstat(block_file.fileno()).st_size
                if size != length:
                    raise CorruptBlock(
                        locator, collection, f"block file holds {size} bytes, not {length}"
                    )
                filled = 0
                while filled < length and (count := block_file.readinto(view[filled:])):
                    filled += count
        except FileNotFoundError:
            raise CorruptBlock(locator, collection, "block file is missing") from None
        except OSError as error:
            raise CorruptBlock(locator, collection, f"cannot read block: {error}") from None
        if filled != length:
            raise CorruptBlock(locator, collection, f"block file ended after {filled} bytes")
        if hashlib.sha256(view).hexdigest() != digest:
            raise CorruptBlock(locator, collection, "content does not match its hash")
        return view
