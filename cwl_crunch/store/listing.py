"""What a collection holds below a path, as the flat entries callers list and walk."""

from __future__ import annotations

from cwl_crunch.errors import PathNotFound
from cwl_crunch.model.collections import CollectionEntry
from cwl_crunch.store.collection_paths import is_below, path_problem
from cwl_crunch.store.manifest import Manifest


def checked_path(path: str, pdh: str) -> str:
    """``path`` without leading or trailing slashes; PathNotFound if it could climb out."""
    stripped = path.strip("/")
    if stripped == "":
        return ""
    problem = path_problem(stripped)
    if problem is not None:
        raise PathNotFound(f"collection {pdh} has no path {path!r}: {problem}")
    return stripped


def entry_at(manifest: Manifest, path: str) -> CollectionEntry:
    """The file or directory at ``path``; PathNotFound if there is none."""
    path = checked_path(path, manifest.pdh)
    found = manifest.file(path)
    if found is not None:
        return CollectionEntry(found.path, "file", found.size)
    if not manifest.is_dir(path):
        raise PathNotFound(f"collection {manifest.pdh} has no file or directory {path!r}")
    return CollectionEntry(path, "dir", 0)


def list_entries(manifest: Manifest, path: str = "") -> list[CollectionEntry]:
    """Entries strictly below ``path``, recursively, sorted; a file path gives itself."""
    top = entry_at(manifest, path)
    if top.kind == "file":
        return [top]
    path = top.path
    entries = [
        CollectionEntry(file.path, "file", file.size)
        for file in manifest.files()
        if is_below(file.path, path)
    ]
    entries += [
        CollectionEntry(directory, "dir", 0)
        for directory in manifest.directories
        if is_below(directory, path)
    ]
    return sorted(entries, key=lambda entry: entry.path.encode("utf-8"))
