"""Block-level transfer through either ClusterClient (the ``client`` fixture runs both):
what moves a collection from one cluster to another, a block at a time, with the same
errors for the same situation."""

from __future__ import annotations

import pytest

from cwl_crunch.errors import CollectionNotFound, CorruptBlock, MissingBlocks, PathNotFound
from cwl_crunch.store import locator_for
from cwl_crunch.store.locators import split_signature


def _bare(locator: str) -> str:
    return split_signature(locator)[0]


def test_blocks_put_one_at_a_time_make_a_collection(client, tmp_path):
    data = b"hello, block\n"
    bare = locator_for(data)
    assert client.missing_blocks([bare]) == [bare]
    put = client.put_block(data)
    assert _bare(put) == bare
    assert client.missing_blocks([put]) == []
    text = f"cwl-crunch-manifest 1\nf greeting.txt - {len(data)} {put}\n".encode()
    pdh = client.put_manifest(text)
    assert client.has_collection(pdh)
    assert b"".join(client.read_file(pdh, "greeting.txt")) == data
    manifest = client.get_manifest(pdh)
    assert b"greeting.txt" in manifest and bare.encode() in manifest
    assert client.get_block(pdh, bare) == data


def test_a_collection_is_copied_block_by_block(client, tmp_path):
    """What a peer does with another cluster's collection: ask what is missing, put it,
    then the manifest; here the source is the same cluster, so nothing is missing."""
    (tmp_path / "a.txt").write_bytes(b"a" * 1000)
    (tmp_path / "b.txt").write_bytes(b"b" * 10)
    pdh = client.put_paths([tmp_path / "a.txt", tmp_path / "b.txt"])
    manifest = client.get_manifest(pdh)
    locators = [line.split()[-1].decode() for line in manifest.splitlines()
                if line.startswith(b"f ")]
    assert len(locators) == 2
    assert client.missing_blocks(locators) == []
    for locator in locators:
        assert locator_for(client.get_block(pdh, locator)) == _bare(locator)
    assert client.put_manifest(manifest) == pdh


def test_a_manifest_naming_a_block_not_there_is_refused_alike(client):
    absent = locator_for(b"never stored here")
    with pytest.raises(MissingBlocks):
        client.put_manifest(f"cwl-crunch-manifest 1\nf ghost.txt - 17 {absent}\n".encode())


def test_the_same_bad_reads_raise_the_same_errors(client, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    pdh = client.put_paths([tmp_path / "d"])
    with pytest.raises(PathNotFound, match="it is a directory"):
        b"".join(client.read_file(pdh, "d"))
    with pytest.raises(PathNotFound, match="not there"):
        b"".join(client.read_file(pdh, "d/nothing.txt"))
    unknown = "0" * 64 + "+22"
    with pytest.raises(CollectionNotFound):
        client.get_manifest(unknown)
    with pytest.raises(PathNotFound, match="has no block"):
        client.get_block(pdh, locator_for(b"not in this collection"))


def test_a_block_over_the_block_size_is_refused(client):
    with pytest.raises(Exception) as raised:
        client.put_block(b"")
    assert not isinstance(raised.value, CorruptBlock)
