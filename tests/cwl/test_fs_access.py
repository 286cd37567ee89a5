"""CrunchFsAccess and MaterializingFsAccess against a real embedded cluster."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from cwltool.process import relocateOutputs
from cwltool.utils import get_listing

from cwl_crunch.cwl.fs_access import (
    CrunchFsAccess,
    MaterializingFsAccess,
    keep_location,
    split_keep_location,
)
from cwl_crunch.cwl.layout import JOB_ROOT, OUTDIR
from cwl_crunch.errors import CollectionNotFound, InvalidManifest, PathNotFound

UNKNOWN_PDH = "0" * 64 + "+123"
BIG = os.urandom((5 << 20) // 2)  # 2.5 MiB: several read_file chunks
FILES = {
    "a.txt": b"alpha\n",
    "b.txt": b"bravo bravo\n",
    "item #1.txt": b"hash mark\n",
    "with space.txt": b"space\n",
    "100% sure.txt": b"percent\n",
    "caf\u00e9.txt": "caf\u00e9 au lait\n".encode(),
    ".hidden.txt": b"hidden\n",
    "out.json": json.dumps({"n": 1}).encode(),
    "big.bin": BIG,
    "dir/c.txt": b"charlie\n",
    "dir/d.csv": b"1,2\n",
    "dir/sub dir/e.txt": b"echo\n",
    "deep/x/y.txt": b"yankee\n",
}


@pytest.fixture
def pdh(cluster, tmp_path):
    source = tmp_path / "source"
    for name, content in FILES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(content)
    (source / "empty").mkdir()
    return cluster.put(*sorted(source.iterdir()))


@pytest.fixture
def fs(client):
    return CrunchFsAccess("", client=client)


def loc(pdh, path=""):
    return keep_location(pdh, path)


def root(pdh):
    return "keep:" + pdh


# glob ------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "expected"), [
    ("*.txt", ["100% sure.txt", "a.txt", "b.txt", "café.txt", "item #1.txt",
               "with space.txt"]),
    ("dir/*", ["dir/c.txt", "dir/d.csv", "dir/sub dir"]),
    ("*/*.txt", ["dir/c.txt"]),
    ("*/*/*.txt", ["deep/x/y.txt", "dir/sub dir/e.txt"]),
    ("item #1.txt", ["item #1.txt"]),
    ("dir/sub dir", ["dir/sub dir"]),
    ("?.txt", ["a.txt", "b.txt"]),
    ("[ab].txt", ["a.txt", "b.txt"]),
    (".h*", [".hidden.txt"]),
    ("empty", ["empty"]),
    ("empty/*", []),
    ("nothing*", []),
    ("missing.txt", []),
    ("a.txt/*", []),
    ("../a.txt", []),
    ("dir/../a.txt", ["a.txt"]),
])
def test_glob_matches_segment_by_segment(fs, pdh, pattern, expected):
    assert fs.glob(fs.join(root(pdh), pattern)) == sorted(loc(pdh, p) for p in expected)


def test_glob_results_are_quoted(fs, pdh):
    assert fs.glob(root(pdh) + "/item #1.txt") == [root(pdh) + "/item%20%231.txt"]
    assert fs.glob(root(pdh) + "/dir/sub*") == [root(pdh) + "/dir/sub%20dir"]


@pytest.mark.parametrize("suffix", ["", "/", "/."])
def test_glob_of_the_root_is_the_root(fs, pdh, suffix):
    """cwltool cuts glob(outdir)[0] off every result, so it must be outdir itself."""
    assert fs.glob(root(pdh) + suffix) == [root(pdh)]


def test_glob_dot_as_cwltool_joins_it(fs, pdh):
    """cwltool turns the glob "." into join(outdir, outdir)."""
    assert fs.glob(fs.join(root(pdh), root(pdh))) == [root(pdh)]


def test_glob_of_unknown_collection_is_empty(fs):
    assert fs.glob(root(UNKNOWN_PDH) + "/*") == []
    assert fs.glob(root(UNKNOWN_PDH)) == []


# quoting ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["with space.txt", "item #1.txt", "100% sure.txt",
                                  "caf\u00e9.txt", "dir/sub dir/e.txt"])
def test_quoting_round_trip(fs, pdh, name):
    [found] = fs.glob(fs.join(root(pdh), name))
    assert found == loc(pdh, name)
    assert " " not in found and "#" not in found
    assert unquote(found[len(root(pdh)) + 1:]) == name
    assert split_keep_location(found) == (pdh, name)
    assert fs.isfile(found)
    assert fs.size(found) == len(FILES[name])
    with fs.open(found, "rb") as f:
        assert f.read() == FILES[name]
    parent = fs.join(root(pdh), *name.split("/")[:-1])
    assert found in fs.listdir(fs.glob(parent)[0])


# open ---------------------------------------------------------------------------------


def test_open_text_decodes_utf8(fs, pdh):
    with fs.open(loc(pdh, "caf\u00e9.txt"), "r") as f:
        assert f.read() == "caf\u00e9 au lait\n"
    with fs.open(loc(pdh, "out.json"), "r") as f:
        assert json.load(f) == {"n": 1}


def test_open_binary_reads_in_pieces(fs, pdh):
    with fs.open(loc(pdh, "a.txt"), "rb") as f:
        assert f.read(2) == b"al"
        assert f.read(100) == b"pha\n"
        assert f.read(1) == b""


def test_open_streams_a_multi_chunk_file(fs, pdh):
    pieces = []
    with fs.open(loc(pdh, "big.bin"), "rb") as f:
        while piece := f.read(1_000_003):
            pieces.append(piece)
    assert b"".join(pieces) == BIG
    assert len(pieces) == 3


def test_open_closed_early_is_fine(fs, pdh):
    f = fs.open(loc(pdh, "big.bin"), "rb")
    assert f.read(5) == BIG[:5]
    f.close()
    assert f.closed


@pytest.mark.parametrize("mode", ["w", "wb", "a", "r+", "x"])
def test_open_for_writing_is_refused(fs, pdh, mode):
    with pytest.raises(PermissionError, match="immutable"):
        fs.open(loc(pdh, "a.txt"), mode)


@pytest.mark.parametrize(("path", "error"), [
    ("missing.txt", PathNotFound),
    ("dir", PathNotFound),
    ("", PathNotFound),
])
def test_open_what_is_not_a_file(fs, pdh, path, error):
    with pytest.raises(error, match=pdh.replace("+", r"\+")):
        fs.open(loc(pdh, path), "rb")


def test_open_unknown_collection(fs):
    with pytest.raises(CollectionNotFound, match="no collection"):
        fs.open(loc(UNKNOWN_PDH, "a.txt"), "r")


# exists / size / isfile / isdir -----------------------------------------------------------


@pytest.mark.parametrize(("path", "kind", "size"), [
    ("a.txt", "file", 6),
    ("big.bin", "file", len(BIG)),
    ("", "dir", 0),
    ("dir", "dir", 0),
    ("dir/sub dir", "dir", 0),
    ("deep", "dir", 0),
    ("deep/x", "dir", 0),
    ("empty", "dir", 0),
    ("missing.txt", None, None),
    ("dir/missing", None, None),
    ("a.txt/below", None, None),
])
def test_kinds_and_sizes(fs, pdh, path, kind, size):
    location = loc(pdh, path)
    assert fs.exists(location) == (kind is not None)
    assert fs.isfile(location) == (kind == "file")
    assert fs.isdir(location) == (kind == "dir")
    if size is None:
        with pytest.raises(PathNotFound):
            fs.size(location)
    else:
        assert fs.size(location) == size


def test_trailing_slash_names_the_same_dir(fs, pdh):
    assert fs.isdir(root(pdh) + "/")
    assert fs.isdir(root(pdh) + "/dir/")


def test_unknown_collection_does_not_exist(fs):
    for location in (root(UNKNOWN_PDH), loc(UNKNOWN_PDH, "a.txt")):
        assert not fs.exists(location)
        assert not fs.isfile(location)
        assert not fs.isdir(location)
    # An OSError, which cwltool's add_sizes takes as "no size": a collection held only
    # by a peer (its resident data) is listed to nobody here.
    with pytest.raises(FileNotFoundError, match=re.escape(UNKNOWN_PDH)):
        fs.size(loc(UNKNOWN_PDH, "a.txt"))


def test_malformed_reference_is_a_clear_error(fs):
    with pytest.raises(InvalidManifest, match="bad collection reference"):
        fs.exists("keep:not-a-pdh/a.txt")
    with pytest.raises(InvalidManifest):
        fs.glob("keep:not-a-pdh/*")


class FilesOnlyClient:
    """A client whose listings name files only, so every directory is implied."""

    def __init__(self, client):
        self._client = client

    def list_collection(self, pdh, path=""):
        return [e for e in self._client.list_collection(pdh, path) if e.kind == "file"]

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_implied_directories_count(client, pdh):
    fs = CrunchFsAccess("", client=FilesOnlyClient(client))
    assert fs.isdir(loc(pdh, "deep"))
    assert fs.isdir(loc(pdh, "dir/sub dir"))
    assert fs.listdir(loc(pdh, "deep")) == [loc(pdh, "deep/x")]
    assert fs.glob(root(pdh) + "/d*") == [loc(pdh, "deep"), loc(pdh, "dir")]


def test_listing_is_cached_per_collection(client, pdh, monkeypatch):
    """Shared by every fs access of a client: cwltool makes a new one per job."""
    calls = []
    real = client.list_collection
    monkeypatch.setattr(client, "list_collection",
                        lambda p, path="": calls.append(p) or real(p, path))
    for _ in range(3):
        fs = CrunchFsAccess("", client=client)
        assert fs.isfile(loc(pdh, "a.txt"))
        assert fs.glob(root(pdh) + "/*.csv") == []
        assert not fs.exists(loc(UNKNOWN_PDH, "a.txt"))
    assert calls == [pdh, UNKNOWN_PDH, UNKNOWN_PDH, UNKNOWN_PDH]


# listdir / join / realpath ------------------------------------------------------------------


def test_listdir_root_and_subdir(fs, pdh):
    top = [".hidden.txt", "100% sure.txt", "a.txt", "b.txt", "big.bin", "café.txt", "deep",
           "dir", "empty", "item #1.txt", "out.json", "with space.txt"]
    assert fs.listdir(root(pdh)) == [loc(pdh, name) for name in sorted(top)]
    assert fs.listdir(loc(pdh, "dir")) == [loc(pdh, p) for p in
                                           ["dir/c.txt", "dir/d.csv", "dir/sub dir"]]
    assert fs.listdir(loc(pdh, "empty")) == []
    with pytest.raises(PathNotFound, match="it is a file"):
        fs.listdir(loc(pdh, "a.txt"))


def test_cwltool_get_listing_reads_collections(fs, pdh):
    directory = {"class": "Directory", "location": loc(pdh, "dir")}
    get_listing(fs, directory, recursive=True)
    listing = {entry["basename"]: entry for entry in directory["listing"]}
    assert sorted(listing) == ["c.txt", "d.csv", "sub dir"]
    assert listing["sub dir"]["class"] == "Directory"
    assert listing["sub dir"]["listing"][0]["location"] == loc(pdh, "dir/sub dir/e.txt")


@pytest.mark.parametrize(("parts", "expected"), [
    (("keep:x", "a"), "keep:x/a"),
    (("keep:x/", "a", "b c"), "keep:x/a/b c"),
    (("keep:x", "keep:y"), "keep:y"),
    (("/tmp/out", "keep:y", "z"), "keep:y/z"),
    (("keep:x", "/abs"), "/abs"),
    (("/tmp", "a"), "/tmp/a"),
])
def test_join(fs, parts, expected):
    assert fs.join(*parts) == expected


@pytest.mark.parametrize("path", ["keep:x/a%20b", JOB_ROOT, OUTDIR, f"{OUTDIR}/x/../y"])
def test_realpath_is_identity_for_keep_and_job_paths(fs, path):
    assert fs.realpath(path) == path


def test_realpath_resolves_local_links(fs, tmp_path):
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert fs.realpath(str(tmp_path / "link")) == os.path.realpath(tmp_path / "target")


def test_local_paths_still_work(client, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "f.txt").write_text("local\n")
    fs = CrunchFsAccess(str(local), client=client)
    assert fs.exists("f.txt") and fs.isfile(str(local / "f.txt"))
    assert fs.isdir(str(local)) and not fs.exists(str(local / "nope"))
    assert fs.size(str(local / "f.txt")) == 6
    with fs.open(str(local / "f.txt"), "r") as f:
        assert f.read() == "local\n"
    assert fs.glob(str(local / "*.txt")) == [(local / "f.txt").as_uri()]
    assert fs.listdir(str(local)) == [str(local / "f.txt")]
    assert fs.join(str(local), "f.txt") == str(local / "f.txt")


# MaterializingFsAccess -----------------------------------------------------------------------


@pytest.fixture
def copies(client, monkeypatch):
    """Records every get_collection call."""
    calls = []
    real = client.get_collection

    def spy(pdh, path, dest):
        calls.append(path)
        real(pdh, path, dest)

    monkeypatch.setattr(client, "get_collection", spy)
    return calls


@pytest.fixture
def mfs(client, tmp_path):
    return MaterializingFsAccess("", client=client, staging_dir=tmp_path / "staging")


def test_materialize_copies_a_file_once(mfs, pdh, tmp_path, copies):
    first = mfs.realpath(loc(pdh, "item #1.txt"))
    assert first == str(tmp_path / "staging" / pdh / "item #1.txt")
    assert Path(first).read_bytes() == FILES["item #1.txt"]
    assert os.stat(first).st_nlink == 1
    assert mfs.realpath(loc(pdh, "item #1.txt")) == first
    assert copies == ["item #1.txt"]


def test_materialize_a_dir_covers_what_is_inside(mfs, pdh, tmp_path, copies):
    local = mfs.realpath(loc(pdh, "dir"))
    inner = mfs.realpath(loc(pdh, "dir/sub dir/e.txt"))
    assert inner == os.path.join(local, "sub dir", "e.txt")
    assert Path(inner).read_bytes() == b"echo\n"
    assert all(os.stat(os.path.join(d, f)).st_nlink == 1
               for d, _, files in os.walk(local) for f in files)
    assert copies == ["dir"]


def test_materialize_a_dir_after_something_in_it(mfs, pdh, copies):
    inner = mfs.realpath(loc(pdh, "dir/c.txt"))
    local = mfs.realpath(loc(pdh, "dir"))
    assert sorted(os.listdir(local)) == ["c.txt", "d.csv", "sub dir"]
    assert Path(inner).read_bytes() == b"charlie\n"
    assert os.listdir(os.path.join(local, "sub dir")) == ["e.txt"]
    assert copies == ["dir/c.txt", "dir"]


def test_materialize_the_whole_collection(mfs, pdh, tmp_path):
    local = mfs.realpath(root(pdh))
    assert local == str(tmp_path / "staging" / pdh)
    assert os.path.isdir(os.path.join(local, "empty"))
    assert Path(os.path.join(local, "big.bin")).read_bytes() == BIG


def test_materialize_copies_again_after_a_move(mfs, pdh, tmp_path, copies):
    """relocateOutputs moves the copy away; a later realpath must not return a ghost."""
    first = mfs.realpath(loc(pdh, "a.txt"))
    os.rename(first, tmp_path / "moved")
    assert mfs.realpath(loc(pdh, "a.txt")) == first
    assert os.path.isfile(first)
    assert copies == ["a.txt", "a.txt"]


def test_materialize_leaves_other_paths_alone(mfs, tmp_path):
    assert mfs.realpath(OUTDIR) == OUTDIR
    assert mfs.realpath(str(tmp_path)) == os.path.realpath(tmp_path)
    assert not (tmp_path / "staging").exists()


def test_materialize_missing_path_is_a_store_error(mfs, pdh):
    with pytest.raises(PathNotFound):
        mfs.realpath(loc(pdh, "missing.txt"))
    with pytest.raises(CollectionNotFound):
        mfs.realpath(loc(UNKNOWN_PDH, "a.txt"))


def test_relocate_outputs_moves_copies_into_outdir(mfs, pdh, tmp_path):
    """The runner's use: cwltool's relocateOutputs with the staging dir as a source."""
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    outputs = {
        "f": {"class": "File", "location": loc(pdh, "item #1.txt"), "basename": "item #1.txt"},
        "d": {"class": "Directory", "location": loc(pdh, "dir"), "basename": "dir"},
    }
    result = relocateOutputs(outputs, str(outdir), {str(mfs.staging_dir)}, "move", mfs)
    assert result["f"]["location"] == (outdir / "item #1.txt").as_uri()
    assert result["f"]["checksum"].startswith("sha1$")
    assert (outdir / "item #1.txt").read_bytes() == FILES["item #1.txt"]
    assert (outdir / "dir" / "sub dir" / "e.txt").read_bytes() == b"echo\n"
    assert result["d"]["location"] == (outdir / "dir").as_uri()
    assert os.stat(outdir / "dir" / "c.txt").st_nlink == 1
