"""What a collection holds, as callers of any cluster see it."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class CollectionEntry:
    """One file or directory inside a collection."""

    path: str
    """Relative path from the collection root."""
    kind: Literal["file", "dir"]
    size: int
    """Bytes for a file, 0 for a directory."""
