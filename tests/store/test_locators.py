import hashlib

import pytest

from cwl_crunch.errors import InvalidManifest
from cwl_crunch.store.locators import is_pdh, locator_for, parse_locator, parse_pdh, pdh_for

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
