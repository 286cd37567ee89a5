"""The put cache: re-putting an unchanged file reads nothing; any change re-reads it.

Re-putting it from another store instance or process hashes none of its blocks either,
unless their stat moved since the cache recorded it (then they are hashed, and repaired
from the file if damaged).
"""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import cwl_crunch
from cwl_crunch.errors import CorruptBlock
from cwl_crunch.store import CollectionStore, file_ingest, put_cache
from cwl_crunch.store import blocks as blocks_module


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
        session.remember(identity, ("a+3", "b+3", "a+3"), {"a+3": (7, 3, 8, 9)})
        assert session.lookup(identity) is None
    with cache.session() as session:
        assert session.lookup(identity) == put_cache.CachedFile(
            ("a+3", "b+3", "a+3"), {"a+3": (7, 3, 8, 9)}
        )
        assert session.lookup(put_cache.FileIdentity("/x", 1, 2, 3, 4, 6)) is None
    database = sqlite3.connect(tmp_path / "cache.sqlite3")
    assert database.execute("SELECT * FROM put_cache").fetchall() == [
        ("/x", 1, 2, 3, 4, 5, "a+3 b+3 a+3", "7:3:8:9 - 7:3:8:9")
    ]
    assert database.execute("PRAGMA user_version").fetchone() == (put_cache.SCHEMA_VERSION,)


@pytest.mark.parametrize(
    "text",
    ["", "1:2:3:4", "1:2:3:4 - 5", "1:2:3 - -", "1:2:x:4 - -", "1:2:3:4:5 - -", "a b c"],
)
def test_malformed_block_stats_vouch_for_nothing(text):
    assert put_cache.decode_block_stats(("a+1", "b+1", "c+1"), text) == {}


def test_contradicting_block_stats_vouch_for_nothing_of_that_block():
    locators = ("a+1", "b+1", "a+1")
    assert put_cache.decode_block_stats(locators, "1:1:1:1 2:1:2:2 1:1:1:9") == {
        "b+1": (2, 1, 2, 2)
    }
    stats = {"a+1": (1, 1, 1, 1), "b+1": (2, 1, 2, 2)}
    encoded = put_cache.encode_block_stats(locators, stats)
    assert put_cache.decode_block_stats(locators, encoded) == stats


# Known-good evidence across store instances and processes ---------------------------


@pytest.fixture
def hashes(monkeypatch):
    """Block files hashed (by verify: what the put cache's all_intact does)."""
    seen = []
    real = blocks_module.file_sha256

    def spy(block_file):
        seen.append(block_file.name)
        return real(block_file)

    monkeypatch.setattr(blocks_module, "file_sha256", spy)
    return seen


CHILD_PUT = """
import json, sys
from pathlib import Path
from cwl_crunch.store import CollectionStore, blocks, file_ingest, put_cache

put_cache.RACY_WINDOW_NS = 0  # the test's files are a few milliseconds old
counts = {"hashed": 0, "read": 0}
real_hash, real_read = blocks.file_sha256, file_ingest.read_blocks

def counting_hash(block_file):
    counts["hashed"] += 1
    return real_hash(block_file)

def counting_read(*args):
    counts["read"] += 1
    return real_read(*args)

blocks.file_sha256 = counting_hash
file_ingest.read_blocks = counting_read
store = CollectionStore(Path(sys.argv[1]), block_size=int(sys.argv[2]))
pdh = store.put_paths([Path(arg) for arg in sys.argv[3:]])
print(json.dumps({"pdh": pdh, **counts}))
"""


