"""Staging is a read: a block is hashed before it is hard-linked into a job, once.

"Stealthy" damage changes a block's bytes and puts its mtime back, which the cheap stat
check (size + sentinel mtime) cannot see. Each store instance remembers the stat of
blocks it has seen intact, ctime included, so an untouched block is not hashed again.
"""

import os
import threading
import time

import pytest

from cwl_crunch.errors import CorruptBlock
from cwl_crunch.store import CollectionStore, blocks, file_ingest, put_cache
from cwl_crunch.store.known_good import KnownGood

CONTENT = b"ACGT" * 3 + b"\n"  # 13 bytes: one block in the 16-byte-block store fixture


@pytest.fixture
def hashed(monkeypatch):
    """Block files hashed to verify them (not counting full reads by open_file/export)."""
    seen = []
    real = blocks.file_sha256

    def spy(block_file):
        seen.append(os.fstat(block_file.fileno()).st_ino)
        return real(block_file)

    monkeypatch.setattr(blocks, "file_sha256", spy)
    return seen


@pytest.fixture
def source(tmp_path, write_file):
    return write_file(tmp_path / "src" / "data.txt", CONTENT)


@pytest.fixture
def pdh(store, source):
    return store.put_paths([source])


@pytest.fixture
def block(store_files, pdh):
    (locator,) = store_files.locators_of(pdh, "data.txt")
    return store_files.block_path(locator)


@pytest.fixture
def locator(store_files, pdh):
    (locator,) = store_files.locators_of(pdh, "data.txt")
    return locator


@pytest.fixture
def fresh(store):
    """Another store instance on the same root, as another process would have."""
    return CollectionStore(store.root, block_size=store.block_size)


