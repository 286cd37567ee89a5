"""Paths inside a collection: validation and the manifest's percent-escaping.

A collection path is a relative POSIX path with no ``.``, ``..`` or empty components,
so that joining it below a destination directory can never climb out of it.
"""

from __future__ import annotations

import re

from cwl_crunch.errors import InvalidManifest


def _needs_escape(char: str) -> bool:
    code = ord(char)
    return char in "% " or code < 0x20 or code == 0x7F


_ESCAPE = re.compile(r"[% \x00-\x1f\x7f]")
_ESCAPE_SEQUENCE = re.compile(r"%([0-9A-F]{2})")


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a valid collection path, or None if it is."""
    if not path:
        return "it is empty"
    if path.startswith("/"):
        return "it is absolute"
    if "\x00" in path:
        return "it contains a NUL character"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    for component in path.split("/"):
        if component in ("", ".", ".."):
            return "it has an empty, '.' or '..' component"
    return None


def escape_path(path: str) -> str:
    """The path as written in a manifest line: no spaces, no control characters."""
    return _ESCAPE.sub(lambda match: f"%{ord(match.group()):02X}", path)


def unescape_path(field: str) -> str:
    """Inverse of :func:`escape_path`; rejects any spelling escape_path would not write."""
    def decode(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        if not _needs_escape(char):
            raise InvalidManifest(
                f"manifest path {field!r} escapes {char!r}, which must be written as is"
            )
        return char

    decoded = _ESCAPE_SEQUENCE.sub(decode, field)
    if escape_path(decoded) != field:
        # A raw space or control character, a lone '%' or lowercase hex all land here.
        raise InvalidManifest(f"manifest path {field!r} is not canonically escaped")
    return decoded


def parent_dirs(path: str) -> list[str]:
    """Every proper ancestor directory of ``path``, shallowest first (``a``, ``a/b``)."""
    components = path.split("/")[:-1]
    return ["/".join(components[: depth + 1]) for depth in range(len(components))]


def is_below(path: str, directory: str) -> bool:
    """Whether ``path`` is strictly inside ``directory`` ("" is the collection root)."""
    return directory == "" or path.startswith(directory + "/")
