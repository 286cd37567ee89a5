"""Remembers which blocks hold a user's file, so putting it again unchanged reads nothing.

Keyed by the file's real path and identity (device, inode, size, mtime, ctime). A file
edited in place changes mtime and ctime; one replaced by rename changes inode. The cache is
only an optimisation: any SQLite trouble (locked, corrupt, read-only store) turns it off for
that put rather than failing the put.

Each entry also keeps the known-good evidence for its blocks (see
:mod:`cwl_crunch.store.known_good`): the stat key ``(inode, size, mtime, ctime)`` each
block file had when the entry was saved, for the blocks the saving store instance knew
intact then (it had just written, hashed or linked them, and their stat had not changed
since). A later put, in any process, trusts a block whose stat is still exactly that
without hashing it, so re-putting an unchanged file reads neither the file nor its
blocks. Any other stat (the block was written to, replaced, chmodded or linked: the ctime
moved, even with its mtime restored) means hashing it as before, and rewriting it from
the file if it is damaged. The gap is the known-good map's, now across processes: bit
rot in a block whose stat did not change since it was recorded is not caught here, only
by the readers, which hash every block.

The database carries its schema version (``PRAGMA user_version``). One from an older
cwl-crunch is dropped and made anew (it is only a cache); one from a newer cwl-crunch is
left alone and the cache is off for that put.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path

from cwl_crunch.store.known_good import StatKey

_log = logging.getLogger(__name__)

RACY_WINDOW_NS = 1_000_000_000
"""A file changed this recently may change again within the same timestamp tick.

Timestamps come from a coarse clock (a few milliseconds on Linux, the server's clock on
NFS), so a write right after we read a file can leave its mtime and ctime unchanged. Such
a file is not cached; a second is ample for the local clock tick and small clock skew.
"""

SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of the cache database. 1 (written as 0): no block stats."""

_TABLE = """
CREATE TABLE IF NOT EXISTS put_cache (
    realpath TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    locators TEXT NOT NULL,
    block_stats TEXT NOT NULL,
    PRIMARY KEY (realpath, device, inode)
)
"""


@dataclasses.dataclass(frozen=True)
class FileIdentity:
    """What must be unchanged for a cached entry to still describe a file."""

    realpath: str
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, realpath: str, info: os.stat_result) -> FileIdentity:
        return cls(
            realpath, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns
        )

    def is_settled(self, now_ns: int) -> bool:
        """Whether a later write would surely show in the timestamps (see RACY_WINDOW_NS)."""
        return self.ctime_ns < now_ns - RACY_WINDOW_NS and self.mtime_ns < now_ns - RACY_WINDOW_NS


@dataclasses.dataclass(frozen=True)
class CachedFile:
    """What the cache knows of a file: its blocks, and stats vouching for some of them."""

    locators: tuple[str, ...]
    block_stats: Mapping[str, StatKey]
    """Locator -> stat key its block file had when known intact, for those recorded."""


def encode_block_stats(locators: tuple[str, ...], block_stats: Mapping[str, StatKey]) -> str:
    """One ``inode:size:mtime:ctime`` (or ``-``, unknown) per locator, space-separated."""
    return " ".join(
        ":".join(map(str, block_stats[locator])) if locator in block_stats else "-"
        for locator in locators
    )


def decode_block_stats(locators: tuple[str, ...], text: str) -> dict[str, StatKey]:
    """The stats ``encode_block_stats`` wrote; anything malformed vouches for nothing."""
    tokens = text.split()
    if len(tokens) != len(locators):
        return {}
    stats: dict[str, StatKey] = {}
    conflicting: set[str] = set()
    for locator, token in zip(locators, tokens, strict=True):
        if token == "-":
            continue
        fields = token.split(":")
        if len(fields) != 4:
            return {}
        try:
            key = (int(fields[0]), int(fields[1]), int(fields[2]), int(fields[3]))
        except ValueError:
            return {}
        if stats.setdefault(locator, key) != key:
            conflicting.add(locator)
    for locator in conflicting:
        del stats[locator]
    return stats


@dataclasses.dataclass(frozen=True)
class BlockSource:
    """Where a put file held a block: its bytes ``offset`` to ``offset + length``, as long
    as the file's identity is still ``identity`` (for repairing a damaged block)."""

    identity: FileIdentity
    offset: int
    length: int

    @property
    def realpath(self) -> str:
        return self.identity.realpath

    def matches(self, info: os.stat_result) -> bool:
        return FileIdentity.of(self.identity.realpath, info) == self.identity


