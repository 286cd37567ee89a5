import os
import stat

import pytest

from cwl_crunch.errors import CorruptBlock
from cwl_crunch.store import BLOCK_MTIME_NS
from cwl_crunch.store.blocks import BlockStore


@pytest.fixture
def blocks(tmp_path):
    return BlockStore(tmp_path / "store")


def test_block_is_stored_read_only_with_the_sentinel_mtime(blocks, store_files):
    locator = blocks.put(b"some bytes")
    assert locator == store_files.locator(b"some bytes")
    path = blocks.path_for(locator)
    digest = locator.split("+")[0]
    assert path == blocks.root / "blocks" / digest[:2] / digest
    assert path.read_bytes() == b"some bytes"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o444
    assert info.st_mtime_ns == BLOCK_MTIME_NS == 946_684_800 * 10**9
    assert blocks.is_untouched(locator)


def test_same_content_is_stored_once(blocks):
    first = blocks.put(b"twice")
    inode = blocks.path_for(first).stat().st_ino
    assert blocks.put(bytearray(b"twice")) == first
    assert blocks.path_for(first).stat().st_ino == inode  # not rewritten
    assert len(list((blocks.root / "blocks").rglob("*/*"))) == 1


def test_is_untouched_notices_writes_and_missing_blocks(blocks, store_files):
    locator = blocks.put(b"original")
    assert blocks.missing([locator]) == []
    store_files.flip_byte(blocks.path_for(locator))
    assert not blocks.is_untouched(locator)
    os.utime(blocks.path_for(locator), ns=(BLOCK_MTIME_NS, BLOCK_MTIME_NS))
    assert blocks.is_untouched(locator)  # the cheap check can be fooled on purpose
    blocks.path_for(locator).unlink()
    absent = store_files.locator(b"never stored")
    assert blocks.missing([locator, absent, locator]) == [locator, absent]


def test_a_touched_block_is_replaced_by_a_fresh_inode_on_put(blocks, store_files):
    locator = blocks.put(b"original")
    damaged_inode = blocks.path_for(locator).stat().st_ino
    store_files.flip_byte(blocks.path_for(locator))
    assert blocks.put(b"original") == locator
    assert blocks.is_untouched(locator)
    assert blocks.path_for(locator).stat().st_ino != damaged_inode
    assert blocks.read_verified(locator, None) == b"original"


def test_read_verified_checks_hash_length_and_presence(blocks, store_files):
    locator = blocks.put(b"0123456789")
    store_files.flip_byte(blocks.path_for(locator), 3)
    with pytest.raises(CorruptBlock, match="does not match its hash") as raised:
        blocks.read_verified(locator, "the-collection")
    assert raised.value.block == locator
    assert raised.value.collection == "the-collection"
    assert locator in str(raised.value) and "the-collection" in str(raised.value)
    os.chmod(blocks.path_for(locator), 0o644)
    blocks.path_for(locator).write_bytes(b"01234")
    with pytest.raises(CorruptBlock, match="holds 5 bytes, not 10"):
        blocks.read_verified(locator, None)
    blocks.path_for(locator).unlink()
    with pytest.raises(CorruptBlock, match="missing"):
        blocks.read_verified(locator, None)


def test_verified_views_yield_blocks_in_order(blocks):
    contents = [b"first block", b"second", b"third and longest block", b"4"]
    locators = [blocks.put(data) for data in contents]
    assert [bytes(view) for view in blocks.verified_views(locators, None)] == contents
    assert list(blocks.verified_views([], None)) == []


def test_verified_views_stop_at_the_damaged_block(blocks, store_files):
    locators = [blocks.put(data) for data in (b"good", b"bad", b"unread")]
    store_files.flip_byte(blocks.path_for(locators[1]))
    views = blocks.verified_views(locators, "pdh")
    assert bytes(next(views)) == b"good"
    with pytest.raises(CorruptBlock) as raised:
        next(views)
    assert raised.value.block == locators[1]


def test_adopt_links_the_file_in(blocks, tmp_path, store_files):
    source = tmp_path / "output.txt"
    source.write_bytes(b"job output")
    locator = store_files.locator(b"job output")
    assert blocks.adopt(source, locator)
    assert blocks.path_for(locator).stat().st_ino == source.stat().st_ino
    assert blocks.is_untouched(locator)
