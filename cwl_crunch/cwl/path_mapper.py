"""Where a step's input files are, and where its command sees them.

cwltool's own PathMapper names each input's staging directory with a random uuid and
reads every input from the local disk. Ours names it by the input's content (so the
same inputs give the same command line, and the step can be reused) and resolves every
File and Directory to a ``keep:`` location: local files are stored once (by content) and
referenced from then on.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, MutableSequence
from pathlib import Path
from typing import Any, cast

from cwltool.errors import WorkflowException
from cwltool.pathmapper import MapperEnt, PathMapper

from cwl_crunch.cwl.inplace import InplaceUpdates
from cwl_crunch.cwl.layout import KEEP_PREFIX
from cwl_crunch.errors import CrunchError
from cwl_crunch.model import ClusterClient


class Uploads:
    """Local files and directories already stored by this run (path -> keep: location)."""

    def __init__(self, client: ClusterClient | Callable[[], ClusterClient]) -> None:
        """``client`` or a function giving the client to store with now (a run stores
        with its own job's token once it has one, so that job may read what it stored)."""
        self._client_of = client if callable(client) else lambda: client
        self._stored: dict[str, str] = {}
        self._empty: str | None = None
        self._lock = threading.Lock()

    def keep_location(self, local_path: str) -> str:
        with self._lock:
            if local_path in self._stored:
                return self._stored[local_path]
        path = Path(local_path)
        if not path.exists():
            raise WorkflowException(f"Input file {local_path} not found")
        try:
            pdh = self._client_of().put_paths([path])
        except CrunchError as error:
            raise WorkflowException(f"cannot store input {local_path}: {error}") from None
        location = f"{KEEP_PREFIX}{pdh}/{urllib.parse.quote(path.name)}"
        with self._lock:
            self._stored[local_path] = location
        return location

    def empty_directory(self) -> str:
        """The keep: location of an empty directory (a literal one with no listing: a
        mount has to make it, as no child's mount will)."""
        if self._empty is None:
            with tempfile.TemporaryDirectory() as scratch:
                empty = Path(scratch) / "empty"
                empty.mkdir()
                self._empty = self.keep_location(str(empty))
        return self._empty


def content_key(obj: Any, resolved: str) -> str:
    """A short name for a staging directory that depends only on what is staged."""
    if resolved.startswith(KEEP_PREFIX):
        material = resolved
    elif "contents" in obj:
        material = f"{obj['basename']}\0{obj.get('contents')}"
    else:
        material = f"{obj['basename']}\0{_listing_identity(obj)}"
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def _listing_identity(obj: Any) -> str:
    parts = []
    for child in obj.get("listing", []) or []:
        location = child.get("location", "")
        identity = location if not location.startswith("_:") else _listing_identity(child)
        parts.append(f"{child.get('basename')}={identity}={child.get('contents', '')}")
    return "|".join(sorted(parts))


class CrunchPathMapper(PathMapper):
    """Maps every input to a ``keep:`` location (or literal contents) and a target path
    under a content-named directory of the stage dir."""

    def __init__(
        self,
        referenced_files: MutableSequence[Any],
        basedir: str,
        stagedir: str,
        separateDirs: bool = True,
        *,
        uploads: Uploads,
        updates: InplaceUpdates | None = None,
    ) -> None:
        self._uploads = uploads
        self._updates = updates or InplaceUpdates()
        super().__init__(referenced_files, basedir, stagedir, separateDirs)

    def setup(
        self, referenced_files: MutableSequence[Any], basedir: str
    ) -> None:
        for fob in referenced_files:
            stagedir = self.stagedir
            if self.separateDirs:
                key = content_key(fob, self._resolve(fob, basedir))
                stagedir = os.path.join(self.stagedir, key)
            self.visit(fob, stagedir, basedir, copy=bool(fob.get("writable", False)), staged=True)

    def visit(
        self,
        obj: Any,
        stagedir: str,
        basedir: str,
        copy: bool = False,
        staged: bool = False,
        inside: str | None = None,
    ) -> None:
        """Map ``obj``; ``inside`` is the keep: location of the stored directory that
        already holds it (its children need no storing or mounting of their own)."""
        location = obj["location"]
        if location in self._pathmap:
            return
        stagedir = cast(str | None, obj.get("dirname")) or stagedir
        target = os.path.join(stagedir, obj["basename"])
        quoted = urllib.parse.quote(obj["basename"])
        if obj["class"] == "Directory":
            resolved = f"{inside}/{quoted}" if inside else self._resolve(obj, basedir)
            if resolved.startswith("_:") and not obj.get("listing"):
                resolved = self._uploads.empty_directory()
            kind = "WritableDirectory" if copy else "Directory"
            self._pathmap[location] = MapperEnt(resolved, target, kind, staged)
            # A stored directory brings its listing along; a literal one does not.
            literal = resolved.startswith("_:")
            for child in cast(list[Any], obj.get("listing", []) or []):
                self.visit(child, target, basedir, bool(child.get("writable", copy)),
                           staged and literal, None if literal else resolved)
            return
        if "contents" in obj and location.startswith("_:"):
            kind = "CreateWritableFile" if copy else "CreateFile"
            self._pathmap[location] = MapperEnt(obj["contents"], target, kind, staged)
        else:
            kind = "WritableFile" if copy else "File"
            resolved = f"{inside}/{quoted}" if inside else self._resolve(obj, basedir)
            self._pathmap[location] = MapperEnt(resolved, target, kind, staged)
        for secondary in cast(list[Any], obj.get("secondaryFiles", []) or []):
            self.visit(secondary, stagedir, basedir, bool(secondary.get("writable", copy)),
                       staged)

    def _resolve(self, obj: Any, basedir: str) -> str:
        """The keep: location of a stored input (storing a local one first)."""
        location: str = obj["location"]
        if location.startswith(KEEP_PREFIX):
            return self._updates.current(location)
        if location.startswith("_:"):
            return location
        if location.startswith("file://"):
            local = urllib.parse.unquote(urllib.parse.urlsplit(location).path)
        elif "://" not in location:
            local = os.path.join(basedir, location)
        else:
            return location  # http(s) and friends: not staged by us
        return self._uploads.keep_location(local)
