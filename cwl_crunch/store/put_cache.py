"""Remembers which blocks hold a user's file, so putting it again unchanged reads nothing.

Keyed by the file's real path and identity (device, inode, size, mtime, ctime). A file
edited in place changes mtime and ctime; one replaced by rename changes inode. The cache is
only an optimisation: any SQLite trouble (locked, corrupt, read-only store) turns it off for
that put rather than failing the put.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

_log = logging.getLogger(__name__)

RACY_WINDOW_NS = 1_000_000_000
"""A file changed this recently may change again within the same timestamp tick.

Timestamps come from a coarse clock (a few milliseconds on Linux, the server's clock on
NFS), so a write right after we read a file can leave its mtime and ctime unchanged. Such
a file is not cached; a second is ample for the local clock tick and small clock skew.
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS put_cache_v1 (
    realpath TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    locators TEXT NOT NULL,
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


class PutCacheSession:
    """One connection, used by one thread for one put; new entries are saved at the end."""

    def __init__(self, connection: sqlite3.Connection | None) -> None:
        self._connection = connection
        self._new: dict[FileIdentity, tuple[str, ...]] = {}

    def lookup(self, identity: FileIdentity) -> tuple[str, ...] | None:
        """The locators stored for this exact file identity, if any."""
        if self._connection is None:
            return None
        try:
            row = self._connection.execute(
                "SELECT size, mtime_ns, ctime_ns, locators FROM put_cache_v1"
                " WHERE realpath = ? AND device = ? AND inode = ?",
                (identity.realpath, identity.device, identity.inode),
            ).fetchone()
        except sqlite3.Error as error:
            self._disable(error)
            return None
        if row is None or tuple(row[:3]) != (identity.size, identity.mtime_ns, identity.ctime_ns):
            return None
        return tuple(str(row[3]).split())

    def remember(self, identity: FileIdentity, locators: tuple[str, ...]) -> None:
        self._new[identity] = locators

    def save(self) -> None:
        if self._connection is None or not self._new:
            return
        rows = [
            (i.realpath, i.device, i.inode, i.size, i.mtime_ns, i.ctime_ns, " ".join(locators))
            for i, locators in self._new.items()
        ]
        try:
            with self._connection:
                self._connection.executemany(
                    "INSERT OR REPLACE INTO put_cache_v1 VALUES (?, ?, ?, ?, ?, ?, ?)", rows
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

    def _connect(self) -> sqlite3.Connection | None:
        try:
            os.makedirs(self.path.parent, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10.0)
            # A lost cache entry only costs a re-read, so skip the per-commit fsync.
            connection.execute("PRAGMA synchronous = OFF")
            with connection:
                connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            _log.warning("put cache %s unavailable: %s", self.path, error)
            return None
        return connection
