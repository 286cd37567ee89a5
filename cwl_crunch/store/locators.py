"""Block locators and portable data hashes: ``<sha256 hex>+<byte length>``.

Both name content by its hash, so the same text format and the same checks serve both.
Parsing is strict (lowercase hex, no leading zeros in the length) so that every valid
string has exactly one spelling and string equality is content equality.
"""

from __future__ import annotations

import hashlib
import re

from cwl_crunch.errors import InvalidManifest

BLOCK_SIZE = 64 << 20
"""Default largest block, in bytes."""

_HASH_PLUS_LENGTH = re.compile(r"([0-9a-f]{64})\+(0|[1-9][0-9]*)")


def locator_for(data: bytes | bytearray | memoryview) -> str:
    """The locator of a block with this content."""
    return f"{hashlib.sha256(data).hexdigest()}+{len(data)}"


def pdh_for(manifest_text: bytes) -> str:
    """The portable data hash of a manifest with this exact text."""
    return f"{hashlib.sha256(manifest_text).hexdigest()}+{len(manifest_text)}"


def parse_locator(text: str) -> tuple[str, int]:
    """``(sha256 hex, length)`` of a block locator; InvalidManifest if malformed."""
    match = _HASH_PLUS_LENGTH.fullmatch(text)
    if match is None or match.group(2) == "0":
        raise InvalidManifest(
            f"bad block locator {text!r}: expected <64 lowercase hex digits>+<length>"
        )
    return match.group(1), int(match.group(2))


def parse_pdh(text: str) -> tuple[str, int]:
    """``(sha256 hex, length)`` of a portable data hash; InvalidManifest if malformed."""
    match = _HASH_PLUS_LENGTH.fullmatch(text)
    if match is None or match.group(2) == "0":
        raise InvalidManifest(
            f"bad portable data hash {text!r}: "
            "expected <64 lowercase hex digits>+<manifest length>"
        )
    return match.group(1), int(match.group(2))


def is_pdh(text: str) -> bool:
    """Whether ``text`` is a well-formed portable data hash."""
    match = _HASH_PLUS_LENGTH.fullmatch(text)
    return match is not None and match.group(2) != "0"
