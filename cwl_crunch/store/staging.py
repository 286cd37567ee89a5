"""Place collection files outside the store: for a job (stage) or for a person (export).

A job reading an input gets, where possible, a hard link to the block file itself: no
copy, and the block's read-only mode and sentinel mtime make damage by the job visible
to the next cheap stat. The link is hashed before the job gets it, unless this store
instance already saw that inode intact with an unchanged stat (ctime included); see
:mod:`cwl_crunch.store.blocks` for the window that leaves. Everything else is a real
copy, each block verified as it is written. Exported files are always copies, since
their new owner may edit them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cwl_crunch.errors import PathNotFound, StoreError
from cwl_crunch.store.atomic import write_beside
from cwl_crunch.store.blocks import BlockStore
from cwl_crunch.store.collection_paths import is_below
from cwl_crunch.store.listing import checked_path
from cwl_crunch.store.manifest import FileEntry, Manifest


class Placer:
    """Writes one collection's files and directories below a destination."""

    def __init__(self, blocks: BlockStore, manifest: Manifest) -> None:
        self.blocks = blocks
        self.manifest = manifest
        self.pdh = manifest.pdh

    def stage(self, path: str, dest: Path, *, writable: bool) -> None:
        """``dest`` becomes the file or directory at ``path``; it must not exist yet."""
        path = self._existing(path)
        file = self.manifest.file(path)
        _guarded(dest, dest.parent.mkdir, parents=True, exist_ok=True)
        if file is not None:
            self._stage_file(file, dest, writable=writable)
        else:
            self._place_tree(path, dest, writable=writable, linking=True)

    def export(self, path: str, dest: Path) -> None:
        """Copy out like ``cp -r``: into ``dest`` by basename if it is a directory.

        The whole collection (``path`` "") has no basename: its contents go into ``dest``.
        Existing files are overwritten, existing directories merged.
        """
        path = self._existing(path)
        target = dest / path.rsplit("/", 1)[-1] if dest.is_dir() and path else dest
        _guarded(target, target.parent.mkdir, parents=True, exist_ok=True)
        file = self.manifest.file(path)
        if file is not None:
            self._copy_file(file, target, writable=True)
        else:
            self._place_tree(path, target, writable=True, linking=False)

    def _existing(self, path: str) -> str:
        path = checked_path(path, self.pdh)
        if self.manifest.file(path) is None and not self.manifest.is_dir(path):
            raise PathNotFound(f"collection {self.pdh} has no file or directory {path!r}")
        return path

    def _place_tree(self, path: str, dest: Path, *, writable: bool, linking: bool) -> None:
        def below(child: str) -> Path:
            return dest / child[len(path) + 1 :] if path else dest / child

        _guarded(dest, dest.mkdir, exist_ok=True)
        # Sorted, so every directory is made before anything inside it.
        for directory in sorted(d for d in self.manifest.directories if is_below(d, path)):
            _guarded(below(directory), below(directory).mkdir, exist_ok=True)
        for file in self.manifest.files():
            if not is_below(file.path, path):
                continue
            if linking:
                self._stage_file(file, below(file.path), writable=writable)
            else:
                self._copy_file(file, below(file.path), writable=writable)

    def _stage_file(self, file: FileEntry, dest: Path, *, writable: bool) -> None:
        if os.path.lexists(dest):
            raise StoreError(f"cannot stage {file.path} of {self.pdh}: {dest} already exists")
        single_block = len(file.locators) == 1
        if writable or file.executable or not single_block or not self._link(file, dest):
            self._copy_file(file, dest, writable=writable)

    def _link(self, file: FileEntry, dest: Path) -> bool:
        """Hard-link the file's only block at ``dest``; False if a copy must do instead.

        Staging is a read: the block is hashed first unless this store instance has
        seen that very inode intact since anything last touched it (BlockStore.link_to).
        """
        locator = file.locators[0]
        if not self.blocks.is_untouched(locator):
            data = self.blocks.read_verified(locator, self.pdh)  # CorruptBlock if damaged
            try:
                # Intact but touched (someone holds a writable path to that inode):
                # store a fresh inode rather than hand out the shared one.
                self.blocks.put_known(locator, data)
            except OSError:
                return False
        return self.blocks.link_to(locator, dest, self.pdh)

    def _copy_file(self, file: FileEntry, dest: Path, *, writable: bool) -> None:
        mode = 0o777 if file.executable else 0o666
        if not writable:
            mode &= 0o555
        chunks = self.blocks.verified_views(file.locators, self.pdh)
        _guarded(dest, write_beside, dest, chunks, mode=mode)


def _guarded(dest: Path, action: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """``action(*args, **kwargs)``, reporting an OSError as a StoreError naming ``dest``."""
    try:
        action(*args, **kwargs)
    except OSError as error:
        raise StoreError(f"cannot write {dest}: {error.strerror or error}") from None
