"""The put cache: re-putting an unchanged file reads nothing; any change re-reads it."""

import os
import sqlite3
import time

import pytest

from cwl_crunch.store import file_ingest, put_cache


@pytest.fixture
def no_racy_window(monkeypatch):
    # Files in these tests are seconds old at most; waiting out the window is slow.
    monkeypatch.setattr(put_cache, "RACY_WINDOW_NS", 0)
    time.sleep(0.02)  # still, let the coarse clock tick past the files' ctime


@pytest.fixture
def reads(monkeypatch):
    """Paths whose content was read to store it."""
    seen = []
    real = file_ingest.read_blocks

    def spy(blocks, source, block_size):
        seen.append(source.name)
        return real(blocks, source, block_size)

    monkeypatch.setattr(file_ingest, "read_blocks", spy)
    return seen


def settle():
    time.sleep(0.02)


def test_unchanged_file_is_not_read_again(store, tmp_path, write_file, reads, no_racy_window):
    path = write_file(tmp_path / "data.bin", bytes(100))
    settle()
    first = store.put_paths([path])
    assert reads == [str(path)]
    assert store.put_paths([path]) == first
    assert store.put_paths([tmp_path / "data.bin"]) == first
    assert reads == [str(path)]
    assert (store.root / "cache" / "put-cache.sqlite3").exists()


def test_changed_file_is_read_again(store, tmp_path, write_file, reads, no_racy_window):
    path = write_file(tmp_path / "data.txt", "one")
    settle()
    first = store.put_paths([path])
    with open(path, "r+b") as same_size_edit:
        same_size_edit.write(b"two")
    settle()
    second = store.put_paths([path])
    assert second != first
    assert b"".join(store.open_file(second, "data.txt")) == b"two"
    assert reads == [str(path), str(path)]


def test_replaced_file_is_read_again(store, tmp_path, write_file, reads, no_racy_window):
    path = write_file(tmp_path / "data.txt", "one")
    settle()
    store.put_paths([path])
    write_file(tmp_path / "new.txt", "one")
    os.replace(tmp_path / "new.txt", path)  # new inode, same content and name
    settle()
    store.put_paths([path])
    assert len(reads) == 2


def test_missing_block_means_reading_again(
    store, store_files, tmp_path, write_file, reads, no_racy_window
):
    path = write_file(tmp_path / "data.txt", "x" * 40)
    settle()
    pdh = store.put_paths([path])
    store_files.block_path(store_files.locators_of(pdh, "data.txt")[-1]).unlink()
    assert store.put_paths([path]) == pdh
    assert len(reads) == 2
    assert store.missing_blocks(store_files.locators_of(pdh, "data.txt")) == []


def test_recently_changed_file_is_not_cached(store, tmp_path, write_file, reads):
    # Its timestamps could still miss a write in the same clock tick.
    path = write_file(tmp_path / "fresh.txt", "fresh")
    store.put_paths([path])
    store.put_paths([path])
    assert len(reads) == 2


def test_files_inside_put_directories_are_cached_too(
    store, tmp_path, write_file, reads, no_racy_window
):
    write_file(tmp_path / "dir" / "a", "a")
    write_file(tmp_path / "dir" / "b", "b")
    settle()
    store.put_paths([tmp_path / "dir"])
    write_file(tmp_path / "dir" / "b", "B")
    settle()
    store.put_paths([tmp_path / "dir"])
    assert sorted(reads) == [str(tmp_path / "dir" / n) for n in ("a", "b", "b")]


def test_broken_cache_database_does_not_break_put(store, tmp_path, write_file, no_racy_window):
    cache_file = store.root / "cache" / "put-cache.sqlite3"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"this is not a database" * 100)
    path = write_file(tmp_path / "data.txt", "data")
    pdh = store.put_paths([path])
    assert b"".join(store.open_file(pdh, "data.txt")) == b"data"


def test_cache_session_saves_at_the_end(tmp_path):
    cache = put_cache.PutCache(tmp_path / "cache.sqlite3")
    identity = put_cache.FileIdentity("/x", 1, 2, 3, 4, 5)
    with cache.session() as session:
        session.remember(identity, ("loc+3",))
        assert session.lookup(identity) is None
    with cache.session() as session:
        assert session.lookup(identity) == ("loc+3",)
        assert session.lookup(put_cache.FileIdentity("/x", 1, 2, 3, 4, 6)) is None
    rows = sqlite3.connect(tmp_path / "cache.sqlite3").execute("SELECT * FROM put_cache_v1")
    assert rows.fetchall() == [("/x", 1, 2, 3, 4, 5, "loc+3")]
