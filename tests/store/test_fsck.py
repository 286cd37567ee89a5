"""StoreCheck: every manifest and block of a real store verified, damage named with the
collections using it, and damaged blocks rewritten from the put files that hold them."""

from __future__ import annotations

import hashlib
import os
import stat
import time

import damage

from cwl_crunch.store import CollectionStore
from cwl_crunch.store.blocks import BLOCK_MTIME_NS
from cwl_crunch.store.fsck import StoreCheck
from cwl_crunch.store.put_cache import RACY_WINDOW_NS

CONTENT_A = b"".join(b"line %d\n" % n for n in range(20_000))
CONTENT_B = b"".join(b"other %d\n" % n for n in range(5_000))
BLOCK = 64 << 10


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(tmp_path, name, content, store):
    """Put a new file, once it is old enough for the put cache to remember it."""
    source = tmp_path / "src" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(content)
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)
    return source, store.put_paths([source])


def block_file(store, digest):
    return store.root / "blocks" / digest[:2] / digest


def stealthy_flip(path, offset=10):
    damage.stealthy_flip(path, offset)


def test_an_intact_store_has_no_damage(tmp_path):
    store = CollectionStore(tmp_path / "store", block_size=BLOCK)
    put(tmp_path, "a.txt", CONTENT_A, store)
    check = StoreCheck(store.root)
    assert check.run() == []
    assert check.tally.manifests == 1
    assert check.tally.blocks == check.tally.blocks_total == -(-len(CONTENT_A) // BLOCK)
    assert check.tally.bytes == len(CONTENT_A)


def test_damaged_and_missing_blocks_and_manifests_are_listed(tmp_path):
    store = CollectionStore(tmp_path / "store", block_size=BLOCK)
    _, pdh_a = put(tmp_path, "a.txt", CONTENT_A, store)
    _, pdh_b = put(tmp_path, "b.txt", CONTENT_B, store)
    both = store.put_paths([tmp_path / "src" / "a.txt", tmp_path / "src" / "b.txt"])
    first_a = store.manifest(pdh_a).file("a.txt").locators[0]
    last_b = store.manifest(pdh_b).file("b.txt").locators[-1]
    stealthy_flip(block_file(store, first_a.split("+")[0]))
    block_file(store, last_b.split("+")[0]).unlink()
    manifest_b = store.root / "manifests" / pdh_b[:2] / pdh_b.split("+")[0]
    os.chmod(manifest_b, 0o644)
    with manifest_b.open("ab") as damaged:
        damaged.write(b"x")

    found = StoreCheck(store.root).run()

    by_name = {damage.name: damage for damage in found}
    assert set(by_name) == {first_a, last_b, pdh_b.split("+")[0]}
    manifest = by_name[pdh_b.split("+")[0]]
    assert manifest.kind == "manifest" and "does not match its hash" in manifest.problem
    assert by_name[first_a].kind == "block"
    assert "does not match its hash" in by_name[first_a].problem
    assert sorted(by_name[first_a].collections) == sorted([pdh_a, both])
    assert by_name[last_b].problem == "block file is missing"
    assert by_name[last_b].collections == [both]  # b's own manifest is damaged itself
    assert [damage.kind for damage in found] == ["manifest", "block", "block"]


def test_repair_rewrites_a_block_from_its_unchanged_put_source(tmp_path):
    store = CollectionStore(tmp_path / "store", block_size=BLOCK)
    _, pdh = put(tmp_path, "a.txt", CONTENT_A, store)
    locators = store.manifest(pdh).file("a.txt").locators
    second = block_file(store, locators[1].split("+")[0])
    stealthy_flip(second)
    check = StoreCheck(store.root)
    found = check.run()
    assert [damage.name for damage in found] == [locators[1]]

    check.repair_from_put_sources(found)

    assert found[0].repaired_from == str(tmp_path / "src" / "a.txt")
    assert sha(second.read_bytes()) == locators[1].split("+")[0]
    assert stat.S_IMODE(second.stat().st_mode) == 0o444
    assert second.stat().st_mtime_ns == BLOCK_MTIME_NS
    assert StoreCheck(store.root).run() == []
    assert b"".join(CollectionStore(store.root).open_file(pdh, "a.txt")) == CONTENT_A


def test_a_changed_source_is_no_copy_and_its_next_put_repairs(tmp_path):
    store = CollectionStore(tmp_path / "store", block_size=BLOCK)
    source, pdh = put(tmp_path, "a.txt", CONTENT_A, store)
    first = store.manifest(pdh).file("a.txt").locators[0]
    stealthy_flip(block_file(store, first.split("+")[0]))
    os.utime(source)  # touched: its identity is not the one the put cache remembers
    check = StoreCheck(store.root)
    found = check.run()

    check.repair_from_put_sources(found)

    assert found[0].repaired_from is None
    assert [damage.name for damage in StoreCheck(store.root).run()] == [first]
    # Putting the file again (a fresh store instance, as another process) rewrites it.
    again = CollectionStore(store.root, block_size=BLOCK)
    assert again.put_paths([source]) == pdh
    assert StoreCheck(store.root).run() == []


def test_a_missing_block_is_restored_from_its_put_source(tmp_path):
    store = CollectionStore(tmp_path / "store", block_size=BLOCK)
    _, pdh = put(tmp_path, "b.txt", CONTENT_B, store)
    (only,) = store.manifest(pdh).file("b.txt").locators
    block_file(store, only.split("+")[0]).unlink()
    check = StoreCheck(store.root)
    found = check.run()
    assert [(damage.name, damage.problem) for damage in found] == [
        (only, "block file is missing")]
    check.repair_from_put_sources(found)
    assert found[0].repaired_from is not None
    assert StoreCheck(store.root).run() == []
