"""Part of a collection: the manifest of only some of its files and directories.

A cluster that needs a few files of a large collection held elsewhere takes a collection
of just those (same paths, a PDH of its own) and so copies only their blocks: a peer
pulls what a process can read (sent inputs), a home cluster what its next step or its
run's outputs read (a remote step's outputs).
"""

from __future__ import annotations

from collections.abc import Iterable

from cwl_crunch.store.collection_paths import is_below, unescape_path


def manifest_subset(text: bytes, paths: Iterable[str]) -> bytes:
    """The lines of manifest ``text`` (signed or bare) for the entries at or below
    ``paths`` ("" is the whole collection), in their order; the first line (the
    header) is always kept."""
    wanted = set(paths)
    if "" in wanted:
        return text
    lines = [line for line in text.split(b"\n") if line]
    if not lines:
        return text
    kept = [lines[0], *(line for line in lines[1:] if _selected(line, wanted))]
    return b"\n".join(kept) + b"\n"


def _selected(line: bytes, paths: set[str]) -> bool:
    """Whether a manifest line (a file, or an empty directory) is one of ``paths`` or
    below one."""
    fields = line.decode("utf-8").split(" ")
    path = unescape_path(fields[1])
    return any(path == wanted or is_below(path, wanted) for wanted in paths)
