"""Block locators and portable data hashes: ``<sha256 hex>+<byte length>``.

Both name content by its hash, so the same text format and the same checks serve both.
Parsing is strict (lowercase hex, no leading zeros in the length) so that every valid
string has exactly one spelling and string equality is content equality.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

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


# Signed locators ---------------------------------------------------------------------
# ``<sha256 hex>+<length>+A<hex signature>@<hex expiry>``: a block locator with a
# permission hint (Arvados' form). What the signature is over and who checks it is the
# server's business (cwl_crunch.records.blob_signing); the store only stores and names
# blocks by their bare locators, so here the hint is only recognised and split off.
_SIGNED = re.compile(r"([0-9a-f]{64}\+(?:0|[1-9][0-9]*))\+A([0-9a-f]{64})@([0-9a-f]{1,16})")


def split_signature(text: str) -> tuple[str, tuple[str, int] | None]:
    """``(bare locator, (signature hex, expiry epoch seconds) or None)``: the hint of a
    signed locator split off; any other text comes back as it is, with None."""
    match = _SIGNED.fullmatch(text)
    if match is None:
        return text, None
    return match.group(1), (match.group(2), int(match.group(3), 16))


def with_signature(locator: str, signature: str, expiry: int) -> str:
    return f"{locator}+A{signature}@{expiry:08x}"


def manifest_locators(text: bytes) -> list[str]:
    """Every block locator of a manifest's file lines, as written (signed or not), in
    order; the text is not validated (Manifest.from_text does that)."""
    found: list[str] = []
    for line in text.split(b"\n")[1:]:
        if line.startswith(b"f "):
            found += line.decode("utf-8", "replace").split(" ")[4:]
    return found


def replace_locators(text: bytes, change: Callable[[str], str]) -> bytes:
    """The manifest text with each locator of its file lines replaced by ``change(it)``;
    every other byte as it was (so that stripping a signature gives the text back)."""
    lines = text.split(b"\n")
    for index in range(1, len(lines)):
        line = lines[index]
        if not line.startswith(b"f "):
            continue
        try:
            fields = line.decode("utf-8").split(" ")
        except UnicodeDecodeError:
            continue  # left for the manifest parser to name
        if len(fields) > 4:
            fields[4:] = [change(locator) for locator in fields[4:]]
            lines[index] = " ".join(fields).encode("utf-8")
    return b"\n".join(lines)


def strip_signatures(text: bytes) -> bytes:
    """The manifest text over bare locators: what is hashed into the PDH and stored."""
    return replace_locators(text, lambda locator: split_signature(locator)[0])
