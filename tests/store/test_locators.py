import hashlib

import pytest

from cwl_crunch.errors import InvalidManifest
from cwl_crunch.store.locators import (
    is_pdh,
    locator_for,
    manifest_locators,
    parse_locator,
    parse_pdh,
    pdh_for,
    replace_locators,
    split_signature,
    strip_signatures,
    with_signature,
)

DIGEST = hashlib.sha256(b"hello").hexdigest()


def test_locator_is_sha256_plus_length():
    assert locator_for(b"hello") == f"{DIGEST}+5"
    assert parse_locator(f"{DIGEST}+5") == (DIGEST, 5)


def test_pdh_is_hash_of_manifest_bytes():
    assert pdh_for(b"hello") == f"{DIGEST}+5"
    assert parse_pdh(f"{DIGEST}+5") == (DIGEST, 5)
    assert is_pdh(f"{DIGEST}+5")


@pytest.mark.parametrize(
    "text",
    [
        "",
        DIGEST,
        f"{DIGEST}+",
        f"{DIGEST}+0",
        f"{DIGEST}+05",
        f"{DIGEST}+-5",
        f"{DIGEST.upper()}+5",
        f"{DIGEST[:-1]}+5",
        f"{DIGEST}0+5",
        f"{DIGEST}+5\n",
        f"../../{DIGEST[6:]}+5",
    ],
)
def test_malformed_locators_and_pdhs_are_rejected(text):
    with pytest.raises(InvalidManifest, match="bad block locator"):
        parse_locator(text)
    with pytest.raises(InvalidManifest, match="bad portable data hash"):
        parse_pdh(text)
    assert not is_pdh(text)


# Signed locators: recognised and split off, never interpreted here -------------------
SIGNATURE = "ab" * 32


def test_a_signed_locator_splits_into_the_bare_one_and_its_hint():
    signed = with_signature(f"{DIGEST}+5", SIGNATURE, 0x6B21C152)
    assert signed == f"{DIGEST}+5+A{SIGNATURE}@6b21c152"
    assert split_signature(signed) == (f"{DIGEST}+5", (SIGNATURE, 0x6B21C152))
    assert split_signature(f"{DIGEST}+5") == (f"{DIGEST}+5", None)
    # Anything not exactly of the form stays whole (and fails as a locator later).
    for odd in (f"{DIGEST}+5+A{SIGNATURE[:-1]}@1", f"{DIGEST}+5+A{SIGNATURE}@",
                f"{DIGEST}+5+A{SIGNATURE.upper()}@1", f"{DIGEST}+5+B{SIGNATURE}@1"):
        assert split_signature(odd) == (odd, None)


def test_stripping_signatures_gives_back_the_canonical_text_and_touches_nothing_else():
    bare = locator_for(b"hello")
    # A path that looks like a signed locator stays as it is.
    tricky = f"{bare}+A{SIGNATURE}@1"
    text = (f"cwl-crunch-manifest 1\nd empty\nf {tricky} - 5 {bare}\n"
            f"f two x 10 {bare} {bare}\nf zero - 0\n").encode()
    signed = replace_locators(text, lambda loc: with_signature(loc, SIGNATURE, 7))
    assert signed.count(b"+A") == 4  # the path's and three locators
    assert manifest_locators(signed) == [with_signature(bare, SIGNATURE, 7)] * 3
    assert strip_signatures(signed) == text
    assert strip_signatures(text) == text
    assert manifest_locators(text) == [bare] * 3
