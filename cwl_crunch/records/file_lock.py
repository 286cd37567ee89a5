"""One writer at a time across processes, for SQLite.

SQLite lets one transaction write at a time; another process that wants to write gets
SQLITE_BUSY and its busy handler sleeps and retries (1, 2, 5, 10... ms). With a server and
its dispatcher process writing a few times per job each, those sleeps added up. A
``flock`` on a file beside the database is a queue the kernel keeps: a writer waiting for
it wakes as soon as the other lets go. Every process of a cluster home takes it before
``BEGIN IMMEDIATE``, so SQLite's own lock is then always free. The kernel drops the lock of
a process that dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class WriterLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock; callers in one process must already exclude each other."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
