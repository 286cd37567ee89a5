"""cwltool file access that also reads ``keep:<pdh>/<path>`` locations from the cluster.

cwltool loads inputs (sizes, listings, loadContents, secondaryFiles) and collects outputs
(glob, cwl.output.json, checksums) through one StdFsAccess object. A step's outputs live in
a collection, never on the runner's disk, so that object must read collections through the
ClusterClient. Every other location goes to StdFsAccess unchanged.

Locations are URIs: the path after the PDH is URL-quoted (``item%20%231.txt``), as cwltool
expects of any scheme. Glob patterns are the exception: cwltool joins a tool's raw glob onto
the output location, so the path of a pattern is taken literally.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from cwltool.stdfsaccess import StdFsAccess

from cwl_crunch.cwl.inplace import InplaceUpdates
from cwl_crunch.cwl.layout import JOB_ROOT, KEEP_PREFIX
from cwl_crunch.errors import ApiError, CollectionNotFound, PathNotFound
from cwl_crunch.model import ClusterClient, CollectionEntry
from cwl_crunch.store.references import split_reference

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from cwl_crunch.cwl.remote_outputs import RemoteOutputs

_CACHED_COLLECTIONS = 256
"""Trees kept per client: enough for a workflow's working set, bounded for huge scatters."""

_GLOB_MAGIC = re.compile(r"[*?[]")
PREFETCH_THREADS = 8


class _Tree:
    """One collection's entries, indexed for lookups and one-level listings."""

    def __init__(self, entries: list[CollectionEntry]) -> None:
        self.kinds: dict[str, str] = {"": "dir"}
        self.sizes: dict[str, int] = {}
        for entry in entries:
            self.kinds[entry.path] = entry.kind
            self.sizes[entry.path] = entry.size
            parent = posixpath.dirname(entry.path)
            while parent and parent not in self.kinds:  # a client may list only files
                self.kinds[parent] = "dir"
                parent = posixpath.dirname(parent)
        self.children: dict[str, list[str]] = {}
        for path in self.kinds:
            if path:
                parent, name = posixpath.split(path)
                self.children.setdefault(parent, []).append(name)
        for names in self.children.values():
            names.sort()


_TREES: weakref.WeakKeyDictionary[ClusterClient, OrderedDict[str, _Tree]] = (
    weakref.WeakKeyDictionary())
_TREES_LOCK = threading.Lock()


def _cached_tree(client: ClusterClient, pdh: str) -> _Tree:
    """The collection's tree, shared by every fs access of the client.

    cwltool makes a new fs access for each job and each output collection, so a cache per
    object would list a scatter's shared input once per job. Collections are immutable, so
    a cached tree is never stale. A PDH the cluster lacks is not cached: it may arrive.
    """
    with _TREES_LOCK:
        trees = _TREES.setdefault(client, OrderedDict())
        tree = trees.get(pdh)
        if tree is not None:
            trees.move_to_end(pdh)
            return tree
    tree = _Tree(client.list_collection(pdh))  # outside the lock: it may be slow
    with _TREES_LOCK:
        trees[pdh] = tree
        if len(trees) > _CACHED_COLLECTIONS:
            trees.popitem(last=False)
    return tree


def keep_location(pdh: str, path: str) -> str:
    """The ``keep:`` URI of a path in a collection ("" is the root), path URL-quoted."""
    return KEEP_PREFIX + pdh + ("/" + quote(path, safe="/") if path else "")


def split_keep_location(location: str) -> tuple[str, str]:
    """``(pdh, decoded path)`` of a ``keep:`` URI; InvalidManifest if it is malformed."""
    pdh, _, quoted = location.removeprefix(KEEP_PREFIX).partition("/")
    path = unquote(quoted).strip("/")
    return split_reference(f"{pdh}/{path}" if path else pdh)


