"""Outputs of remote steps, left where they were made until something here reads them.

A step run on a peer returns an output object over ``keep:`` locations of a collection
on that peer, and nothing is copied home then. What reads it here pulls the part it
needs (the blocks of the files it names, see store.manifest_subset) as a collection of
its own, and the locations it is given name that part: a home step's mounts, the run's
own outputs (copied to ``--outdir``), cwltool reading a file (``loadContents``). Listing
a remote collection reads its entries on the peer and moves no block. A step on the
same peer gets the locations unchanged: a chain of steps there moves nothing home.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from cwl_crunch.cwl.layout import keep_paths, move_to_collections
from cwl_crunch.federation.links import PeerLinks
from cwl_crunch.model import CollectionEntry, CollectionMount, JobSpec


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a remote collection is: the peer, and the job there that made it."""

    peer_id: str
    job_uuid: str


class RemoteOutputs:
    """The remote collections a run was given (by its remote steps), and the parts of
    them pulled home so far."""

    def __init__(self, links: Callable[[], PeerLinks]) -> None:
        """``links``: the run's peer links as its current token (the run's own once it
        is a job: what it pulls, it may read)."""
        self._links = links
        self._origins: dict[str, Origin] = {}
        self._parts: dict[tuple[str, frozenset[str]], str] = {}
        self._entries: dict[str, list[CollectionEntry]] = {}
        self._lock = threading.Lock()

    def note(self, pdh: str, peer_id: str, job_uuid: str) -> None:
        """Collection ``pdh`` was made by job ``job_uuid`` on ``peer_id``."""
        with self._lock:
            self._origins.setdefault(pdh, Origin(peer_id, job_uuid))

    def origin(self, pdh: str) -> Origin | None:
        with self._lock:
            return self._origins.get(pdh)

    def entries(self, pdh: str) -> list[CollectionEntry]:
        """The files and directories of a remote collection (read on its peer once)."""
        origin = self._origin_of(pdh)
        with self._lock:
            found = self._entries.get(pdh)
        if found is None:
            found = self._links().remote_entries(origin.peer_id, pdh, origin.job_uuid)
            with self._lock:
                self._entries[pdh] = found
        return found

    def part(self, pdh: str, paths: set[str]) -> str:
        """The PDH of the part of remote collection ``pdh`` at or below ``paths``,
        pulled home the first time it is asked for."""
        origin = self._origin_of(pdh)
        key = (pdh, frozenset(paths))
        with self._lock:
            found = self._parts.get(key)
        if found is None:
            found = self._links().pull_part(origin.peer_id, pdh, sorted(paths),
                                            origin.job_uuid)
            with self._lock:
                self._parts[key] = found
        return found

    def localized_spec(self, spec: JobSpec) -> JobSpec:
        """``spec`` with each mount of a remote collection on the part it mounts."""
        wanted: dict[str, set[str]] = {}
        for mount in spec.mounts.values():
            if isinstance(mount, CollectionMount) and self.origin(mount.pdh) is not None:
                wanted.setdefault(mount.pdh, set()).add(mount.path)
        if not wanted:
            return spec
        parts = {pdh: self.part(pdh, paths) for pdh, paths in wanted.items()}
        mounts = {target: dataclasses.replace(mount, pdh=parts[mount.pdh])
                  if isinstance(mount, CollectionMount) and mount.pdh in parts else mount
                  for target, mount in spec.mounts.items()}
        return dataclasses.replace(spec, mounts=mounts)

    def localized(self, value: Any, *, staying_on: str | None = None) -> Any:
        """A copy of an object whose Files and Directories in remote collections name
        the parts they need, pulled home (those on peer ``staying_on`` are left as they
        are: it has them)."""
        def elsewhere(pdh: str) -> bool:
            origin = self.origin(pdh)
            return origin is not None and origin.peer_id != staying_on

        wanted = keep_paths(value, elsewhere)
        if not wanted:
            return value
        value = copy.deepcopy(value)
        move_to_collections(value, {pdh: self.part(pdh, paths)
                                    for pdh, paths in wanted.items()})
        return value

    def _origin_of(self, pdh: str) -> Origin:
        origin = self.origin(pdh)
        if origin is None:
            raise KeyError(f"collection {pdh} is not a remote step's")
        return origin
