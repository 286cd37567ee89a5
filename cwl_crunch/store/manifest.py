"""The canonical manifest: a collection's directory tree as text, hashed into its PDH.

Format (UTF-8, every line ends with ``\\n``)::

    cwl-crunch-manifest 1
    d <path>                                   an EMPTY directory
    f <path> <x|-> <size> <locator> ...        a file; a zero-length file has no locators

Entries are sorted by the UTF-8 bytes of the path; paths are percent-escaped (see
:mod:`cwl_crunch.store.collection_paths`). Directories that hold anything are implied by
their contents, so a tree has exactly one manifest text and therefore one PDH.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from functools import cached_property

from cwl_crunch.errors import InvalidManifest
from cwl_crunch.store.collection_paths import escape_path, parent_dirs, path_problem, unescape_path
from cwl_crunch.store.locators import parse_locator, pdh_for

HEADER = b"cwl-crunch-manifest 1\n"


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """A file of the collection and the blocks that hold its content, in order."""

    path: str
    size: int
    executable: bool
    locators: tuple[str, ...]

    def line(self) -> str:
        mode = "x" if self.executable else "-"
        return " ".join(["f", escape_path(self.path), mode, str(self.size), *self.locators])


@dataclasses.dataclass(frozen=True)
class DirEntry:
    """An empty directory of the collection (non-empty ones are implied by their files)."""

    path: str

    def line(self) -> str:
        return f"d {escape_path(self.path)}"


ManifestEntry = FileEntry | DirEntry


def _sort_key(entry: ManifestEntry) -> bytes:
    return entry.path.encode("utf-8")


class Manifest:
    """A validated, canonical collection tree. Immutable."""

    def __init__(self, entries: Iterable[ManifestEntry]) -> None:
        """Build from entries in any order; ``d`` entries of non-empty dirs are dropped."""
        given = sorted(entries, key=_sort_key)
        for entry in given:
            _check_entry(entry)
        self._directories = frozenset(
            parent for entry in given for parent in parent_dirs(entry.path)
        )
        _check_unique(given, self._directories)
        self.entries: tuple[ManifestEntry, ...] = tuple(
            entry
            for entry in given
            if isinstance(entry, FileEntry) or entry.path not in self._directories
        )
        self._files = {entry.path: entry for entry in self.files()}
        self._directories |= {e.path for e in self.entries if isinstance(e, DirEntry)}

    def files(self) -> Iterator[FileEntry]:
        """Every file, in manifest order."""
        return (entry for entry in self.entries if isinstance(entry, FileEntry))

    def file(self, path: str) -> FileEntry | None:
        """The file at ``path``, or None if there is no file there."""
        return self._files.get(path)

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory; "" is the collection root, always a directory."""
        return path == "" or path in self._directories

    @property
    def directories(self) -> frozenset[str]:
        """Every directory below the root, empty or not."""
        return self._directories

    @cached_property
    def text(self) -> bytes:
        lines = [entry.line() + "\n" for entry in self.entries]
        return HEADER + "".join(lines).encode("utf-8")

    def to_text(self) -> bytes:
        """The canonical manifest text."""
        return self.text

    @cached_property
    def pdh(self) -> str:
        """The portable data hash: hash and length of the canonical text."""
        return pdh_for(self.text)

    @classmethod
    def from_text(cls, text: bytes) -> Manifest:
        """Parse canonical manifest text; InvalidManifest for anything else."""
        if not text.startswith(HEADER):
            raise InvalidManifest("manifest does not start with 'cwl-crunch-manifest 1'")
        try:
            body = text[len(HEADER) :].decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidManifest(f"manifest is not valid UTF-8: {error}") from None
        if body and not body.endswith("\n"):
            raise InvalidManifest("manifest does not end with a newline")
        entries = [_parse_line(number, line) for number, line in _numbered_lines(body)]
        _check_sorted(entries)
        manifest = cls(entries)
        if manifest.text != text:
            # Every other deviation was caught above with a precise message.
            raise InvalidManifest("manifest lists a 'd' entry for a directory that is not empty")
        return manifest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Manifest) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Manifest({self.pdh}, {len(self.entries)} entries)"


def _numbered_lines(body: str) -> Iterator[tuple[int, str]]:
    # Line 1 is the header; split on "\n" only, as a path may not hold a raw newline.
    for index, line in enumerate(body.split("\n")[:-1]):
        yield index + 2, line


def _parse_line(number: int, line: str) -> ManifestEntry:
    fields = line.split(" ")
    try:
        if fields[0] == "d" and len(fields) == 2:
            return DirEntry(unescape_path(fields[1]))
        if fields[0] == "f" and len(fields) >= 4 and fields[2] in ("x", "-"):
            size = fields[3]
            if not (size.isascii() and size.isdigit()) or (size != "0" and size[0] == "0"):
                raise InvalidManifest(f"bad file size {size!r}")
            path = unescape_path(fields[1])
            return FileEntry(path, int(size), fields[2] == "x", tuple(fields[4:]))
        raise InvalidManifest("expected 'd <path>' or 'f <path> <x|-> <size> <locator>...'")
    except InvalidManifest as error:
        raise InvalidManifest(f"manifest line {number}: {error}") from None


def _check_sorted(entries: list[ManifestEntry]) -> None:
    keys = [_sort_key(entry) for entry in entries]
    for index in range(1, len(keys)):
        if keys[index - 1] >= keys[index]:
            raise InvalidManifest(
                f"manifest line {index + 2}: path {entries[index].path!r} is out of order "
                "or repeated (entries must be sorted by UTF-8 bytes, each path once)"
            )


def _check_entry(entry: ManifestEntry) -> None:
    problem = path_problem(entry.path)
    if problem is not None:
        raise InvalidManifest(f"bad collection path {entry.path!r}: {problem}")
    if isinstance(entry, DirEntry):
        return
    total = sum(parse_locator(locator)[1] for locator in entry.locators)
    if entry.size < 0 or total != entry.size:
        raise InvalidManifest(
            f"file {entry.path!r}: size {entry.size} does not equal "
            f"the sum of its block lengths ({total})"
        )


def _check_unique(entries: list[ManifestEntry], directories: frozenset[str]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise InvalidManifest(f"path {entry.path!r} appears more than once")
        seen.add(entry.path)
        if isinstance(entry, FileEntry) and entry.path in directories:
            raise InvalidManifest(f"path {entry.path!r} is both a file and a directory")
