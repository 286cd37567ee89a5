"""Content-addressed block files: ``<root>/blocks/<first 2 hex>/<sha256 hex>``.

Every block file is read-only (0o444) and has the same sentinel mtime. Jobs get blocks
as hard links, and a job running as root can write through a read-only link; any write
changes the inode's mtime (and usually its size), so one ``stat`` tells cheaply whether
a block was certainly damaged. It cannot tell that a block is intact: a write followed
by ``os.utime`` putting the mtime back, or bit rot, leaves size and mtime as they were.

So nothing is trusted on that cheap check alone where it matters:

* Readers that hand bytes out (``read_verified``, ``verified_views``) hash every block,
  every time.
* Hard-linking a block into a job (``link_to``) hashes it first, unless this store
  instance has seen that very inode intact with the same ctime (see
  :mod:`cwl_crunch.store.known_good`): the ctime moves on any write, chmod, utime or
  link, and cannot be set back, so an unchanged ctime means an unchanged file.
* Storing a block that is already there (``put_known``, ``adopt``, the put cache's
  ``all_intact``) hashes the present copy the same way before keeping it, and replaces
  it with good bytes if it is damaged: putting the original file again repairs a block.
  ``all_intact`` also takes stat keys the put cache persisted for blocks some store
  instance knew intact, maybe in another process: a block whose stat is still exactly
  that is trusted like a known-good one.

Remaining window: bit rot in a block that a store instance wrote, verified or linked,
and whose stat did not change since, is not caught before ``link_to`` hands it to a job
(hashing it again for every job is what the map exists to avoid), nor by a later put of
its file in any process (the put cache keeps the stat). Every ``open_file`` and
``export`` still hashes it and reports it. Likewise a write with the mtime restored in
the instant between ``link_to``'s stat and its link is masked by the link's own ctime
change. ``missing`` and ``is_untouched`` are the cheap check only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from cwl_crunch.errors import CorruptBlock
from cwl_crunch.store.atomic import Chunk, temp_name, write_into_store
from cwl_crunch.store.known_good import KnownGood, StatKey, stat_key
from cwl_crunch.store.locators import locator_for, parse_locator

BLOCK_MTIME_NS = 946_684_800 * 1_000_000_000
"""2000-01-01T00:00:00Z: the mtime of every untouched block file."""

_READ_AHEAD = 1
"""Blocks read and verified in the background while the caller uses the current one."""

_VERIFY_ATTEMPTS = 3
"""Hashes of a block whose stat keeps changing while it is read (another process linking
it, say) before giving up on knowing it intact."""


def file_sha256(block_file: io.FileIO) -> str:
    """The SHA-256 hex digest of everything left to read in ``block_file``."""
    return hashlib.file_digest(block_file, "sha256").hexdigest()


def _looks_untouched(info: os.stat_result, length: int) -> bool:
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_size == length
        and info.st_mtime_ns == BLOCK_MTIME_NS
    )


class BlockStore:
    """The blocks directory of one store root. Safe for many threads and processes.

    Each instance keeps its own map of blocks it has seen intact (``known_good``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blocks_dir = root / "blocks"
        self.tmp_dir = root / "tmp"
        self.known_good = KnownGood()

    def path_for(self, locator: str) -> Path:
        digest, _ = parse_locator(locator)
        return self.blocks_dir / digest[:2] / digest

    def is_untouched(self, locator: str) -> bool:
        """Whether the block is present and its size and mtime are as stored.

        The cheap check only: a block damaged with its mtime restored passes it.
        """
        _, length = parse_locator(locator)
        try:
            info = os.stat(self.path_for(locator))
        except FileNotFoundError:
            return False
        return _looks_untouched(info, length)

    def missing(self, locators: Iterable[str]) -> list[str]:
        """Locators whose block is absent or touched, each once, in the order given.

        Stat only, never hashing: silent corruption (same size and mtime) is not seen here
        but by the hash every reader checks.
        """
        unique = dict.fromkeys(locators)
        return [locator for locator in unique if not self.is_untouched(locator)]

    def all_intact(
        self, locators: Iterable[str], vouched: Mapping[str, StatKey] | None = None
    ) -> bool:
        """Whether every block is present and intact, hashing those not known good.

        ``vouched`` maps locators to the stat key their block had when some store
        instance (maybe in another process) knew it intact, as the put cache keeps them:
        a block with exactly that stat now is trusted, and known good from then on.
        """
        unique = list(dict.fromkeys(locators))
        recorded = {} if vouched is None else vouched
        # Stat them all first: one missing block makes hashing the others pointless.
        return not self.missing(unique) and all(
            self.holds_intact(loc, recorded.get(loc)) for loc in unique
        )

    def holds_intact(self, locator: str, vouched: StatKey | None = None) -> bool:
        """Whether the block is there, untouched, and known good or vouched for (its
        stat is exactly ``vouched``) or verified just now."""
        _, length = parse_locator(locator)
        try:
            info = os.stat(self.path_for(locator))
        except FileNotFoundError:
            self.known_good.forget(locator)
            return False
        if not _looks_untouched(info, length):
            self.known_good.forget(locator)
            return False
        if self.known_good.matches(locator, info):
            return True
        if vouched is not None and stat_key(info) == vouched:
            self.known_good.remember(locator, info)
            return True
        try:
            self.verify(locator, None)
        except CorruptBlock:
            return False
        return True  # kept changing while hashed, but each hash matched: its bytes are right

    def problem_of(self, locator: str, collection: str | None) -> str | None:
        """What is wrong with the stored block (None: intact), hashing it unless known
        good. For deciding whether work may be reused: a damaged block means redo it."""
        _, length = parse_locator(locator)
        try:
            info = os.stat(self.path_for(locator))
        except FileNotFoundError:
            self.known_good.forget(locator)
            return str(CorruptBlock(locator, collection, "block file is missing"))
        if info.st_size != length:
            self.known_good.forget(locator)
            return str(CorruptBlock(locator, collection,
                                    f"block file holds {info.st_size} bytes, not {length}"))
        if _looks_untouched(info, length) and self.known_good.matches(locator, info):
            return None
        try:
            self.verify(locator, collection)
        except CorruptBlock as error:
            return str(error)
        return None

    def known_good_stats(self, locators: Iterable[str]) -> dict[str, StatKey]:
        """The stat keys of those blocks known good whose stat is still the known one.

        What the put cache persists, so that other processes can trust these blocks.
        """
        stats: dict[str, StatKey] = {}
        for locator in dict.fromkeys(locators):
            if locator not in self.known_good:
                continue
            try:
                info = os.stat(self.path_for(locator))
            except OSError:
                self.known_good.forget(locator)
                continue
            if _looks_untouched(info, parse_locator(locator)[1]) and self.known_good.matches(
                locator, info
            ):
                stats[locator] = stat_key(info)
        return stats

    def put(self, data: Chunk) -> str:
        """Store one block (unless an intact copy is there); returns its locator."""
        locator = locator_for(data)
        self.put_known(locator, data)
        return locator

    def put_known(self, locator: str, data: Chunk) -> None:
        """Store a block whose locator the caller has just computed from ``data``."""
        if not self.holds_intact(locator):
            # A touched or damaged copy is replaced: rename swaps in a fresh inode, so
            # anything still holding the damaged one (a misbehaving job) no longer shares it.
            inode = write_into_store(
                self.tmp_dir, self.path_for(locator), [data], mtime_ns=BLOCK_MTIME_NS
            )
            self._remember_stored(locator, inode)

    def adopt(
        self, source: Path, locator: str, *, read_as: os.stat_result | None = None,
        opened: int | None = None,
    ) -> bool:
        """Make the file ``source`` (content hashing to ``locator``) the block, by hard link.

        The caller gives the file up: it becomes read-only with the sentinel mtime.
        ``read_as`` is the file's stat when the caller read and hashed it: if it changed
        since, nothing is adopted. ``opened``: a descriptor of that file, which is what
        gets adopted; without one, ``source`` is opened here, never through a symlink.
        Mode and time are set on the open file, and the open file itself is linked
        (through ``/proc/self/fd``; where that fails, ``source`` is linked without
        following a symlink and undone unless it is the open file's inode), so no path
        swapped meanwhile is followed. Returns False, changing nothing in the store,
        when the file cannot be linked (another filesystem, not permitted...); the
        caller then copies it.
        """
        if self.holds_intact(locator):
            return True
        dest = self.path_for(locator)
        try:
            fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC) \
                if opened is None else opened
        except OSError:
            return False
        try:
            before = os.fstat(fd)
            if read_as is not None and stat_key(before) != stat_key(read_as):
                return False
            os.fchmod(fd, 0o444)
            os.utime(fd, ns=(BLOCK_MTIME_NS, BLOCK_MTIME_NS))
            os.makedirs(dest.parent, exist_ok=True)
            self._link_open_file(fd, source, dest, before)
        except OSError:
            return False
        finally:
            if opened is None:
                os.close(fd)
        if read_as is not None:
            self._remember_stored(locator, before.st_ino)
        return True

    def _link_open_file(self, fd: int, source: Path, dest: Path,
                        opened_as: os.stat_result) -> None:
        """Hard-link the open file ``fd`` (found at ``source``) at ``dest``, replacing a
        damaged block there; OSError if the link made is not that file's inode."""
        os.makedirs(self.tmp_dir, exist_ok=True)
        temp_path = self.tmp_dir / temp_name()
        try:
            os.link(f"/proc/self/fd/{fd}", temp_path, follow_symlinks=True)
        except OSError:  # no /proc, or a kernel (gVisor) that will not link through it
            os.link(source, temp_path, follow_symlinks=False)
        try:
            linked = os.lstat(temp_path)
            if (linked.st_dev, linked.st_ino) != (opened_as.st_dev, opened_as.st_ino):
                raise OSError(errno.ESTALE, f"{source} changed while being adopted")
            os.rename(temp_path, dest)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise

    def _remember_stored(self, locator: str, inode: int) -> None:
        """Mark the block known good if it is still the inode this store just wrote."""
        _, length = parse_locator(locator)
        try:
            info = os.stat(self.path_for(locator))
        except OSError:
            self.known_good.forget(locator)
            return
        if info.st_ino == inode and _looks_untouched(info, length):
            self.known_good.remember(locator, info)
        else:
            self.known_good.forget(locator)

    def link_to(self, locator: str, dest: Path, collection: str | None) -> bool:
        """Hard-link the block file at ``dest``, for a job to read.

        The block is linked first and then hashed through ``dest`` (so what is hashed is
        what the job gets), unless its stat is the one this store last saw it intact
        with. CorruptBlock (naming block and collection) if it is damaged, with ``dest``
        removed again. False, leaving nothing at ``dest``, when the caller must copy
        instead: no link possible (another filesystem, link limit...), the block touched
        or replaced meanwhile, or it kept changing while being hashed.
        """
        _, length = parse_locator(locator)
        path = self.path_for(locator)
        with self.known_good.locator_lock(locator):
            try:
                before = os.stat(path)
            except FileNotFoundError:
                self.known_good.forget(locator)
                raise CorruptBlock(locator, collection, "block file is missing") from None
            if not _looks_untouched(before, length):
                self.known_good.forget(locator)
                return False
            trusted = self.known_good.matches(locator, before)
            try:
                os.link(path, dest)
            except OSError:
                return False
            try:
                linked = os.stat(dest)
                if linked.st_ino != before.st_ino or not _looks_untouched(linked, length):
                    # Replaced or written between the stat and the link.
                    self.known_good.forget(locator)
                    os.unlink(dest)
                    return False
                if trusted:
                    # The link moved the ctime: record the new one.
                    self.known_good.remember(locator, linked)
                elif self.verify(locator, collection, dest) is None:
                    os.unlink(dest)
                    return False
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(dest)
                raise
        return True

    def verify(
        self, locator: str, collection: str | None, path: Path | None = None
    ) -> os.stat_result | None:
        """Hash the block file (or ``path``, a hard link to it) against its locator.

        CorruptBlock, naming the block and ``collection``, if it does not match. On a
        match, returns the file's stat, now known good; None if the stat kept changing
        while the file was hashed (each hash matched, but no stat can be vouched for).
        """
        digest, length = parse_locator(locator)
        target = self.path_for(locator) if path is None else path
        try:
            for _ in range(_VERIFY_ATTEMPTS):
                before, actual, after = self._hash_file(locator, collection, target, length)
                if actual != digest:
                    raise CorruptBlock(locator, collection, "content does not match its hash")
                if stat_key(before) == stat_key(after):
                    self.known_good.remember(locator, after)
                    return after
        except CorruptBlock:
            self.known_good.forget(locator)
            raise
        self.known_good.forget(locator)
        return None

    @staticmethod
    def _hash_file(
        locator: str, collection: str | None, target: Path, length: int
    ) -> tuple[os.stat_result, str, os.stat_result]:
        """``(stat before, sha256 hex, stat after)`` of the file at ``target``."""
        try:
            with open(target, "rb", buffering=0) as block_file:
                before = os.fstat(block_file.fileno())
                if before.st_size != length:
                    raise CorruptBlock(
                        locator, collection,
                        f"block file holds {before.st_size} bytes, not {length}",
                    )
                actual = file_sha256(block_file)
                after = os.fstat(block_file.fileno())
        except FileNotFoundError:
            raise CorruptBlock(locator, collection, "block file is missing") from None
        except OSError as error:
            raise CorruptBlock(locator, collection, f"cannot read block: {error}") from None
        return before, actual, after

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
        """Read and verify the block into ``buffer``; known good after, if it held still."""
        try:
            view, before, after = self._read_checked(locator, collection, buffer)
        except CorruptBlock:
            self.known_good.forget(locator)
            raise
        if stat_key(before) == stat_key(after):
            self.known_good.remember(locator, after)
        return view

    def _read_checked(
        self, locator: str, collection: str | None, buffer: bytearray
    ) -> tuple[memoryview, os.stat_result, os.stat_result]:
        digest, length = parse_locator(locator)
        view = memoryview(buffer)[:length]
        try:
            with open(self.path_for(locator), "rb", buffering=0) as block_file:
                before = os.fstat(block_file.fileno())
                size = before.st_size
                if size != length:
                    raise CorruptBlock(
                        locator, collection, f"block file holds {size} bytes, not {length}"
                    )
                filled = 0
                while filled < length and (count := block_file.readinto(view[filled:])):
                    filled += count
                after = os.fstat(block_file.fileno())
        except FileNotFoundError:
            raise CorruptBlock(locator, collection, "block file is missing") from None
        except OSError as error:
            raise CorruptBlock(locator, collection, f"cannot read block: {error}") from None
        if filled != length:
            raise CorruptBlock(locator, collection, f"block file ended after {filled} bytes")
        if hashlib.sha256(view).hexdigest() != digest:
            raise CorruptBlock(locator, collection, "content does not match its hash")
        return view, before, after