class CrunchFsAccess(StdFsAccess):
    """StdFsAccess that reads ``keep:`` locations through the cluster client."""

    def __init__(self, basedir: str, client: ClusterClient,
                 updates: InplaceUpdates | None = None,
                 remote: RemoteOutputs | None = None) -> None:
        """``remote``: the outputs of the run's remote steps (read where they are)."""
        super().__init__(basedir)
        self.client = client
        self.updates = updates or InplaceUpdates()
        self.remote = remote

    def _tree(self, pdh: str) -> _Tree:
        """The collection's tree; CollectionNotFound if the cluster does not hold it."""
        if self.remote is not None and self.remote.origin(pdh) is not None:
            return _Tree(self.remote.entries(pdh))
        return _cached_tree(self.client, pdh)

    def _kind(self, location: str) -> str | None:
        """The kind, "file" or "dir"; None when the collection or the path is not there."""
        pdh, path = split_keep_location(self.updates.current(location))
        try:
            return self._tree(pdh).kinds.get(path)
        except CollectionNotFound:
            return None

    def _existing(self, location: str) -> tuple[str, str, str]:
        """``(pdh, path, kind)``, or the store error that says what is missing."""
        pdh, path = split_keep_location(self.updates.current(location))
        kind = self._tree(pdh).kinds.get(path)
        if kind is None:
            raise PathNotFound(f"collection {pdh} has no file or directory {path!r}")
        return pdh, path, kind

    def glob(self, pattern: str) -> list[str]:
        """Shell-style matches, one path segment at a time (``*`` never crosses ``/``)."""
        if not pattern.startswith(KEEP_PREFIX):
            return super().glob(pattern)
        pdh, _, rest = pattern.removeprefix(KEEP_PREFIX).partition("/")
        split_reference(pdh)
        relative = posixpath.normpath(rest or ".")
        if relative == ".." or relative.startswith("../"):
            return []  # above the collection root, where a local glob would leave outdir
        try:
            tree = self._tree(pdh)
        except CollectionNotFound:
            return []
        matches = [""]
        for segment in relative.split("/") if relative != "." else []:
            matches = [found for parent in matches for found in _match(tree, parent, segment)]
        return sorted(keep_location(pdh, path) for path in matches)

    def open(self, fn: str, mode: str) -> IO[Any]:
        """A stream over the verified content; text mode decodes UTF-8."""
        if not fn.startswith(KEEP_PREFIX):
            return super().open(fn, mode)
        if "r" not in mode or set(mode) - {"r", "b", "t"}:
            raise PermissionError(f"collections are immutable: cannot open {fn} as {mode!r}")
        pdh, path, kind = self._existing(fn)
        if kind != "file":
            raise PathNotFound(f"cannot open {path!r} of collection {pdh}: it is a directory")
        if self.remote is not None and self.remote.origin(pdh) is not None:
            pdh = self.remote.part(pdh, {path})  # only this file comes home
        binary = io.BufferedReader(_ChunkReader(self.client.read_file(pdh, path)))
        return binary if "b" in mode else io.TextIOWrapper(binary, encoding="utf-8")

    def exists(self, fn: str) -> bool:
        return self._kind(fn) is not None if fn.startswith(KEEP_PREFIX) else super().exists(fn)

    def size(self, fn: str) -> int:
        if not fn.startswith(KEEP_PREFIX):
            return super().size(fn)
        try:
            pdh, path, kind = self._existing(fn)
        except (CollectionNotFound, ApiError) as error:
            if isinstance(error, ApiError) and error.status != 403:
                raise
            # Held by a peer only (its resident data: the peer lists it to nobody; a
            # job's token is told 403 for what is not here): cwltool leaves the size out.
            raise FileNotFoundError(str(error)) from None
        return self._tree(pdh).sizes.get(path, 0) if kind == "file" else 0

    def isfile(self, fn: str) -> bool:
        return self._kind(fn) == "file" if fn.startswith(KEEP_PREFIX) else super().isfile(fn)

    def isdir(self, fn: str) -> bool:
        return self._kind(fn) == "dir" if fn.startswith(KEEP_PREFIX) else super().isdir(fn)

    def listdir(self, fn: str) -> list[str]:
        """Full locations of the directory's children (cwltool's get_listing needs them)."""
        if not fn.startswith(KEEP_PREFIX):
            return super().listdir(fn)
        pdh, path, kind = self._existing(fn)
        if kind != "dir":
            raise PathNotFound(f"cannot list {path!r} of collection {pdh}: it is a file")
        names = self._tree(pdh).children.get(path, [])
        return [keep_location(pdh, posixpath.join(path, name)) for name in names]

    def join(self, path: str, *paths: str) -> str:
        """os.path.join, where a ``keep:`` part restarts the result as an absolute one would.

        cwltool turns the glob ``.`` into ``join(outdir, outdir)``, which must give outdir.
        """
        parts = [path, *paths]
        start = max((i for i, part in enumerate(parts) if part.startswith(KEEP_PREFIX)),
                    default=0)
        return os.path.join(*parts[start:])

    def realpath(self, path: str) -> str:
        """Identity for ``keep:`` and job paths: these are not on this host to resolve.

        cwltool passes the fixed job dirs through realpath; a symlinked /tmp must not
        change them, since they are part of every reuse key.
        """
        if path.startswith(KEEP_PREFIX) or path == JOB_ROOT or path.startswith(JOB_ROOT + "/"):
            return path
        return super().realpath(path)


