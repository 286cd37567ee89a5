import pytest

from cwl_crunch.errors import InvalidManifest
from cwl_crunch.store.collection_paths import (
    escape_path,
    is_below,
    parent_dirs,
    path_problem,
    unescape_path,
)


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("plain/name.txt", "plain/name.txt"),
        ("with space", "with%20space"),
        ("100%", "100%25"),
        ("%20", "%2520"),
        ("new\nline", "new%0Aline"),
        ("tab\there", "tab%09here"),
        ("del\x7f", "del%7F"),
        ("ünïcødé/日本", "ünïcødé/日本"),
        ("back\\slash:colon", "back\\slash:colon"),
    ],
)
def test_escape_round_trip(path, escaped):
    assert escape_path(path) == escaped
    assert unescape_path(escaped) == path


@pytest.mark.parametrize(
    "field",
    ["with space", "%41", "%2a", "%2", "%", "a%zz", "tab\there", "%7f"],
)
def test_non_canonical_escapes_are_rejected(field):
    with pytest.raises(InvalidManifest, match=r"escape|escaped"):
        unescape_path(field)


@pytest.mark.parametrize(
    "path", ["", "/abs", "a//b", "a/", "./a", "a/./b", "..", "a/../b", "nul\x00", "bad\udcff"]
)
def test_path_problems(path):
    assert path_problem(path) is not None


@pytest.mark.parametrize("path", ["a", "a/b/c", "..a", "a..", ".hidden", "...", "sp ace"])
def test_valid_paths(path):
    assert path_problem(path) is None


def test_parent_dirs_and_is_below():
    assert parent_dirs("a/b/c") == ["a", "a/b"]
    assert parent_dirs("a") == []
    assert is_below("a/b", "a")
    assert is_below("a/b", "")
    assert not is_below("ab", "a")
    assert not is_below("a", "a")
