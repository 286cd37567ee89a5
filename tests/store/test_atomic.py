"""Crash safety and concurrency: whole files or nothing, whoever else is writing."""

import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import cwl_crunch.store
from cwl_crunch.store import BLOCK_MTIME_NS, CollectionStore

SOURCE_ROOT = Path(cwl_crunch.store.__file__).resolve().parents[2]

SLOW_PUT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cwl_crunch.store import CollectionStore, atomic

    real_write_all = atomic._write_all

    def write_slowly(fd, chunks):
        # Pause half way through every block, so a kill lands mid-write.
        for chunk in chunks:
            view = memoryview(chunk)
            real_write_all(fd, [view[: len(view) // 2]])
            time.sleep(0.02)
            real_write_all(fd, [view[len(view) // 2 :]])

    atomic._write_all = write_slowly
    CollectionStore(Path(sys.argv[1]), block_size=1 << 16).put_paths([Path(sys.argv[2])])
    """
)

CONCURRENT_PUT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cwl_crunch.store import CollectionStore, put_cache

    put_cache.RACY_WINDOW_NS = 0  # let both processes write the put cache too
    go = Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.001)
    print(CollectionStore(Path(sys.argv[1]), block_size=4096).put_paths([Path(sys.argv[2])]))
    """
)


def python(script, *args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env, **kwargs)


def size_or_zero(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed into place since it was listed
        return 0


def assert_blocks_complete(store):
    blocks = [p for p in (store.root / "blocks").rglob("*") if p.is_file()]
    for block in blocks:
        assert hashlib.sha256(block.read_bytes()).hexdigest() == block.name
        assert stat.S_IMODE(block.stat().st_mode) == 0o444
        assert block.stat().st_mtime_ns == BLOCK_MTIME_NS
    return blocks


def test_killed_put_leaves_only_temp_files(tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(4 << 20))
    store = CollectionStore(tmp_path / "store", block_size=1 << 16)
    child = python(SLOW_PUT, store.root, source)
    deadline = time.monotonic() + 30
    # Kill while a block is half written: some blocks done, a temp file in progress.
    while not (
        len(list((store.root / "blocks").rglob("*/*"))) >= 3
        and any(size_or_zero(p) for p in (store.root / "tmp").glob("*"))
    ):
        assert child.poll() is None, "the put finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()

    assert not (store.root / "manifests").exists()
    assert 3 <= len(assert_blocks_complete(store)) < 64
    leftover_sizes = [p.stat().st_size for p in (store.root / "tmp").iterdir()]
    # The block being written when the kill came is a temp file, not a partial block.
    assert leftover_sizes and all(size <= 1 << 16 for size in leftover_sizes)

    pdh = store.put_paths([source])
    assert pdh == CollectionStore(tmp_path / "fresh", block_size=1 << 16).put_paths([source])
    assert len(assert_blocks_complete(store)) == 64
    assert b"".join(store.open_file(pdh, "big.bin")) == source.read_bytes()


def test_two_processes_putting_the_same_content_at_once(tmp_path):
    source = tmp_path / "same.bin"
    source.write_bytes(os.urandom(1 << 20))
    time.sleep(0.02)
    store = CollectionStore(tmp_path / "store", block_size=4096)
    go = tmp_path / "go"
    children = [
        python(CONCURRENT_PUT, store.root, source, go, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    time.sleep(0.5)  # both started and waiting
    go.touch()
    outputs = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0]
    pdhs = {stdout.strip() for stdout, _ in outputs}
    assert len(pdhs) == 1
    (pdh,) = pdhs
    assert len(assert_blocks_complete(store)) == 256
    assert b"".join(store.open_file(pdh, "same.bin")) == source.read_bytes()


def test_threads_putting_and_reading_at_once(tmp_path):
    contents = [os.urandom(10_000) for _ in range(3)]
    sources = []
    for index, content in enumerate(contents):
        (tmp_path / f"src{index}").mkdir()
        sources.append(tmp_path / f"src{index}" / "data")
        sources[-1].write_bytes(content)
    store = CollectionStore(tmp_path / "store", block_size=1000)
    results: list[tuple[int, str, bytes]] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            index = worker % len(sources)
            pdh = store.put_paths([sources[index]])
            results.append((index, pdh, b"".join(store.open_file(pdh, "data"))))
        except BaseException as error:  # noqa: BLE001 - the test reports any failure
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(data == contents[index] for index, _, data in results)
    assert len({pdh for _, pdh, _ in results}) == 3
    assert_blocks_complete(store)


def failing_chunks():
    yield b"first half"
    raise RuntimeError("source broke")


def test_failed_store_write_leaves_nothing(tmp_path):
    from cwl_crunch.store.atomic import write_into_store

    dest = tmp_path / "store" / "blocks" / "ab" / "abcd"
    with pytest.raises(RuntimeError, match="source broke"):
        write_into_store(tmp_path / "store" / "tmp", dest, failing_chunks())
    assert not dest.exists()
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    write_into_store(tmp_path / "store" / "tmp", dest, [b"whole"], mtime_ns=BLOCK_MTIME_NS)
    assert dest.read_bytes() == b"whole"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o444


def test_failed_copy_out_keeps_the_old_file(tmp_path):
    from cwl_crunch.store.atomic import write_beside

    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="source broke"):
        write_beside(dest, failing_chunks(), mode=0o644)
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
