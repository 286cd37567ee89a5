import os
import stat

import pytest

from cwl_crunch.errors import CorruptBlock
from cwl_crunch.store import BLOCK_MTIME_NS
from cwl_crunch.store import blocks as blocks_module
from cwl_crunch.store.blocks import BlockStore
from cwl_crunch.store.known_good import stat_key


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


def test_known_good_stats_are_those_of_blocks_known_intact_and_unchanged(
    blocks, store_files
):
    one, two = blocks.put(b"one"), blocks.put(b"two")
    info = blocks.path_for(one).stat()
    assert blocks.known_good_stats([one, two, one]) == {
        one: (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns),
        two: stat_key(blocks.path_for(two).stat()),
    }
    os.chmod(blocks.path_for(two), 0o444)  # same mode, but the ctime moves
    assert list(blocks.known_good_stats([one, two])) == [one]
    assert two not in blocks.known_good
    assert BlockStore(blocks.root).known_good_stats([one, two]) == {}  # knows nothing


def test_a_block_with_exactly_the_vouched_stat_is_trusted_unhashed(
    blocks, store_files, monkeypatch
):
    good, other = blocks.put(b"good"), blocks.put(b"other")
    vouched = blocks.known_good_stats([good, other])
    hashed = []
    real = blocks_module.file_sha256

    def spy(block_file):
        hashed.append(block_file.name)
        return real(block_file)

    monkeypatch.setattr(blocks_module, "file_sha256", spy)
    fresh = BlockStore(blocks.root)
    assert fresh.all_intact([good, other], vouched)
    assert hashed == []
    assert good in fresh.known_good and other in fresh.known_good
    # A vouched stat that is no longer the block's own is worth nothing: hashed.
    later = BlockStore(blocks.root)
    stale = {good: (*vouched[good][:3], vouched[good][3] - 1), other: vouched[other]}
    assert later.all_intact([good, other], stale)
    assert hashed == [str(blocks.path_for(good))]
    # ... and a damaged block behind a stale stat is found damaged.
    store_files.flip_byte(blocks.path_for(other))
    os.utime(blocks.path_for(other), ns=(BLOCK_MTIME_NS, BLOCK_MTIME_NS))
    assert not BlockStore(blocks.root).all_intact([other], vouched)


def test_adopt_never_follows_a_symlink_at_the_path(store, store_files, tmp_path, write_file):
    # What a job swapping its output file for a link between read and adopt would do.
    target = write_file(tmp_path / "victim.txt", "someone else's")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "f"
    link.symlink_to(target)
    before = target.stat()
    locator = store_files.locator(b"someone else's")
    assert not BlockStore(store.root).adopt(link, locator)
    after = target.stat()
    assert (after.st_mode, after.st_nlink, after.st_mtime_ns) == (
        before.st_mode, before.st_nlink, before.st_mtime_ns)
    assert store_files.blocks() == []
