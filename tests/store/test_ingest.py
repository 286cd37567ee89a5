"""put_paths and ingest_dir: from files on disk to a stored collection."""

import errno
import os
import stat

import pytest

from cwl_crunch.errors import OutsideJobDirectory, StoreError
from cwl_crunch.model import CollectionEntry
from cwl_crunch.store import CollectionStore, Manifest


def read_all(store, pdh, path):
    return b"".join(store.open_file(pdh, path))


def test_put_file_and_tree_keeps_names_empty_dirs_and_exec_bit(store, tmp_path, write_file):
    write_file(tmp_path / "src" / "tool.sh", "#!/bin/sh\n", executable=True)
    write_file(tmp_path / "src" / "odd names" / "100% sure\nreally ü", "x")
    (tmp_path / "src" / "empty").mkdir()
    write_file(tmp_path / "src" / "zero", b"")
    write_file(tmp_path / "single.txt", "single")
    pdh = store.put_paths([tmp_path / "src", tmp_path / "single.txt"])
    assert store.list(pdh) == [
        CollectionEntry("single.txt", "file", 6),
        CollectionEntry("src", "dir", 0),
        CollectionEntry("src/empty", "dir", 0),
        CollectionEntry("src/odd names", "dir", 0),
        CollectionEntry("src/odd names/100% sure\nreally ü", "file", 1),
        CollectionEntry("src/tool.sh", "file", 10),
        CollectionEntry("src/zero", "file", 0),
    ]
    manifest = store.manifest(pdh)
    tool, zero = manifest.file("src/tool.sh"), manifest.file("src/zero")
    assert tool is not None and tool.executable
    assert zero is not None and zero.locators == () and not zero.executable
    assert read_all(store, pdh, "src/odd names/100% sure\nreally ü") == b"x"
    assert b"f src/odd%20names/100%25%20sure%0Areally%20\xc3\xbc - 1 " in store.manifest_text(pdh)


def test_same_tree_gives_same_pdh_whatever_the_order_and_times(tmp_path, write_file):
    names = ["b/2", "a", "b/1", "c/deep/x", "d"]
    for order, root in ((names, tmp_path / "one"), (list(reversed(names)), tmp_path / "two")):
        for name in order:
            write_file(root / "tree" / name, f"content of {name}")
        (root / "tree" / "empty").mkdir()
        write_file(root / "extra", "e")
    os.utime(tmp_path / "two" / "tree" / "a", (0, 0))
    first = CollectionStore(tmp_path / "s1", block_size=16)
    second = CollectionStore(tmp_path / "s2", block_size=16)
    pdh = first.put_paths([tmp_path / "one" / "tree", tmp_path / "one" / "extra"])
    assert second.put_paths([tmp_path / "two" / "extra", tmp_path / "two" / "tree"]) == pdh
    assert first.ingest_dir(tmp_path / "one") == second.ingest_dir(tmp_path / "two")


def test_multi_block_file(store, store_files, tmp_path, write_file):
    content = bytes(range(40))
    pdh = store.put_paths([write_file(tmp_path / "f", content)])
    locators = store_files.locators_of(pdh, "f")
    assert [int(loc.split("+")[1]) for loc in locators] == [16, 16, 8]
    assert locators == tuple(store_files.locator(content[i : i + 16]) for i in (0, 16, 32))
    assert read_all(store, pdh, "f") == content


def test_same_content_is_stored_once(store, store_files, tmp_path, write_file):
    block = b"sixteen bytes!!!"
    write_file(tmp_path / "d" / "one", block * 3)
    write_file(tmp_path / "d" / "two", block)
    pdh = store.put_paths([tmp_path / "d"])
    assert len(store_files.blocks()) == 1
    assert store.put_paths([tmp_path / "d"]) == pdh
    assert len(store_files.blocks()) == 1


def test_put_copies_and_never_links_the_users_file(store, store_files, tmp_path, write_file):
    original = write_file(tmp_path / "mine.txt", "version 1")
    pdh = store.put_paths([original])
    assert original.stat().st_nlink == 1
    assert original.stat().st_ino not in {p.stat().st_ino for p in store_files.blocks()}
    assert stat.S_IMODE(original.stat().st_mode) == 0o644
    with open(original, "r+b") as edited:
        edited.write(b"VERSION")
    assert read_all(store, pdh, "mine.txt") == b"version 1"


def test_missing_path_and_duplicate_names_are_errors(store, tmp_path, write_file):
    with pytest.raises(StoreError, match=f"cannot put {tmp_path / 'nope'}: no such file"):
        store.put_paths([tmp_path / "nope"])
    a = write_file(tmp_path / "a" / "same", "1")
    b = write_file(tmp_path / "b" / "same", "2")
    with pytest.raises(StoreError, match="each would be 'same' at the top"):
        store.put_paths([a, b])
    assert store.root.joinpath("manifests").exists() is False


