"""Whole-file writes that readers see completely or not at all.

Content goes to a temporary file on the same filesystem, then ``os.rename`` puts it in
place in one step. A process killed at any moment leaves at most a stray temporary file,
never a partial file under its final name.

Nothing is fsynced: rename atomicity already covers process crashes, which are the common
failure. Power loss could leave a renamed file with lost content, but every block and
manifest is verified against its hash when read, so such damage is reported, not served;
paying an fsync per block would slow every put and job output for that rare case.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

Chunk = bytes | bytearray | memoryview


def temp_name() -> str:
    """A fresh hidden name for a temporary file, the same length whatever it becomes.

    Never derived from the final name: a final name may be as long as the filesystem
    allows (NAME_MAX, 255 bytes on ext4), and any suffix would push it over.
    """
    return f".cwl-crunch-{os.getpid()}-{secrets.token_hex(8)}"


def _write_all(fd: int, chunks: Iterable[Chunk]) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def write_into_store(
    tmp_dir: Path, dest: Path, chunks: Iterable[Chunk], *, mtime_ns: int | None = None
) -> int:
    """Write a read-only (0o444) store file at ``dest`` via a temp file in ``tmp_dir``.

    ``mtime_ns`` sets the modification time after the content is written. Returns the
    inode number of the file written, so that the caller can tell it from a copy another
    writer renamed into place just after.
    """
    os.makedirs(tmp_dir, exist_ok=True)
    temp_path = tmp_dir / temp_name()
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            _write_all(fd, chunks)
            # Explicit mode, not 0o444 & ~umask: other users of a shared store read these.
            os.fchmod(fd, 0o444)
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        publish(temp_path, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    return inode


def publish(temp_path: Path, dest: Path) -> None:
    """Rename a finished temp file to ``dest``, creating its directory if needed."""
    try:
        os.rename(temp_path, dest)
    except FileNotFoundError:
        if not os.path.exists(temp_path):
            raise
        os.makedirs(dest.parent, exist_ok=True)
        os.rename(temp_path, dest)


def write_beside(dest: Path, chunks: Iterable[Chunk], *, mode: int) -> None:
    """Write ``dest`` via a hidden temp file in its own directory, then rename.

    The temp file's name is fixed-length (:func:`temp_name`), so a ``dest`` name of any
    length the filesystem allows can be written.

    Used for files handed out of the store: a block that fails verification half way
    must not leave a truncated file under the real name. ``mode`` is filtered by the
    umask, like any newly created file.
    """
    temp_path = dest.parent / temp_name()
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            _write_all(fd, chunks)
        finally:
            os.close(fd)
        os.rename(temp_path, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