def _match(tree: _Tree, parent: str, segment: str) -> list[str]:
    """Children of ``parent`` matching one glob segment; like a shell, ``*`` skips dotfiles."""
    if tree.kinds.get(parent) != "dir":
        return []
    if not _GLOB_MAGIC.search(segment):
        child = posixpath.join(parent, segment)
        return [child] if child in tree.kinds else []
    return [
        posixpath.join(parent, name)
        for name in tree.children.get(parent, [])
        if fnmatchcase(name, segment) and (segment.startswith(".") or not name.startswith("."))
    ]


class _ChunkReader(io.RawIOBase):
    """A raw stream over read_file's verified chunks, so a large file is never all in memory."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        """Close the chunk generator too, so an early close releases what it holds."""
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if callable(close):
                close()
        super().close()


class MaterializingFsAccess(CrunchFsAccess):
    """CrunchFsAccess whose realpath copies ``keep:`` locations out to local files.

    cwltool's relocateOutputs can only move local paths. With this access and the staging
    dir among its source directories, it moves verified copies into ``--outdir``; a link
    into the store would let a user's edit corrupt stored blocks.
    """

    def __init__(self, basedir: str, client: ClusterClient, staging_dir: Path,
                 updates: InplaceUpdates | None = None) -> None:
        super().__init__(basedir, client, updates)
        self.staging_dir = Path(staging_dir)
        self._copied: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._collection_locks: dict[str, threading.Lock] = {}  # guarded by _lock

    def realpath(self, path: str) -> str:
        if not path.startswith(KEEP_PREFIX):
            return super().realpath(path)
        pdh, inner = split_keep_location(self.updates.current(path))
        with self._lock:
            collection_lock = self._collection_locks.setdefault(pdh, threading.Lock())
        with collection_lock:  # copies out of one collection may nest: one at a time
            return str(self._materialize(pdh, inner))

    def prefetch(self, locations: Iterable[str]) -> None:
        """Copy these out now, several at a time, so that cwltool's relocation, which
        asks for them one after another, finds them copied. Each copy is a few file
        system calls (and a request, unless the client kept the bytes): one after
        another, a 500-file output took 0.8 s on a disk where a file costs ~1 ms."""
        wanted = sorted({location for location in locations
                         if location.startswith(KEEP_PREFIX)})
        with ThreadPoolExecutor(PREFETCH_THREADS) as pool:
            for _ in pool.map(self.realpath, wanted):
                pass

    def _materialize(self, pdh: str, path: str) -> Path:
        """``staging_dir/<pdh>/<path>``, copied unless it or a parent dir was already."""
        dest = self.staging_dir / pdh / path
        parts = path.split("/") if path else []
        ancestors = {(pdh, "/".join(parts[:i])) for i in range(len(parts) + 1)}
        if self._copied & ancestors and os.path.lexists(dest):
            return dest
        if os.path.isdir(dest) and not os.path.islink(dest):
            # Parts of it were copied first. get_collection would copy *into* the dir
            # (like cp -r); a fresh copy puts the same bytes back at the same paths.
            shutil.rmtree(dest)
        elif os.path.lexists(dest):
            dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.client.get_collection(pdh, path, dest)
        self._copied.add((pdh, path))
        return dest