def test_symlinks_are_followed_dangling_links_and_fifos_skipped(store, tmp_path, write_file):
    target = write_file(tmp_path / "elsewhere" / "target.txt", "target")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.txt").symlink_to(target)
    (tree / "dangling").symlink_to(tmp_path / "gone")
    (tree / "linked dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    os.mkfifo(tree / "fifo")
    (tmp_path / "top link").symlink_to(target)
    pdh = store.put_paths([tree, tmp_path / "top link"])
    assert [(e.path, e.kind) for e in store.list(pdh)] == [
        ("top link", "file"),
        ("tree", "dir"),
        ("tree/link.txt", "file"),
        ("tree/linked dir", "dir"),
        ("tree/linked dir/target.txt", "file"),
    ]
    assert read_all(store, pdh, "tree/link.txt") == b"target"


def test_a_directory_of_only_skipped_things_is_an_empty_dir(store, tmp_path):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    os.mkfifo(tmp_path / "tree" / "sub" / "fifo")
    pdh = store.put_paths([tmp_path / "tree"])
    assert store.manifest_text(pdh) == b"cwl-crunch-manifest 1\nd tree/sub\n"


def test_symlink_loop_is_an_error(store, tmp_path):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "up").symlink_to(tmp_path / "tree")
    with pytest.raises(StoreError, match="symlink loop"):
        store.put_paths([tmp_path / "tree"])


def test_name_that_is_not_utf8_is_an_error(store, tmp_path):
    bad = os.fsencode(tmp_path / "dir") + b"/bad\xff"
    os.mkdir(tmp_path / "dir")
    with open(bad, "wb"):
        pass
    with pytest.raises(StoreError, match="not valid UTF-8"):
        store.put_paths([tmp_path / "dir"])


