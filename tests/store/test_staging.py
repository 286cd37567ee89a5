"""stage (for jobs) and export (for people): links where safe, verified copies otherwise."""

import errno
import os
import re
import stat

import pytest

from cwl_crunch.errors import CorruptBlock, PathNotFound, StoreError


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def collection(store, tmp_path, write_file):
    write_file(tmp_path / "src" / "small.txt", "small")
    write_file(tmp_path / "src" / "big.bin", bytes(range(40)))
    write_file(tmp_path / "src" / "run.sh", "#!/bin/sh\n", executable=True)
    write_file(tmp_path / "src" / "sub" / "empty-file", b"")
    (tmp_path / "src" / "sub" / "empty dir").mkdir()
    return store.ingest_dir(tmp_path / "src")


def test_read_only_single_block_file_is_a_hard_link(store, store_files, collection, tmp_path):
    dest = tmp_path / "job" / "inputs" / "small.txt"
    store.stage(collection, "small.txt", dest, writable=False)
    (locator,) = store_files.locators_of(collection, "small.txt")
    assert dest.stat().st_ino == store_files.block_path(locator).stat().st_ino
    assert mode(dest) == 0o444


def test_writable_file_is_a_private_copy(store, store_files, collection, tmp_path):
    dest = tmp_path / "job" / "small.txt"
    store.stage(collection, "small.txt", dest, writable=True)
    (locator,) = store_files.locators_of(collection, "small.txt")
    assert dest.stat().st_ino != store_files.block_path(locator).stat().st_ino
    assert mode(dest) & 0o200
    dest.write_text("changed by the job")
    assert store.is_untouched(locator)


def test_executable_and_multi_block_files_are_read_only_copies(
    store, store_files, collection, tmp_path
):
    store.stage(collection, "run.sh", tmp_path / "run.sh", writable=False)
    store.stage(collection, "big.bin", tmp_path / "big.bin", writable=False)
    block_inodes = {p.stat().st_ino for p in store_files.blocks()}
    assert (tmp_path / "run.sh").stat().st_ino not in block_inodes
    assert mode(tmp_path / "run.sh") == 0o555
    assert (tmp_path / "big.bin").read_bytes() == bytes(range(40))
    assert mode(tmp_path / "big.bin") == 0o444


def test_whole_collection_staged_as_real_directories(store, collection, tmp_path):
    dest = tmp_path / "job" / "in"
    store.stage(collection, "", dest, writable=False)
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert found == [
        "big.bin", "run.sh", "small.txt", "sub", "sub/empty dir", "sub/empty-file"
    ]
    assert (dest / "sub").is_dir() and not (dest / "sub").is_symlink()
    assert (dest / "sub" / "empty-file").read_bytes() == b""
    assert mode(dest / "sub" / "empty-file") == 0o444


def test_subdirectory_staged_writable(store, collection, tmp_path):
    store.stage(collection, "sub", tmp_path / "w", writable=True)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["empty dir", "empty-file"]
    (tmp_path / "w" / "empty-file").write_text("mine")


def test_link_falls_back_to_copy_across_devices(store, collection, tmp_path, monkeypatch):
    def no_link(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    store.stage(collection, "small.txt", tmp_path / "small.txt", writable=False)
    assert (tmp_path / "small.txt").read_text() == "small"
    assert mode(tmp_path / "small.txt") == 0o444


def test_stage_notices_a_damaged_block(store, store_files, collection, tmp_path):
    (locator,) = store_files.locators_of(collection, "small.txt")
    store_files.flip_byte(store_files.block_path(locator))
    with pytest.raises(CorruptBlock) as raised:
        store.stage(collection, "small.txt", tmp_path / "small.txt", writable=False)
    assert raised.value.block == locator and raised.value.collection == collection
    assert not (tmp_path / "small.txt").exists()


def test_stage_replaces_a_touched_but_intact_block(store, store_files, collection, tmp_path):
    (locator,) = store_files.locators_of(collection, "small.txt")
    block = store_files.block_path(locator)
    touched_inode = block.stat().st_ino
    os.utime(block)
    store.stage(collection, "small.txt", tmp_path / "small.txt", writable=False)
    assert store.is_untouched(locator)
    assert (tmp_path / "small.txt").stat().st_ino == block.stat().st_ino != touched_inode


def test_stage_refuses_to_overwrite(store, collection, tmp_path):
    (tmp_path / "taken").write_text("already here")
    with pytest.raises(StoreError, match="already exists"):
        store.stage(collection, "small.txt", tmp_path / "taken", writable=False)
    assert (tmp_path / "taken").read_text() == "already here"


def test_export_like_cp_r(store, collection, tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    store.export(collection, "sub", existing)
    assert (existing / "sub" / "empty dir").is_dir()
    store.export(collection, "small.txt", existing)
    store.export(collection, "run.sh", tmp_path / "renamed.sh")
    assert (existing / "small.txt").read_text() == "small"
    assert mode(existing / "small.txt") & 0o200  # the person's own copy
    assert os.access(tmp_path / "renamed.sh", os.X_OK)
    store.export(collection, "", tmp_path / "whole")
    assert (tmp_path / "whole" / "big.bin").read_bytes() == bytes(range(40))
    store.export(collection, "", existing)  # whole collection: contents merged in
    assert (existing / "big.bin").exists() and (existing / "sub" / "empty-file").exists()


def test_export_never_links(store, store_files, collection, tmp_path):
    store.export(collection, "small.txt", tmp_path / "small.txt")
    assert (tmp_path / "small.txt").stat().st_ino not in {
        p.stat().st_ino for p in store_files.blocks()
    }


def test_export_of_a_damaged_block_names_block_and_collection(
    store, store_files, collection, tmp_path
):
    locator = store_files.locators_of(collection, "big.bin")[1]
    store_files.flip_byte(store_files.block_path(locator), 5)
    with pytest.raises(CorruptBlock) as raised:
        store.export(collection, "big.bin", tmp_path / "big.bin")
    assert re.search(f"corrupt block {re.escape(locator)} in collection {re.escape(collection)}",
                     str(raised.value))
    assert not (tmp_path / "big.bin").exists()
    assert list(tmp_path.glob(".cwl-crunch-*")) == []


def test_cheap_check_can_be_fooled_but_export_still_verifies(
    store, store_files, collection, tmp_path
):
    (locator,) = store_files.locators_of(collection, "small.txt")
    block = store_files.block_path(locator)
    saved = block.stat()
    store_files.flip_byte(block)
    os.utime(block, ns=(saved.st_atime_ns, saved.st_mtime_ns))
    with pytest.raises(CorruptBlock):
        store.export(collection, "small.txt", tmp_path / "small.txt")


@pytest.mark.parametrize("path", ["../store", "sub/../../x", "nope", "/etc/passwd"])
def test_paths_outside_the_collection_are_not_found(store, collection, tmp_path, path):
    with pytest.raises(PathNotFound):
        store.stage(collection, path, tmp_path / "x", writable=False)
    with pytest.raises(PathNotFound):
        store.export(collection, path, tmp_path / "x")
    assert not (tmp_path / "x").exists()
