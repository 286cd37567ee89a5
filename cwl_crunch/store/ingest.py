"""Turn files on disk into a collection manifest, storing their blocks on the way.

Only blocks are written here; the caller stores the manifest afterwards, so a manifest
is never visible before all of its blocks are.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cwl_crunch.errors import StoreError
from cwl_crunch.store.blocks import BlockStore
from cwl_crunch.store.file_ingest import StoredContent, copy_file_in, move_file_in
from cwl_crunch.store.manifest import DirEntry, FileEntry, Manifest, ManifestEntry
from cwl_crunch.store.put_cache import PutCache, PutCacheSession
from cwl_crunch.store.tree_walk import (
    FoundFile,
    collection_name,
    confined_root,
    walk_directory,
)

StoreFile = Callable[[Path], StoredContent]


def manifest_of_paths(
    blocks: BlockStore, paths: Sequence[Path], block_size: int, cache: PutCache
) -> Manifest:
    """Copy files and directories in, each at the top level by its basename."""
    with cache.session() as session:
        return Manifest(entries_of_named_paths(paths, _copier(blocks, block_size, session)))


def entries_of_named_paths(paths: Sequence[Path], store_file: StoreFile) -> list[ManifestEntry]:
    """The entries of files and directories each put at the top level by its basename."""
    sources_by_name: dict[str, Path] = {}
    entries: list[ManifestEntry] = []
    for path in paths:
        name = _top_level_name(path)
        if name in sources_by_name:
            raise StoreError(
                f"cannot put both {sources_by_name[name]} and {path}: "
                f"each would be {name!r} at the top of the collection"
            )
        sources_by_name[name] = path
        entries.extend(_entries_of_path(path, name, store_file))
    return entries


def manifest_of_directory(
    blocks: BlockStore, directory: Path, block_size: int, *, move: bool,
    confine: Path | None = None,
) -> Manifest:
    """The directory's contents as a collection root; ``confine``: a job's directory,
    which the walk must not leave (OutsideJobDirectory if ``directory`` itself leads out,
    and symlinks below it that lead out are skipped)."""
    if confine is not None:
        directory = confined_root(directory, confine)
    if not directory.is_dir():
        raise StoreError(f"cannot store {directory}: it is not a directory")
    if move:
        store_file = _mover(blocks, block_size, directory)
    else:
        store_file = _copier(blocks, block_size, PutCacheSession(None))
    return Manifest(_entries_of_tree(directory, "", store_file, confine))


def _copier(blocks: BlockStore, block_size: int, session: PutCacheSession) -> StoreFile:
    def store_file(source: Path) -> StoredContent:
        return copy_file_in(blocks, source, block_size, session)

    return store_file


def _mover(blocks: BlockStore, block_size: int, owned_dir: Path) -> StoreFile:
    def store_file(source: Path) -> StoredContent:
        return move_file_in(blocks, source, block_size, owned_dir)

    return store_file


def _top_level_name(path: Path) -> str:
    name = os.path.basename(os.path.abspath(path))
    if not name:
        raise StoreError(f"cannot put {path}: it has no name to store it under")
    return collection_name(path, name)


def _entries_of_path(path: Path, name: str, store_file: StoreFile) -> Iterator[ManifestEntry]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"cannot put {path}: no such file or directory") from None
    except OSError as error:
        raise StoreError(f"cannot put {path}: {error.strerror}") from None
    if stat.S_ISREG(info.st_mode):
        yield _file_entry(FoundFile(name, path, bool(info.st_mode & stat.S_IXUSR)), store_file)
    elif stat.S_ISDIR(info.st_mode):
        yield from _entries_of_tree(path, name, store_file)
    else:
        raise StoreError(f"cannot put {path}: not a regular file or directory")


def _entries_of_tree(
    directory: Path, prefix: str, store_file: StoreFile, confine: Path | None = None
) -> Iterator[ManifestEntry]:
    for found in walk_directory(directory, prefix, confine):
        if isinstance(found, FoundFile):
            yield _file_entry(found, store_file)
        else:
            yield DirEntry(found.path)


def _file_entry(found: FoundFile, store_file: StoreFile) -> FileEntry:
    content = store_file(found.source)
    return FileEntry(found.path, content.size, found.executable, content.locators)
