"""References to a file or directory in a collection: ``<pdh>/path`` or ``keep:<pdh>/path``."""

from __future__ import annotations

from cwl_crunch.errors import InvalidManifest
from cwl_crunch.store.collection_paths import path_problem
from cwl_crunch.store.locators import is_pdh

KEEP_SCHEME = "keep:"


def split_reference(text: str) -> tuple[str, str]:
    """``(pdh, path)`` of a reference; path has no leading or trailing slash, "" for the root.

    The path is taken literally: a ``keep:`` URI's %-escapes are not decoded here.
    """
    rest = text.removeprefix(KEEP_SCHEME)
    pdh, _, path = rest.partition("/")
    if not is_pdh(pdh):
        raise InvalidManifest(
            f"bad collection reference {text!r}: expected [keep:]<pdh>[/path], where <pdh> "
            "is <64 lowercase hex digits>+<manifest length>"
        )
    path = path.strip("/")
    if path:
        problem = path_problem(path)
        if problem is not None:
            raise InvalidManifest(
                f"bad collection reference {text!r}: its path is not valid: {problem}"
            )
    return pdh, path
