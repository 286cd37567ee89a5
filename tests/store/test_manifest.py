import hashlib

import pytest

from cwl_crunch.errors import InvalidManifest
from cwl_crunch.store import DirEntry, FileEntry, Manifest

HELLO = f"{hashlib.sha256(b'hello').hexdigest()}+5"
WORLD = f"{hashlib.sha256(b' world').hexdigest()}+6"


def sample_entries():
    return [
        FileEntry("z last", 5, False, (HELLO,)),
        FileEntry("dir/run.sh", 11, True, (HELLO, WORLD)),
        DirEntry("empty dir"),
        FileEntry("empty file", 0, False, ()),
        FileEntry("100%\nsure", 5, False, (HELLO,)),
        FileEntry("ünï/çødé", 5, False, (HELLO,)),
        DirEntry("dir"),  # not empty: implied by dir/run.sh, so dropped
    ]


EXPECTED_TEXT = (
    "cwl-crunch-manifest 1\n"
    f"f 100%25%0Asure - 5 {HELLO}\n"
    f"f dir/run.sh x 11 {HELLO} {WORLD}\n"
    "d empty%20dir\n"
    "f empty%20file - 0\n"
    f"f z%20last - 5 {HELLO}\n"
    f"f ünï/çødé - 5 {HELLO}\n"
).encode()


def test_canonical_text_sorts_escapes_and_drops_implied_dirs():
    manifest = Manifest(sample_entries())
    assert manifest.to_text() == EXPECTED_TEXT
    assert manifest.pdh == f"{hashlib.sha256(EXPECTED_TEXT).hexdigest()}+{len(EXPECTED_TEXT)}"


def test_round_trip():
    manifest = Manifest.from_text(EXPECTED_TEXT)
    assert manifest == Manifest(sample_entries())
    assert manifest.to_text() == EXPECTED_TEXT
    assert [entry.path for entry in manifest.files()] == [
        "100%\nsure", "dir/run.sh", "empty file", "z last", "ünï/çødé"
    ]
    run = manifest.file("dir/run.sh")
    assert run == FileEntry("dir/run.sh", 11, True, (HELLO, WORLD))
    assert manifest.file("empty file") == FileEntry("empty file", 0, False, ())
    assert manifest.is_dir("empty dir") and manifest.is_dir("dir") and manifest.is_dir("")
    assert not manifest.is_dir("dir/run.sh")
    assert manifest.directories == {"dir", "empty dir", "ünï"}


def test_order_of_entries_does_not_change_pdh():
    entries = sample_entries()
    assert Manifest(entries).pdh == Manifest(reversed(entries)).pdh


def test_sorted_by_utf8_bytes_not_by_path_components():
    # ' ' (0x20) < '/' (0x2f) < 'a': "a b" before "a/b" before "aa".
    manifest = Manifest(FileEntry(p, 0, False, ()) for p in ["aa", "a/b", "a b", "é", "z"])
    assert [e.path for e in manifest.entries] == ["a b", "a/b", "aa", "z", "é"]


def test_empty_collection_is_just_the_header():
    assert Manifest([]).to_text() == b"cwl-crunch-manifest 1\n"
    assert Manifest.from_text(b"cwl-crunch-manifest 1\n").entries == ()


def test_nested_empty_dirs_keep_only_the_deepest():
    manifest = Manifest([DirEntry("a"), DirEntry("a/b"), DirEntry("a/b/c")])
    assert manifest.to_text() == b"cwl-crunch-manifest 1\nd a/b/c\n"
    assert manifest.directories == {"a", "a/b", "a/b/c"}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (b"", "does not start"),
        (b"cwl-crunch-manifest 2\n", "does not start"),
        (b"cwl-crunch-manifest 1\nd a", "newline"),
        (b"cwl-crunch-manifest 1\nd a\r\n", "canonically escaped"),
        (b"cwl-crunch-manifest 1\nd a b\n", "line 2: expected"),
        (b"cwl-crunch-manifest 1\n\n", "line 2: expected"),
        (b"cwl-crunch-manifest 1\nd b\nd a\n", "out of order"),
        (b"cwl-crunch-manifest 1\nd a\nd a\n", "out of order or repeated"),
        (b"cwl-crunch-manifest 1\nd a\nd a/b\n", "'d' entry for a directory that is not empty"),
        (f"cwl-crunch-manifest 1\nf a - 5 {HELLO}\nf a/b - 0\n".encode(), "both a file and"),
        (b"cwl-crunch-manifest 1\nd ../up\n", "component"),
        (b"cwl-crunch-manifest 1\nd /abs\n", "absolute"),
        (b"cwl-crunch-manifest 1\nd a%2fb\n", "canonically escaped"),
        (b"cwl-crunch-manifest 1\nd a%41\n", "must be written as is"),
        (b"cwl-crunch-manifest 1\nf a - 1\n", "size 1 does not equal"),
        (f"cwl-crunch-manifest 1\nf a - 4 {HELLO}\n".encode(), "does not equal"),
        (f"cwl-crunch-manifest 1\nf a - 05 {HELLO}\n".encode(), "bad file size"),
        (f"cwl-crunch-manifest 1\nf a - \u0665 {HELLO}\n".encode(), "bad file size"),
        (f"cwl-crunch-manifest 1\nf a r 5 {HELLO}\n".encode(), "expected"),
        (f"cwl-crunch-manifest 1\nf a - 5 {HELLO} \n".encode(), "bad block locator"),
        (f"cwl-crunch-manifest 1\nf a - 5  {HELLO}\n".encode(), "bad block locator"),
        (b"cwl-crunch-manifest 1\nf a - 5 nothex+5\n", "bad block locator"),
        (b"cwl-crunch-manifest 1\nd \xff\n", "not valid UTF-8"),
    ],
)
def test_non_canonical_text_is_rejected(text, complaint):
    with pytest.raises(InvalidManifest, match=complaint):
        Manifest.from_text(text)


def test_entries_are_validated_when_built():
    with pytest.raises(InvalidManifest, match="component"):
        Manifest([FileEntry("a/../b", 0, False, ())])
    with pytest.raises(InvalidManifest, match="more than once"):
        Manifest([FileEntry("a", 0, False, ()), DirEntry("a")])
