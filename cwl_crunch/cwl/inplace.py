"""InplaceUpdateRequirement on immutable collections: a run-wide table of replacements.

A tool with ``inplaceUpdate: true`` changes a writable input where it lies, and later
steps that read the same File or Directory must see the change. Collections never
change, so the changed content is a new collection (the step's output); the run notes
"this location now reads as that one" and its file access and staging follow the note.
"""

from __future__ import annotations

import threading


class InplaceUpdates:
    """``keep:`` locations replaced by the content a step left in their place."""

    def __init__(self) -> None:
        self._replaced: dict[str, str] = {}
        self._lock = threading.Lock()

    def record(self, old: str, new: str) -> None:
        with self._lock:
            if old != new:
                self._replaced[old] = new

    def current(self, location: str) -> str:
        """Where ``location`` (or the directory holding it) now reads from."""
        if not self._replaced:
            return location
        with self._lock:
            for _ in range(len(self._replaced) + 1):  # each replacement followed once
                moved = self._lookup(location)
                if moved is None:
                    return location
                location = moved
        return location

    def _lookup(self, location: str) -> str | None:
        if location in self._replaced:
            return self._replaced[location]
        parent = location
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in self._replaced:
                return self._replaced[parent] + location[len(parent):]
        return None
