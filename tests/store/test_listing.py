import re

import pytest

from cwl_crunch.errors import PathNotFound
from cwl_crunch.model import CollectionEntry
from cwl_crunch.store import DirEntry, FileEntry, Manifest
from cwl_crunch.store.listing import entry_at, list_entries

LOC = "a" * 64 + "+3"


@pytest.fixture
def manifest():
    return Manifest(
        [
            FileEntry("top.txt", 3, False, (LOC,)),
            FileEntry("dir/a", 3, False, (LOC,)),
            FileEntry("dir/sub/b", 6, True, (LOC, LOC)),
            DirEntry("dir/empty"),
            FileEntry("dir b", 0, False, ()),
        ]
    )


def test_whole_collection(manifest):
    assert list_entries(manifest) == [
        CollectionEntry("dir", "dir", 0),
        CollectionEntry("dir b", "file", 0),
        CollectionEntry("dir/a", "file", 3),
        CollectionEntry("dir/empty", "dir", 0),
        CollectionEntry("dir/sub", "dir", 0),
        CollectionEntry("dir/sub/b", "file", 6),
        CollectionEntry("top.txt", "file", 3),
    ]


def test_below_a_directory_excludes_it_and_its_lookalikes(manifest):
    assert [entry.path for entry in list_entries(manifest, "dir")] == [
        "dir/a", "dir/empty", "dir/sub", "dir/sub/b"
    ]
    assert list_entries(manifest, "/dir/sub/") == [CollectionEntry("dir/sub/b", "file", 6)]
    assert list_entries(manifest, "dir/empty") == []


def test_a_file_lists_itself(manifest):
    assert list_entries(manifest, "dir/sub/b") == [CollectionEntry("dir/sub/b", "file", 6)]


@pytest.mark.parametrize("path", ["nope", "dir/nope", "di", "../dir", "dir/../top.txt", "dir//a"])
def test_missing_or_climbing_paths(manifest, path):
    with pytest.raises(PathNotFound, match=re.escape(manifest.pdh)):
        list_entries(manifest, path)


def test_entry_at_names_one_entry_without_listing_below_it(manifest):
    assert entry_at(manifest, "dir/sub/b") == CollectionEntry("dir/sub/b", "file", 6)
    assert entry_at(manifest, "/dir/") == CollectionEntry("dir", "dir", 0)
    assert entry_at(manifest, "dir/empty") == CollectionEntry("dir/empty", "dir", 0)
    assert entry_at(manifest, "") == CollectionEntry("", "dir", 0)


@pytest.mark.parametrize("path", ["nope", "di", "../dir", "dir//a"])
def test_entry_at_refuses_missing_or_climbing_paths(manifest, path):
    with pytest.raises(PathNotFound, match=re.escape(manifest.pdh)):
        entry_at(manifest, path)