def put_in_new_process(store, *paths):
    """Put ``paths`` into ``store``'s root from a new Python process: what it counted."""
    repo = str(Path(cwl_crunch.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", CHILD_PUT, str(store.root), str(store.block_size),
         *map(str, paths)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stealthy_flip(store_files, locator):
    """Change a byte of the block in place and put its mtime back: only ctime tells."""
    settle()  # a later clock tick than the block's recorded ctime, as any real write is
    block = store_files.block_path(locator)
    before = block.stat()
    store_files.flip_byte(block, 1)
    os.utime(block, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = block.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns
    )
    assert after.st_ctime_ns != before.st_ctime_ns
    assert store_files.store.is_untouched(locator)  # the cheap check is fooled
    return block


CONTENT = b"0123456789abcdef" + b"ghijklmnopqrstuv" + b"wxyz"  # three blocks of the store


def test_a_new_store_instance_trusts_the_recorded_block_stats(
    store, tmp_path, write_file, reads, hashes, no_racy_window
):
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    pdh = store.put_paths([path])
    assert reads == [str(path)] and hashes == []  # blocks written, not hashed
    again = CollectionStore(store.root, block_size=store.block_size)
    assert again.put_paths([path]) == pdh
    assert reads == [str(path)]
    assert hashes == []  # nor hashed again: their stats are as recorded
    # ... and they are known good to the new instance too: staging links them unhashed.
    again.stage(pdh, "data.bin", tmp_path / "staged", writable=False)
    assert hashes == []
    assert (tmp_path / "staged").read_bytes() == CONTENT


def test_a_new_process_trusts_the_recorded_block_stats(store, tmp_path, write_file):
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    first = put_in_new_process(store, path)
    assert (first["read"], first["hashed"]) == (1, 0)
    second = put_in_new_process(store, path)
    assert second == {"pdh": first["pdh"], "read": 0, "hashed": 0}
    assert b"".join(store.open_file(first["pdh"], "data.bin")) == CONTENT


def test_a_new_process_detects_and_repairs_a_stealthy_flip(
    store, store_files, tmp_path, write_file
):
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    first = put_in_new_process(store, path)
    locators = store_files.locators_of(first["pdh"], "data.bin")
    damaged_inode = store_files.block_path(locators[1]).stat().st_ino
    block = stealthy_flip(store_files, locators[1])

    second = put_in_new_process(store, path)
    assert second["pdh"] == first["pdh"]
    # The moved ctime gave it away: hashed, found damaged, the file read again to repair it.
    assert second["hashed"] >= 1 and second["read"] == 1
    assert block.read_bytes() == CONTENT[16:32]
    assert block.stat().st_ino != damaged_inode
    assert b"".join(store.open_file(first["pdh"], "data.bin")) == CONTENT
    # The repaired blocks' stats were recorded in turn.
    assert put_in_new_process(store, path) == {"pdh": first["pdh"], "read": 0, "hashed": 0}


def test_a_new_store_instance_detects_and_repairs_a_stealthy_flip(
    store, store_files, tmp_path, write_file, reads, hashes, no_racy_window
):
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    pdh = store.put_paths([path])
    locators = store_files.locators_of(pdh, "data.bin")
    block = stealthy_flip(store_files, locators[2])
    again = CollectionStore(store.root, block_size=store.block_size)
    assert again.put_paths([path]) == pdh
    assert str(block) in hashes
    assert reads == [str(path), str(path)]
    assert block.read_bytes() == CONTENT[32:]
    assert b"".join(again.open_file(pdh, "data.bin")) == CONTENT


def test_a_block_linked_since_is_hashed_once_and_its_new_stat_recorded(
    store, store_files, tmp_path, write_file, hashes, no_racy_window
):
    path = write_file(tmp_path / "data.bin", b"one block")
    settle()
    pdh = store.put_paths([path])
    (locator,) = store_files.locators_of(pdh, "data.bin")
    recorded = store_files.block_path(locator).stat()
    settle()
    # A job's hard link moves the block's ctime: the recorded stat no longer matches.
    store.stage(pdh, "data.bin", tmp_path / "job" / "data.bin", writable=False)
    assert store_files.block_path(locator).stat().st_nlink == 2
    assert store_files.block_path(locator).stat().st_ctime_ns != recorded.st_ctime_ns
    assert hashes == []  # this instance knew it good
    CollectionStore(store.root, block_size=store.block_size).put_paths([path])
    assert hashes == [str(store_files.block_path(locator))]
    hashes.clear()
    CollectionStore(store.root, block_size=store.block_size).put_paths([path])
    assert hashes == []


def test_only_a_block_with_exactly_the_recorded_stat_is_trusted(
    store, store_files, tmp_path, write_file, hashes, no_racy_window
):
    """The documented gap: damage that leaves the stat as recorded (bit rot) is trusted
    by a put, in any process; readers still hash every block and report it."""
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    pdh = store.put_paths([path])
    block = stealthy_flip(store_files, store_files.locators_of(pdh, "data.bin")[0])
    # Pretend the damage left the stat alone: record the damaged block's stat as good.
    database = sqlite3.connect(store.root / "cache" / "put-cache.sqlite3")
    with database:
        (stats,) = database.execute("SELECT block_stats FROM put_cache").fetchone()
        info = block.stat()
        forged = f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"
        database.execute(
            "UPDATE put_cache SET block_stats = ?",
            (" ".join([forged, *stats.split()[1:]]),),
        )
    database.close()
    again = CollectionStore(store.root, block_size=store.block_size)
    assert again.put_paths([path]) == pdh
    assert hashes == []
    with pytest.raises(CorruptBlock):
        b"".join(again.open_file(pdh, "data.bin"))


def test_only_blocks_known_good_are_recorded(
    store, store_files, tmp_path, write_file, no_racy_window, monkeypatch
):
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    real = file_ingest.read_blocks

    def read_then_touch(blocks, source, block_size):
        content = real(blocks, source, block_size)
        # Another process chmods one block between the write and the record.
        os.chmod(blocks.path_for(content.locators[1]), 0o444)
        return content

    monkeypatch.setattr(file_ingest, "read_blocks", read_then_touch)
    pdh = store.put_paths([path])
    locators = store_files.locators_of(pdh, "data.bin")
    database = sqlite3.connect(store.root / "cache" / "put-cache.sqlite3")
    (stats,) = database.execute("SELECT block_stats FROM put_cache").fetchone()
    database.close()
    recorded = put_cache.decode_block_stats(locators, stats)
    assert sorted(recorded) == sorted([locators[0], locators[2]])
    for locator in recorded:
        info = store_files.block_path(locator).stat()
        assert recorded[locator] == (
            info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns
        )


# Old and new cache files -----------------------------------------------------------


def make_old_cache(path, identity, locators):
    """A cache file as cwl-crunch wrote it before block stats (no user_version)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    database = sqlite3.connect(path)
    with database:
        database.execute(
            "CREATE TABLE put_cache_v1 (realpath TEXT NOT NULL, device INTEGER NOT NULL,"
            " inode INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
            " ctime_ns INTEGER NOT NULL, locators TEXT NOT NULL,"
            " PRIMARY KEY (realpath, device, inode))"
        )
        database.execute(
            "INSERT INTO put_cache_v1 VALUES (?, ?, ?, ?, ?, ?, ?)",
            (identity.realpath, identity.device, identity.inode, identity.size,
             identity.mtime_ns, identity.ctime_ns, " ".join(locators)),
        )
    database.close()


def test_an_old_cache_file_is_replaced(
    store, store_files, tmp_path, write_file, reads, hashes, no_racy_window
):
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    cache_file = store.root / "cache" / "put-cache.sqlite3"
    identity = put_cache.FileIdentity.of(os.path.realpath(path), path.stat())
    make_old_cache(cache_file, identity, [store_files.locator(CONTENT)])
    pdh = store.put_paths([path])
    assert reads == [str(path)]  # the old entries are gone with the old table
    database = sqlite3.connect(cache_file)
    tables = database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert [name for (name,) in tables] == ["put_cache"]
    assert database.execute("PRAGMA user_version").fetchone() == (put_cache.SCHEMA_VERSION,)
    database.close()
    assert CollectionStore(store.root, block_size=store.block_size).put_paths([path]) == pdh
    assert reads == [str(path)] and hashes == []


def test_an_old_cache_file_opened_by_many_at_once(tmp_path):
    cache_file = tmp_path / "cache" / "put-cache.sqlite3"
    identity = put_cache.FileIdentity("/x", 1, 2, 3, 4, 5)
    make_old_cache(cache_file, identity, ["a+3"])
    caches = [put_cache.PutCache(cache_file) for _ in range(8)]
    barrier = threading.Barrier(len(caches))

    def use(index):
        barrier.wait()
        with caches[index].session() as session:
            assert session._connection is not None
            assert session.lookup(identity) is None
            session.remember(
                put_cache.FileIdentity("/y", 1, index, 3, 4, 5), ("b+3",), {}
            )

    with ThreadPoolExecutor(len(caches)) as pool:
        list(pool.map(use, range(len(caches))))
    database = sqlite3.connect(cache_file)
    assert database.execute("SELECT COUNT(*) FROM put_cache").fetchone() == (len(caches),)
    database.close()


def test_a_cache_file_from_a_newer_version_is_left_alone(
    store, tmp_path, write_file, reads, no_racy_window, caplog
):
    cache_file = store.root / "cache" / "put-cache.sqlite3"
    cache_file.parent.mkdir(parents=True)
    database = sqlite3.connect(cache_file)
    with database:
        database.execute("CREATE TABLE put_cache (future TEXT)")
        database.execute(f"PRAGMA user_version = {put_cache.SCHEMA_VERSION + 1}")
    database.close()
    path = write_file(tmp_path / "data.bin", CONTENT)
    settle()
    pdh = store.put_paths([path])
    assert store.put_paths([path]) == pdh
    assert reads == [str(path), str(path)]  # no cache
    assert "newer" in caplog.text
    database = sqlite3.connect(cache_file)
    assert database.execute("PRAGMA user_version").fetchone() == (
        put_cache.SCHEMA_VERSION + 1,
    )
    assert database.execute("SELECT sql FROM sqlite_master").fetchall() == [
        ("CREATE TABLE put_cache (future TEXT)",)
    ]
    database.close()
