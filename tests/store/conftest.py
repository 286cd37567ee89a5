"""Fixtures for the collection store tests: a store with tiny blocks, and file helpers.

Helpers are handed out as fixtures rather than imported, so the tests do not depend on
pytest's import mode.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import damage
import pytest

from cwl_crunch.store import CollectionStore

SMALL_BLOCK = 16
"""Bytes per block in the ``store`` fixture, so multi-block files take a few bytes."""

WriteFile = Callable[..., Path]


class StoreFiles:
    """Looks at and damages the files of a store, as the tests need."""

    def __init__(self, store: CollectionStore) -> None:
        self.store = store
        self.block_size = SMALL_BLOCK

    def blocks(self) -> list[Path]:
        return self._files("blocks")

    def manifests(self) -> list[Path]:
        return self._files("manifests")

    def _files(self, name: str) -> list[Path]:
        top = self.store.root / name
        return sorted(p for p in top.rglob("*") if p.is_file()) if top.exists() else []

    def block_path(self, locator: str) -> Path:
        digest = locator.split("+")[0]
        return self.store.root / "blocks" / digest[:2] / digest

    def locators_of(self, pdh: str, path: str) -> tuple[str, ...]:
        entry = self.store.manifest(pdh).file(path)
        assert entry is not None
        return entry.locators

    @staticmethod
    def flip_byte(path: Path, offset: int = 0) -> None:
        """Damage a file in place, as a job writing through a hard link would."""
        damage.flip_byte(path, offset, stealthy=False)

    @staticmethod
    def locator(data: bytes) -> str:
        return f"{hashlib.sha256(data).hexdigest()}+{len(data)}"


@pytest.fixture
def store(tmp_path: Path) -> CollectionStore:
    return CollectionStore(tmp_path / "store", block_size=SMALL_BLOCK)


@pytest.fixture
def store_files(store: CollectionStore) -> StoreFiles:
    return StoreFiles(store)


@pytest.fixture
def write_file() -> WriteFile:
    def write(path: Path, content: bytes | str, *, executable: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        path.chmod(0o755 if executable else 0o644)
        return path

    return write