def test_put_of_fifo_is_an_error(store, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(StoreError, match="not a regular file or directory"):
        store.put_paths([tmp_path / "fifo"])


def test_ingest_dir_makes_the_contents_the_root(store, tmp_path, write_file):
    write_file(tmp_path / "out" / "result.txt", "result")
    (tmp_path / "out" / "empty").mkdir()
    pdh = store.ingest_dir(tmp_path / "out")
    assert store.manifest_text(pdh).splitlines()[1:] == [
        b"d empty",
        b"f result.txt - 6 " + store.manifest(pdh).files().__next__().locators[0].encode(),
    ]
    assert (tmp_path / "out" / "result.txt").stat().st_nlink == 1  # copied, not moved


def test_ingest_of_an_empty_or_missing_dir(store, tmp_path):
    (tmp_path / "empty").mkdir()
    assert store.manifest(store.ingest_dir(tmp_path / "empty")) == Manifest([])
    with pytest.raises(StoreError, match="not a directory"):
        store.ingest_dir(tmp_path / "missing")


def test_ingest_move_links_small_files_into_the_store(store, store_files, tmp_path, write_file):
    output = write_file(tmp_path / "out" / "small.txt", "fits in a block")
    pdh = store.ingest_dir(tmp_path / "out", move=True)
    (locator,) = store_files.locators_of(pdh, "small.txt")
    block = store_files.block_path(locator)
    assert block.stat().st_ino == output.stat().st_ino
    assert store.is_untouched(locator)
    assert store_files.blocks() == [block]
    assert list(store.root.joinpath("tmp").glob("*")) == []


def test_ingest_move_splits_large_files(store, store_files, tmp_path, write_file):
    output = write_file(tmp_path / "out" / "large", bytes(range(40)))
    pdh = store.ingest_dir(tmp_path / "out", move=True)
    assert len(store_files.locators_of(pdh, "large")) == 3
    assert output.stat().st_ino not in {p.stat().st_ino for p in store_files.blocks()}
    assert read_all(store, pdh, "large") == bytes(range(40))


def test_ingest_move_stores_nothing_new_for_known_content(store, store_files, tmp_path, write_file):
    known = store.put_paths([write_file(tmp_path / "in.txt", "same")])
    output = write_file(tmp_path / "out" / "copy.txt", "same")
    before = [(p, p.stat().st_ino) for p in store_files.blocks()]
    store.ingest_dir(tmp_path / "out", move=True)
    assert [(p, p.stat().st_ino) for p in store_files.blocks()] == before
    assert output.stat().st_nlink == 1
    assert store.has_collection(known)


def test_ingest_move_copies_files_it_does_not_own(store, store_files, tmp_path, write_file):
    outside = write_file(tmp_path / "user" / "precious.txt", "not yours")
    shared = write_file(tmp_path / "out" / "shared.txt", "linked twice")
    os.link(shared, tmp_path / "user" / "other-link")
    (tmp_path / "out" / "link").symlink_to(outside)
    pdh = store.ingest_dir(tmp_path / "out", move=True)
    assert read_all(store, pdh, "link") == b"not yours"
    block_inodes = {p.stat().st_ino for p in store_files.blocks()}
    for path in (outside, shared):
        assert path.stat().st_ino not in block_inodes
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_ingest_move_falls_back_to_copy_when_linking_fails(
    store, store_files, tmp_path, write_file, monkeypatch
):
    output = write_file(tmp_path / "out" / "f.txt", "cross device")

    def no_link(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    pdh = store.ingest_dir(tmp_path / "out", move=True)
    (locator,) = store_files.locators_of(pdh, "f.txt")
    assert store_files.block_path(locator).stat().st_ino != output.stat().st_ino
    assert store.is_untouched(locator)
    assert read_all(store, pdh, "f.txt") == b"cross device"


def test_confined_ingest_skips_links_leading_out_of_the_confining_dir(store, tmp_path,
                                                                       write_file):
    outside = write_file(tmp_path / "host-tmp" / "original.txt", "outside")
    job = tmp_path / "job"
    inside = write_file(job / "in" / "input.txt", "inside")
    out = job / "out"
    out.mkdir()
    (out / "to-input.txt").symlink_to(inside)
    (out / "to-outside.txt").symlink_to(outside)
    (out / "to-outside-dir").symlink_to(outside.parent, target_is_directory=True)
    pdh = store.ingest_dir(out, confine=job)
    assert [e.path for e in store.list(pdh)] == ["to-input.txt"]
    assert read_all(store, pdh, "to-input.txt") == b"inside"
    # Unconfined (a user's own put), the same links are followed.
    assert [e.path for e in store.list(store.ingest_dir(out))] == [
        "to-input.txt", "to-outside-dir", "to-outside-dir/original.txt", "to-outside.txt"]


def snapshot(top):
    """(content, mode, inode, link count) of every path below ``top``."""
    return {str(p.relative_to(top)): (p.read_bytes() if p.is_file() else None,
                                       p.lstat().st_mode, p.lstat().st_ino, p.lstat().st_nlink)
            for p in sorted(top.rglob("*"))}


@pytest.fixture
def victim(tmp_path, write_file):
    write_file(tmp_path / "victim" / "precious.txt", "precious")
    write_file(tmp_path / "victim" / "sub" / "deep.txt", "deep")
    return tmp_path / "victim"


@pytest.mark.parametrize("layout", ["out", "res/sub", "job"])
def test_confined_move_ingest_of_a_dir_leading_out_is_refused_and_touches_nothing(
    store, store_files, tmp_path, victim, layout
):
    # out -> victim; res -> victim with res/sub the output; the job dir itself -> victim.
    job = tmp_path / "job"
    if layout == "job":
        job.symlink_to(victim, target_is_directory=True)
        output = job / "sub"
    else:
        job.mkdir()
        (job / layout.split("/")[0]).symlink_to(victim, target_is_directory=True)
        output = job / layout
    before = snapshot(victim)
    with pytest.raises(OutsideJobDirectory) as raised:
        store.ingest_dir(output, move=True, confine=job)
    assert f"symlink to {victim}" in str(raised.value)
    assert snapshot(victim) == before
    assert store_files.blocks() == []


def test_confined_ingest_follows_a_root_link_that_stays_inside(store, tmp_path, write_file):
    job = tmp_path / "job"
    write_file(job / "real" / "f.txt", "mine")
    (job / "out").symlink_to("real", target_is_directory=True)
    pdh = store.ingest_dir(job / "out", move=True, confine=job)
    assert read_all(store, pdh, "f.txt") == b"mine"


def test_confined_ingest_skips_symlink_loops_where_put_refuses_them(store, tmp_path,
                                                                     write_file):
    out = tmp_path / "job" / "out"
    write_file(out / "a" / "f.txt", "kept")
    (out / "a" / "up").symlink_to("..", target_is_directory=True)
    (out / "l1").symlink_to("l2")
    (out / "l2").symlink_to("l1")
    pdh = store.ingest_dir(out, move=True, confine=tmp_path / "job")
    assert [e.path for e in store.list(pdh)] == ["a", "a/f.txt"]
    with pytest.raises(StoreError, match="symlink loop"):
        store.put_paths([out])

