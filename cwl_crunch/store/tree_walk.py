"""Walk a directory on disk into the files and empty directories a collection records.

Symlinks are followed, as a job's outputs or a user's inputs mean the content, not the
link. Dangling links, fifos, sockets and devices are skipped: they hold no content. A
symlink that leads back to one of its own ancestor directories would never end, so it
is an error. A job's outputs are walked confined to its job directory: a link out of it
(to the host's /tmp, say) is skipped like a dangling one, as CWL asks.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cwl_crunch.errors import StoreError
from cwl_crunch.store.collection_paths import path_problem


@dataclasses.dataclass(frozen=True)
class FoundFile:
    """A regular file (possibly reached through symlinks) to store at ``path``."""

    path: str
    source: Path
    executable: bool


@dataclasses.dataclass(frozen=True)
class FoundDir:
    """A directory with nothing to store inside it."""

    path: str


Found = FoundFile | FoundDir


def collection_name(source: Path, name: str) -> str:
    """``name`` as a collection path component; StoreError naming ``source`` if unusable."""
    problem = path_problem(name)
    if problem is None and "/" not in name:
        return name
    raise StoreError(f"cannot store {source}: its name {name!r} is not usable ({problem})")


def walk_directory(directory: Path, prefix: str, confine: Path | None = None) -> Iterator[Found]:
    """Everything below ``directory``, with collection paths under ``prefix`` ("" = root);
    with ``confine``, symlinks leading outside that directory are skipped."""
    try:
        info = os.stat(directory)
    except OSError as error:
        raise StoreError(f"cannot read directory {directory}: {error.strerror}") from None
    inside = os.path.realpath(confine) if confine is not None else None
    yield from _walk(directory, prefix, ((info.st_dev, info.st_ino),), inside)


def _leads_outside(source: Path, inside: str) -> bool:
    if not os.path.islink(source):
        return False
    target = os.path.realpath(source)
    return target != inside and not target.startswith(inside.rstrip("/") + "/")


def _walk(directory: Path, prefix: str, ancestors: tuple[tuple[int, int], ...],
          inside: str | None) -> Iterator[Found]:
    try:
        with os.scandir(directory) as scan:
            names = sorted(entry.name for entry in scan)
    except OSError as error:
        raise StoreError(f"cannot read directory {directory}: {error.strerror}") from None
    found_any = False
    for name in names:
        source = directory / name
        if inside is not None and _leads_outside(source, inside):
            continue
        try:
            info = os.stat(source)
        except FileNotFoundError:
            continue  # a dangling symlink, or removed while we walk
        except OSError as error:
            raise StoreError(f"cannot read {source}: {error.strerror}") from None
        path = f"{prefix}/{name}" if prefix else name
        if stat.S_ISREG(info.st_mode):
            found_any = True
            yield FoundFile(_checked(path, source), source, bool(info.st_mode & stat.S_IXUSR))
        elif stat.S_ISDIR(info.st_mode):
            identity = (info.st_dev, info.st_ino)
            if identity in ancestors:
                raise StoreError(f"cannot store {source}: a symlink loop leads back above it")
            found_any = True
            yield from _walk(source, _checked(path, source), (*ancestors, identity), inside)
    if not found_any and prefix:
        yield FoundDir(prefix)


def _checked(path: str, source: Path) -> str:
    collection_name(source, path.rsplit("/", 1)[-1])
    return path
