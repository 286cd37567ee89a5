"""``cwl-crunch put``, ``ls`` and ``get`` against an embedded cluster in a temp home, and
against a live server on such a home (the ``cli`` fixture)."""

from __future__ import annotations

import os
import re

import pytest

from cwl_crunch.cli.main import main

PDH_LINE = re.compile(r"[0-9a-f]{64}\+[0-9]+\n")


@pytest.fixture
def home(cli):
    """The cluster's own home (the server's, over HTTP)."""
    return cli.home


@pytest.fixture
def inputs(tmp_path):
    source = tmp_path / "inputs"
    (source / "reads" / "empty").mkdir(parents=True)
    (source / "reads" / "sample 1.fq").write_text("@r1\nACGT\n+\nIIII\n")
    (source / "reads" / "big.bin").write_bytes(bytes(3000))
    (source / "ref.fa").write_text(">chr1\nACGTACGT\n")
    return source


def put(capsys, *paths):
    assert main(["put", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert PDH_LINE.fullmatch(out), out
    return out.strip()


def test_put_prints_the_pdh_and_is_repeatable(home, inputs, capsys):
    pdh = put(capsys, inputs / "reads", inputs / "ref.fa")
    assert put(capsys, inputs / "ref.fa", inputs / "reads") == pdh
    assert (home / "store" / "manifests" / pdh[:2] / pdh.split("+")[0]).is_file()


def test_ls_shows_paths_and_sizes(home, inputs, capsys):
    pdh = put(capsys, inputs / "reads", inputs / "ref.fa")
    assert main(["ls", pdh]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "PATH               SIZE",
        "reads/             -",
        "reads/big.bin      2.9 KiB",
        "reads/empty/       -",
        "reads/sample 1.fq  16 B",
        "ref.fa             15 B",
    ]
    assert main(["ls", "--bytes", f"keep:{pdh}/reads/big.bin"]) == 0
    assert capsys.readouterr().out.splitlines() == ["PATH           SIZE", "reads/big.bin  3000"]


def test_ls_escapes_control_characters_in_names(home, tmp_path, capsys):
    (tmp_path / "odd\nname").write_text("x")
    pdh = put(capsys, tmp_path / "odd\nname")
    assert main(["ls", pdh]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "odd\\x0aname  1 B"


def test_get_copies_files_and_directories_out(home, inputs, tmp_path, capsys):
    pdh = put(capsys, inputs / "reads", inputs / "ref.fa")
    assert main(["get", f"{pdh}/ref.fa", str(tmp_path / "copy.fa")]) == 0
    assert (tmp_path / "copy.fa").read_text() == ">chr1\nACGTACGT\n"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["get", f"keep:{pdh}/reads", str(out_dir)]) == 0
    assert (out_dir / "reads" / "sample 1.fq").read_text() == "@r1\nACGT\n+\nIIII\n"
    assert (out_dir / "reads" / "big.bin").read_bytes() == bytes(3000)
    assert (out_dir / "reads" / "empty").is_dir()
    assert main(["get", pdh, str(tmp_path / "whole")]) == 0
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == ["reads", "ref.fa"]
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["ls", "not-a-pdh"], "cwl-crunch ls: bad collection reference 'not-a-pdh'"),
        (["get", "keep:abc+1/x", "dest"], "cwl-crunch get: bad collection reference"),
        (["ls", f"{'0' * 64}+99"], f"cwl-crunch ls: no collection {'0' * 64}+99"),
        (["get", f"{'0' * 64}+99/../x", "dest"], "component"),
    ],
)
def test_bad_reference_is_one_line_and_exit_code_1(home, argv, complaint, capsys):
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(complaint) or complaint in captured.err
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err


def test_missing_path_in_collection_and_missing_input(home, inputs, tmp_path, capsys):
    pdh = put(capsys, inputs / "ref.fa")
    assert main(["ls", f"{pdh}/nope"]) == 1
    assert "has no file or directory 'nope'" in capsys.readouterr().err
    assert main(["put", str(tmp_path / "absent")]) == 1
    err = capsys.readouterr().err
    assert err == f"cwl-crunch put: cannot put {tmp_path / 'absent'}: no such file or directory\n"


LONGEST = "n" * 251 + ".txt"  # 255 bytes: NAME_MAX on ext4, xfs, tmpfs
LONGEST_DIR = "d" * 128 + "é" * 63 + "x"  # 255 bytes of UTF-8 in 192 characters


def test_names_as_long_as_the_filesystem_allows_go_in_and_come_out(home, tmp_path, capsys):
    assert len(LONGEST.encode()) == len(LONGEST_DIR.encode()) == os.pathconf(tmp_path,
                                                                           "PC_NAME_MAX")
    source = tmp_path / "src" / LONGEST_DIR
    source.mkdir(parents=True)
    (source / LONGEST).write_text("long\n")
    (tmp_path / "src" / LONGEST).write_bytes(bytes(5000))
    pdh = put(capsys, source, tmp_path / "src" / LONGEST)
    single = tmp_path / "single"
    single.mkdir()
    assert main(["get", f"{pdh}/{LONGEST}", str(single)]) == 0
    assert (single / LONGEST).read_bytes() == bytes(5000)
    assert main(["get", pdh, str(tmp_path / "whole")]) == 0
    assert (tmp_path / "whole" / LONGEST_DIR / LONGEST).read_text() == "long\n"
    assert sorted(os.listdir(tmp_path / "whole")) == sorted([LONGEST, LONGEST_DIR])
    assert sorted(os.listdir(single)) == [LONGEST]  # no temporary file left
