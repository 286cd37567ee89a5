"""Stored manifests: a damaged one is reported as a manifest, and storing it again
repairs it (a copy whose size is right but whose text is not must not be kept)."""

from __future__ import annotations

import hashlib
import stat

import damage
import pytest

from cwl_crunch.errors import CorruptBlock, CorruptManifest


def stealthy_flip(path, offset=3):
    damage.stealthy_flip(path, offset)


@pytest.mark.parametrize("how", ["flip", "stealthy"])
def test_storing_a_damaged_manifest_again_repairs_it(store, store_files, tmp_path,
                                                      write_file, how):
    source = write_file(tmp_path / "f.txt", "some content\n")
    pdh = store.put_paths([source])
    (path,) = store_files.manifests()
    if how == "flip":
        store_files.flip_byte(path, 3)
    else:
        stealthy_flip(path)
    with pytest.raises(CorruptManifest):
        store.manifest(pdh)
    old_inode = path.stat().st_ino

    assert store.put_paths([source]) == pdh

    assert hashlib.sha256(path.read_bytes()).hexdigest() == pdh.split("+")[0]
    assert path.stat().st_ino != old_inode  # a fresh file renamed in, not patched
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.manifest(pdh).file("f.txt") is not None
    assert list((store.root / "tmp").iterdir()) == []


def test_a_damaged_manifest_is_called_a_manifest(store, store_files, tmp_path, write_file):
    pdh = store.put_paths([write_file(tmp_path / "f.txt", "some content\n")])
    (path,) = store_files.manifests()
    stealthy_flip(path)
    with pytest.raises(CorruptBlock) as raised:  # still a kind of store damage
        b"".join(store.open_file(pdh, "f.txt"))
    message = str(raised.value)
    assert message.startswith(f"corrupt manifest of collection {pdh}: "), message
    assert "block" not in message, message
    assert store.damage_of(pdh) == message


def test_storing_an_intact_manifest_again_leaves_it(store, store_files, tmp_path,
                                                     write_file):
    source = write_file(tmp_path / "f.txt", "some content\n")
    store.put_paths([source])
    (path,) = store_files.manifests()
    before = path.stat()
    store.put_paths([source])
    assert path.stat().st_ino == before.st_ino