class PutCacheSession:
    """One connection, used by one thread for one put; new entries are saved at the end."""

    def __init__(self, connection: sqlite3.Connection | None) -> None:
        self._connection = connection
        self._new: dict[FileIdentity, CachedFile] = {}

    def lookup(self, identity: FileIdentity) -> CachedFile | None:
        """The blocks stored for this exact file identity, if any."""
        if self._connection is None:
            return None
        try:
            row = self._connection.execute(
                "SELECT size, mtime_ns, ctime_ns, locators, block_stats FROM put_cache"
                " WHERE realpath = ? AND device = ? AND inode = ?",
                (identity.realpath, identity.device, identity.inode),
            ).fetchone()
        except sqlite3.Error as error:
            self._disable(error)
            return None
        if row is None or tuple(row[:3]) != (identity.size, identity.mtime_ns, identity.ctime_ns):
            return None
        locators = tuple(str(row[3]).split())
        return CachedFile(locators, decode_block_stats(locators, str(row[4])))

    def remember(
        self,
        identity: FileIdentity,
        locators: tuple[str, ...],
        block_stats: Mapping[str, StatKey],
    ) -> None:
        """Save at the end of the put: ``identity`` is stored as ``locators``.

        ``block_stats`` holds the stat keys of those blocks the caller knows intact now,
        and only those: any process will trust a block still showing that stat unhashed.
        """
        self._new[identity] = CachedFile(locators, dict(block_stats))

    def save(self) -> None:
        if self._connection is None or not self._new:
            return
        rows = [
            (
                i.realpath, i.device, i.inode, i.size, i.mtime_ns, i.ctime_ns,
                " ".join(entry.locators), encode_block_stats(entry.locators, entry.block_stats),
            )
            for i, entry in self._new.items()
        ]
        try:
            with self._connection:
                self._connection.executemany(
                    "INSERT OR REPLACE INTO put_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
        except sqlite3.Error as error:
            self._disable(error)
        self._new.clear()

    def _disable(self, error: sqlite3.Error) -> None:
        _log.warning("put cache disabled for this put: %s", error)
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
        self._connection = None


class PutCache:
    """The cache database of one store (``<root>/cache/put-cache.sqlite3``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def session(self) -> Iterator[PutCacheSession]:
        connection = self._connect()
        session = PutCacheSession(connection)
        try:
            yield session
            session.save()
        finally:
            if connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()

    def sources_of(self, digests: set[str]) -> dict[str, list[BlockSource]]:
        """Digest -> the put files that held that block, for the digests asked; one scan
        of the cache, keeping only what is asked (the cache may hold millions of files)."""
        found: dict[str, list[BlockSource]] = {}
        if not self.path.exists():
            return found
        connection = self._connect()
        if connection is None or not digests:
            return found
        try:
            for row in connection.execute(
                    "SELECT realpath, device, inode, size, mtime_ns, ctime_ns, locators"
                    " FROM put_cache"):
                identity = FileIdentity(str(row[0]), *(int(value) for value in row[1:6]))
                offset = 0
                for locator in str(row[6]).split():
                    digest, _, length_text = locator.partition("+")
                    length = int(length_text) if length_text.isdigit() else 0
                    if digest in digests:
                        found.setdefault(digest, []).append(
                            BlockSource(identity, offset, length))
                    offset += length
        except sqlite3.Error as error:
            _log.warning("put cache %s unreadable: %s", self.path, error)
        finally:
            connection.close()
        return found

    def forget_blocks(self, digests: set[str]) -> None:
        """Drop the entries of files holding any of these blocks: a put of them reads
        the file again instead of trusting a block that is damaged."""
        if not digests or not self.path.exists():
            return
        connection = self._connect()
        if connection is None:
            return
        try:
            doomed = [
                (str(realpath), int(device), int(inode))
                for realpath, device, inode, locators in connection.execute(
                    "SELECT realpath, device, inode, locators FROM put_cache")
                if any(locator.partition("+")[0] in digests
                       for locator in str(locators).split())]
            with connection:
                connection.executemany(
                    "DELETE FROM put_cache WHERE realpath = ? AND device = ? AND inode = ?",
                    doomed)
        except sqlite3.Error as error:
            _log.warning("put cache %s: cannot drop entries: %s", self.path, error)
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection | None:
        try:
            os.makedirs(self.path.parent, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10.0)
        except (OSError, sqlite3.Error) as error:
            _log.warning("put cache %s unavailable: %s", self.path, error)
            return None
        try:
            # A lost cache entry only costs a re-read, so skip the per-commit fsync.
            connection.execute("PRAGMA synchronous = OFF")
            version = _schema_version(connection)
            if version < SCHEMA_VERSION:
                version = _recreate(connection)
            elif version == SCHEMA_VERSION:
                with connection:
                    connection.execute(_TABLE)
        except sqlite3.Error as error:
            _log.warning("put cache %s unavailable: %s", self.path, error)
            version = None
        if version != SCHEMA_VERSION:
            if version is not None:
                _log.warning(
                    "put cache %s unused: schema version %s is newer than %s",
                    self.path, version, SCHEMA_VERSION,
                )
            with contextlib.suppress(sqlite3.Error):
                connection.close()
            return None
        return connection


def _schema_version(connection: sqlite3.Connection) -> int:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    return int(version)


def _recreate(connection: sqlite3.Connection) -> int:
    """Drop an older cache's tables and make the current ones; returns the version then.

    Done under the write lock, so processes opening an old cache at once do it once.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = _schema_version(connection)
        if version < SCHEMA_VERSION:
            tables = [
                str(name)
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            ]
            for table in tables:
                quoted = table.replace('"', '""')
                connection.execute(f'DROP TABLE "{quoted}"')
            connection.execute(_TABLE)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            version = SCHEMA_VERSION
        connection.commit()
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.rollback()
        raise
    return version
