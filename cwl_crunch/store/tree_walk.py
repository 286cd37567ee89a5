"""Walk a directory on disk into the files and empty directories a collection records.

Symlinks are followed, as a job's outputs or a user's inputs mean the content, not the
link. Dangling links, fifos, sockets and devices are skipped: they hold no content. A
symlink that leads back to one of its own ancestor directories would never end: in a
user's put that is an error (the user can fix the tree; storing part of it silently
would be worse), in a job's outputs it is skipped like a dangling link.

A job's outputs are walked confined to its job directory (``confine``): a link out of it
(to the host's /tmp, say) is skipped like a dangling one, as CWL asks; and the root
itself, or any directory on the way to it, being a symlink out of the job directory is
refused with OutsideJobDirectory (see :func:`confined_root`). Ingest moves a job's files
into the store, so a job pointing its output dir at someone else's directory must not
make ingest adopt, chmod or later delete that directory's files.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cwl_crunch.errors import OutsideJobDirectory, StoreError
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
    with ``confine``, the walk is confined to that directory (see the module's doc)."""
    inside = None
    if confine is not None:
        directory = confined_root(directory, confine)
        inside = os.path.realpath(confine)
    try:
        info = os.stat(directory)
    except OSError as error:
        raise StoreError(f"cannot read directory {directory}: {error.strerror}") from None
    yield from _walk(directory, prefix, ((info.st_dev, info.st_ino),), inside)


def confined_root(directory: Path, confine: Path) -> Path:
    """The real path of ``directory``, which must resolve to ``confine`` or below it.

    ``confine`` itself must be a directory, not a symlink (a job that replaced its own
    job directory by a link would otherwise confine the walk to wherever it points).
    OutsideJobDirectory, naming the symlink that leads out, otherwise.
    """
    try:
        info = os.lstat(confine)
    except OSError as error:
        raise StoreError(f"cannot read directory {confine}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise OutsideJobDirectory(
            f"refused to store {directory}: {confine} was replaced by a symlink to "
            f"{os.readlink(confine)}; nothing there was stored or changed")
    inside = os.path.realpath(confine)
    real = os.path.realpath(directory)
    if is_within(real, inside):
        return Path(real)
    raise OutsideJobDirectory(
        f"refused to store {directory}: {_escaping_link(directory, confine, inside)} "
        f"outside {confine}; nothing there was stored or changed")


def is_within(path: str, directory: str) -> bool:
    """Whether the real path ``path`` is the real path ``directory`` or below it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _escaping_link(directory: Path, confine: Path, inside: str) -> str:
    """The first symlink on the way from ``confine`` to ``directory`` leading out."""
    if directory.is_relative_to(confine):
        step = confine
        for part in directory.relative_to(confine).parts:
            step = step / part
            if os.path.islink(step) and not is_within(os.path.realpath(step), inside):
                return f"{step.relative_to(confine)} is a symlink to {os.readlink(step)},"
    return f"it leads to {os.path.realpath(directory)},"


def _leads_outside(source: Path, inside: str) -> bool:
    return os.path.islink(source) and not is_within(os.path.realpath(source), inside)


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
            if inside is not None and error.errno == errno.ELOOP:
                continue  # links leading to each other: a job's outputs skip them
            raise StoreError(f"cannot read {source}: {error.strerror}") from None
        path = f"{prefix}/{name}" if prefix else name
        if stat.S_ISREG(info.st_mode):
            found_any = True
            yield FoundFile(_checked(path, source), source, bool(info.st_mode & stat.S_IXUSR))
        elif stat.S_ISDIR(info.st_mode):
            identity = (info.st_dev, info.st_ino)
            if identity in ancestors:
                if inside is not None:
                    continue
                raise StoreError(f"cannot store {source}: a symlink loop leads back above it")
            found_any = True
            yield from _walk(source, _checked(path, source), (*ancestors, identity), inside)
    if not found_any and prefix:
        yield FoundDir(prefix)


def _checked(path: str, source: Path) -> str:
    collection_name(source, path.rsplit("/", 1)[-1])
    return path