def flip_stealthily(store_files, path, offset=3):
    saved = path.stat()
    store_files.flip_byte(path, offset)
    os.utime(path, ns=(saved.st_atime_ns, saved.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (saved.st_size, saved.st_mtime_ns)


def stage(store, pdh, dest):
    store.stage(pdh, "data.txt", dest, writable=False)
    return dest


@pytest.mark.parametrize("which", ["same instance", "fresh instance"])
def test_stealthily_damaged_block_is_not_staged(
    store, fresh, store_files, pdh, locator, block, tmp_path, which
):
    staging_store = store if which == "same instance" else fresh
    flip_stealthily(store_files, block)
    assert staging_store.is_untouched(locator)  # the cheap check is fooled
    dest = tmp_path / "job" / "data.txt"
    with pytest.raises(CorruptBlock) as raised:
        stage(staging_store, pdh, dest)
    assert raised.value.block == locator and raised.value.collection == pdh
    assert locator in str(raised.value) and pdh in str(raised.value)
    assert not os.path.lexists(dest)
    assert block.stat().st_nlink == 1  # no link left behind
    with pytest.raises(CorruptBlock):  # and it stays refused
        stage(staging_store, pdh, tmp_path / "job" / "again.txt")


def test_stealthy_damage_between_two_stages_is_caught(
    store, store_files, pdh, locator, block, tmp_path
):
    stage(store, pdh, tmp_path / "first")
    flip_stealthily(store_files, block)  # e.g. a root job writing through its link
    with pytest.raises(CorruptBlock) as raised:
        stage(store, pdh, tmp_path / "second")
    assert raised.value.block == locator
    assert (tmp_path / "first").exists() and not os.path.lexists(tmp_path / "second")


def test_block_this_instance_wrote_is_linked_without_hashing(
    store, pdh, block, tmp_path, hashed
):
    for name in ("one", "two", "three"):
        dest = stage(store, pdh, tmp_path / name)
        assert dest.stat().st_ino == block.stat().st_ino
        assert dest.read_bytes() == CONTENT
    assert hashed == []


def test_untouched_block_is_hashed_once_per_instance(fresh, pdh, block, tmp_path, hashed):
    stage(fresh, pdh, tmp_path / "one")
    assert hashed == [block.stat().st_ino]
    for name in ("two", "three"):
        assert stage(fresh, pdh, tmp_path / name).stat().st_ino == block.stat().st_ino
    assert len(hashed) == 1


def test_another_actor_linking_the_block_costs_one_hash(
    fresh, pdh, block, tmp_path, hashed
):
    stage(fresh, pdh, tmp_path / "one")
    assert len(hashed) == 1
    os.link(block, tmp_path / "linked by someone else")  # moves the ctime
    stage(fresh, pdh, tmp_path / "two")
    assert len(hashed) == 2
    stage(fresh, pdh, tmp_path / "three")
    assert len(hashed) == 2
    assert (tmp_path / "three").read_bytes() == CONTENT


def test_concurrent_stages_of_one_block_hash_it_once(fresh, pdh, block, tmp_path, hashed):
    errors = []

    def run(index):
        try:
            stage(fresh, pdh, tmp_path / f"job{index}")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(hashed) == 1
    assert {(tmp_path / f"job{i}").stat().st_ino for i in range(8)} == {block.stat().st_ino}


def test_touched_but_intact_block_is_replaced_and_then_trusted(
    store, pdh, block, tmp_path, hashed
):
    touched = block.stat().st_ino
    os.utime(block)  # mtime no longer the sentinel: the cheap check fails
    stage(store, pdh, tmp_path / "one")
    assert block.stat().st_ino != touched
    stage(store, pdh, tmp_path / "two")
    assert hashed == []  # read_verified hashed it, and the fresh copy is ours


def test_reputting_the_original_repairs_a_stealthily_damaged_block(
    store, fresh, store_files, source, pdh, locator, block, tmp_path, monkeypatch
):
    monkeypatch.setattr(put_cache, "RACY_WINDOW_NS", 0)
    reads = []
    real_read_blocks = file_ingest.read_blocks

    def spy(*args):
        reads.append(args[1].name)
        return real_read_blocks(*args)

    monkeypatch.setattr(file_ingest, "read_blocks", spy)
    time.sleep(0.02)  # let the coarse clock tick past the file's ctime
    assert store.put_paths([source]) == pdh
    assert fresh.put_paths([source]) == pdh
    assert reads == [str(source)]  # the put cache knows the file now
    flip_stealthily(store_files, block)
    damaged_inode = block.stat().st_ino
    # The put cache still knows the file: the repair must not trust the cheap check.
    assert store.put_paths([source]) == pdh
    assert reads == [str(source)] * 2
    assert block.read_bytes() == CONTENT
    assert block.stat().st_ino != damaged_inode
    assert store.is_untouched(locator)
    assert stage(store, pdh, tmp_path / "job").read_bytes() == CONTENT
    assert stage(fresh, pdh, tmp_path / "job2").read_bytes() == CONTENT
    assert b"".join(fresh.open_file(pdh, "data.txt")) == CONTENT


@pytest.mark.parametrize("how", ["same instance", "fresh instance", "put_block"])
def test_storing_the_same_content_again_repairs_the_block(
    store, fresh, store_files, write_file, pdh, locator, block, tmp_path, how
):
    flip_stealthily(store_files, block)
    if how == "put_block":
        assert fresh.put_block(CONTENT) == locator
    else:
        # A byte-identical copy elsewhere: no put cache entry, the blocks are hashed.
        copy = write_file(tmp_path / "copy" / "data.txt", CONTENT)
        putter = store if how == "same instance" else fresh
        assert putter.put_paths([copy]) == pdh
    assert block.read_bytes() == CONTENT
    assert stage(fresh, pdh, tmp_path / "job").read_bytes() == CONTENT


def test_ingest_move_repairs_a_damaged_block(fresh, store_files, write_file, pdh, block,
                                             tmp_path):
    flip_stealthily(store_files, block)
    output = write_file(tmp_path / "out" / "data.txt", CONTENT)
    assert fresh.ingest_dir(tmp_path / "out", move=True) == pdh
    assert block.read_bytes() == CONTENT
    assert block.stat().st_ino == output.stat().st_ino  # adopted in place of the bad one


def test_adopt_refuses_a_file_changed_since_it_was_read(tmp_path, store_files):
    block_store = blocks.BlockStore(tmp_path / "store")
    source = tmp_path / "out.txt"
    source.write_bytes(b"first")
    read_as = source.stat()
    source.write_bytes(b"other")
    os.utime(source, ns=(read_as.st_atime_ns, read_as.st_mtime_ns))
    assert not block_store.adopt(source, store_files.locator(b"first"), read_as=read_as)
    assert not block_store.path_for(store_files.locator(b"first")).exists()


def test_missing_blocks_stays_a_cheap_check(store, store_files, pdh, locator, block,
                                            hashed):
    flip_stealthily(store_files, block)
    # Documented: stat only, silent corruption is for the readers to find.
    assert store.missing_blocks([locator]) == []
    assert hashed == []


def test_open_file_and_export_hash_even_known_good_blocks(
    store, store_files, pdh, locator, block, tmp_path
):
    flip_stealthily(store_files, block)
    # Simulate bit rot, which changes no timestamp: the damaged stat is the known one.
    store._blocks.known_good.remember(locator, block.stat())
    # The documented window: a link is handed out unhashed...
    assert stage(store, pdh, tmp_path / "job").read_bytes() != CONTENT
    # ...but every reader that hands bytes out hashes it.
    with pytest.raises(CorruptBlock):
        b"".join(store.open_file(pdh, "data.txt"))
    with pytest.raises(CorruptBlock):
        store.export(pdh, "data.txt", tmp_path / "exported")
    # And the failure forgets the entry: the next stage hashes and refuses.
    with pytest.raises(CorruptBlock):
        stage(store, pdh, tmp_path / "job2")


def test_export_makes_the_block_known_good(fresh, pdh, tmp_path, hashed):
    fresh.export(pdh, "data.txt", tmp_path / "exported")
    stage(fresh, pdh, tmp_path / "job")
    assert hashed == []


def test_known_good_forgets_on_mismatch_and_is_bounded(tmp_path):
    known = KnownGood(capacity=2)
    files = []
    for name in "abc":
        path = tmp_path / name
        path.write_text(name)
        files.append(path)
    known.remember("a", files[0].stat())
    assert known.matches("a", files[0].stat())
    assert not known.matches("a", files[1].stat())
    assert "a" not in known  # a mismatch removes the entry
    known.remember("a", files[0].stat())
    known.remember("b", files[1].stat())
    assert known.matches("a", files[0].stat())  # now the most recently used
    known.remember("c", files[2].stat())
    assert "b" not in known and "a" in known and "c" in known
    known.forget("a")
    assert "a" not in known
