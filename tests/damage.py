"""Damaging a stored file the way bit rot would, for the tests of the store's checks."""

from __future__ import annotations

import os
import stat


def flip_byte(path, offset=3, *, stealthy=True):
    """Change one byte at ``offset``, keeping size and mode; ``stealthy`` also keeps the
    mtime, so that only a hash can tell."""
    before = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as damaged:
        damaged.seek(offset)
        byte = damaged.read(1)
        damaged.seek(offset)
        damaged.write(bytes([byte[0] ^ 0x01]))
    os.chmod(path, stat.S_IMODE(before.st_mode))
    if stealthy:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def stealthy_flip(path, offset=3):
    """Change one byte at ``offset``, keeping size, mode and mtime: only a hash can tell."""
    flip_byte(path, offset, stealthy=True)
