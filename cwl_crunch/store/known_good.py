"""Block files one store instance has seen intact, so it need not hash them again.

An entry maps a locator to the block file's ``(inode, size, mtime, ctime)`` as it was
right after this store instance last wrote the block (it hashed the data itself),
hash-verified it, or hard-linked it. A stat equal to the entry means nothing wrote to,
replaced, chmodded or linked that inode since: any of those changes the ctime, which a
user process cannot set back (``os.utime`` restores mtime but moves ctime to now). So a
block damaged on purpose with its mtime restored, even in this very process, no longer
matches and is hashed again; another process linking the block also changes its ctime,
which only costs one more hash.

The map itself lives in memory, per store instance, and is bounded; forgetting an entry
only costs one more hash. Its evidence also outlives the process through the put cache
(:mod:`cwl_crunch.store.put_cache`): when the cache records which blocks hold a user's
file, it records the stat key of each of those blocks this instance knows good (their
stat still equal to their entry). A put of that file in any later process trusts a
block whose stat is still exactly the recorded one without hashing it, and enters it
here; any other stat means hashing it, and rewriting it from the file if it is damaged.
Nothing else crosses processes: ``link_to`` in a new process hashes a block before its
first link unless a put there vouched for it.

What a stat cannot see is bit rot (the disk returns other bytes, no timestamp changes)
in a block whose entry, or whose stat recorded in the put cache, is still current: such
a block is hard-linked into a job without being hashed, and a put of its file in any
process takes it as intact rather than rewriting it. Every reader that hands bytes out
itself (``open_file``, ``export``, a copy for a job) hashes every block regardless of
this map, so the damage is reported there.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

StatKey = tuple[int, int, int, int]
"""``(st_ino, st_size, st_mtime_ns, st_ctime_ns)`` of a block file."""

CAPACITY = 100_000
"""Most entries kept (a few hundred bytes each); the least recently used go first."""

_LOCATOR_LOCKS = 64


def stat_key(info: os.stat_result) -> StatKey:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class KnownGood:
    """Locator -> stat key of the block file last seen intact. Safe for many threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, StatKey] = OrderedDict()
        # Striped rather than one per locator, so they need no cleaning up.
        self._locator_locks = tuple(threading.Lock() for _ in range(_LOCATOR_LOCKS))

    def matches(self, locator: str, info: os.stat_result) -> bool:
        """Whether ``info`` is exactly the stat recorded for ``locator``.

        A different stat removes the entry: the file changed since it was last seen intact.
        """
        key = stat_key(info)
        with self._lock:
            known = self._entries.get(locator)
            if known is None:
                return False
            if known != key:
                del self._entries[locator]
                return False
            self._entries.move_to_end(locator)
            return True

    def remember(self, locator: str, info: os.stat_result) -> None:
        """Record ``info`` as the stat of ``locator``'s block file, just seen intact."""
        with self._lock:
            self._entries[locator] = stat_key(info)
            self._entries.move_to_end(locator)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def forget(self, locator: str) -> None:
        with self._lock:
            self._entries.pop(locator, None)

    def __contains__(self, locator: object) -> bool:
        with self._lock:
            return locator in self._entries

    def locator_lock(self, locator: str) -> threading.Lock:
        """A lock that threads staging the same block hold, so only one of them hashes it."""
        return self._locator_locks[hash(locator) % len(self._locator_locks)]
