"""CollectionStore as a whole: manifests, blocks, reading with verification."""

import hashlib
import re

import pytest

from cwl_crunch.errors import (
    CollectionNotFound,
    CorruptBlock,
    InvalidManifest,
    PathNotFound,
    StoreError,
)
from cwl_crunch.store import CollectionStore, FileEntry, Manifest


def test_store_dirs_are_made_only_when_writing(tmp_path):
    store = CollectionStore(tmp_path / "store")
    assert not (tmp_path / "store").exists()
    assert not store.has_collection(Manifest([]).pdh)
    assert store.root == tmp_path / "store"


def test_put_block_then_manifest(store):
    first, second = store.put_block(b"part one, "), store.put_block(b"part two")
    text = Manifest([FileEntry("f", 18, False, (first, second))]).to_text()
    pdh = store.put_manifest(text)
    assert pdh == f"{hashlib.sha256(text).hexdigest()}+{len(text)}"
    assert store.has_collection(pdh)
    assert store.manifest_text(pdh) == text
    assert b"".join(store.open_file(pdh, "f")) == b"part one, part two"
    digest = pdh.split("+")[0]
    assert (store.root / "manifests" / digest[:2] / digest).read_bytes() == text


def test_put_manifest_lists_missing_blocks(store, store_files):
    present = store.put_block(b"present")
    absent = store_files.locator(b"absent")
    text = Manifest(
        [FileEntry("a", 7, False, (present,)), FileEntry("b", 6, False, (absent,))]
    ).to_text()
    expected = f"1 of its blocks are not in the store: {absent}"
    with pytest.raises(StoreError, match=re.escape(expected)):
        store.put_manifest(text)
    assert store.missing_blocks([present, absent]) == [absent]
    assert store_files.manifests() == []


def test_put_manifest_rejects_non_canonical_text(store):
    with pytest.raises(InvalidManifest):
        store.put_manifest(b"cwl-crunch-manifest 1\nd b\nd a\n")


def test_put_block_size_limits(store):
    with pytest.raises(StoreError, match="1 to 16 bytes, not 17"):
        store.put_block(bytes(17))
    with pytest.raises(StoreError, match="not 0"):
        store.put_block(b"")


def test_unknown_and_malformed_pdhs(store):
    unknown = f"{'0' * 64}+22"
    with pytest.raises(CollectionNotFound, match=re.escape(unknown)):
        store.manifest(unknown)
    with pytest.raises(InvalidManifest, match="bad portable data hash"):
        store.manifest("../../etc/passwd")
    stored = store.put_paths([])
    wrong_length = stored.split("+")[0] + "+1" + stored.split("+")[1]
    with pytest.raises(CollectionNotFound, match=re.escape(wrong_length)):
        store.manifest(wrong_length)
    assert not store.has_collection(wrong_length)
    with pytest.raises(InvalidManifest):
        store.has_collection("nonsense")


def test_damaged_manifest_is_reported(store, store_files, tmp_path, write_file):
    pdh = store.put_paths([write_file(tmp_path / "f", "content")])
    (manifest_path,) = store_files.manifests()
    store_files.flip_byte(manifest_path, 3)
    with pytest.raises(CorruptBlock, match="manifest does not match its hash") as raised:
        store.manifest(pdh)
    assert raised.value.block == pdh and raised.value.collection == pdh


def test_stored_text_that_does_not_parse_is_invalid(store, store_files):
    text = b"not a manifest\n"
    digest = hashlib.sha256(text).hexdigest()
    path = store.root / "manifests" / digest[:2] / digest
    path.parent.mkdir(parents=True)
    path.write_bytes(text)
    with pytest.raises(InvalidManifest):
        store.manifest(f"{digest}+{len(text)}")


def test_open_file_verifies_every_block_before_yielding_it(
    store, store_files, tmp_path, write_file
):
    content = b"A" * 16 + b"B" * 16 + b"C" * 4
    pdh = store.put_paths([write_file(tmp_path / "f", content)])
    locators = store_files.locators_of(pdh, "f")
    store_files.flip_byte(store_files.block_path(locators[1]), 7)
    chunks = store.open_file(pdh, "f")
    assert next(chunks) == b"A" * 16
    with pytest.raises(CorruptBlock) as raised:
        next(chunks)
    message = str(raised.value)
    assert locators[1] in message and pdh in message


def test_open_file_reports_a_missing_block(store, store_files, tmp_path, write_file):
    pdh = store.put_paths([write_file(tmp_path / "f", "gone soon")])
    (locator,) = store_files.locators_of(pdh, "f")
    store_files.block_path(locator).unlink()
    with pytest.raises(CorruptBlock, match="missing") as raised:
        list(store.open_file(pdh, "f"))
    assert raised.value.block == locator


def test_open_file_yields_large_blocks_in_chunks(tmp_path, write_file):
    store = CollectionStore(tmp_path / "store", block_size=3 << 20)
    content = bytes(range(256)) * (10 << 12)  # 10 MiB, 4 blocks
    pdh = store.put_paths([write_file(tmp_path / "f", content)])
    chunks = list(store.open_file(pdh, "f"))
    assert b"".join(chunks) == content
    assert max(len(chunk) for chunk in chunks) <= 1 << 20


def test_open_file_errors_are_raised_at_the_call(store, tmp_path, write_file):
    write_file(tmp_path / "d" / "f", "x")
    pdh = store.put_paths([tmp_path / "d"])
    with pytest.raises(PathNotFound, match="it is a directory"):
        store.open_file(pdh, "d")
    with pytest.raises(PathNotFound, match="not there"):
        store.open_file(pdh, "d/missing")
    with pytest.raises(PathNotFound, match="component"):
        store.open_file(pdh, "d/../d/f")


def test_list_of_a_file_and_of_nothing(store, tmp_path, write_file):
    pdh = store.put_paths([write_file(tmp_path / "f", "12345")])
    assert [(e.path, e.kind, e.size) for e in store.list(pdh, "f")] == [("f", "file", 5)]
    with pytest.raises(PathNotFound):
        store.list(pdh, "g")


def test_block_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        CollectionStore(tmp_path, block_size=0)
