"""Acceptance: a job whose Python program submits 10 children through the SDK.

``cwl-crunch jobs tree`` must show it as one parent with 10 children, all Complete with
outputs. The program inside the job calls plain ``cwl_crunch.connect()``: the worker's
environment points it at the same cluster, and its job token makes it the parent.
"""

from __future__ import annotations

import re
import sys

from cwl_crunch.cli.main import main

PROGRAM = """
import cwl_crunch
cluster = cwl_crunch.connect()
children = [
    cluster.submit(["sh", "-c", 'echo "child $1" > "out/child-$1.txt"', "child", str(i)],
                   cores=0.25, name=f"child-{i}")
    for i in range(10)
]
records = cwl_crunch.wait_all(children, timeout=60)
assert all(r.succeeded for r in records), records
with open("out/children.txt", "w") as f:
    for r in records:
        f.write(f"{r.uuid} {r.output_pdh}\\n")
"""

LINE = re.compile(r"^(?P<prefix>(?:├── |└── )?)(?P<uuid>\S+)  (?P<rest>.*)$")


def test_program_submitting_ten_children_is_one_parent_with_ten_children(
    cluster, client, tmp_path, monkeypatch, capsys,
):
    parent = cluster.submit([sys.executable, "-c", PROGRAM], cores=0.25, name="parent")
    record = parent.result(timeout=60)
    assert record.state == "Complete" and record.exit_code == 0
    assert record.output_pdh is not None
    listed = cluster.read_text(record.output_pdh, "children.txt").split("\n")[:-1]
    written = dict(line.split() for line in listed)
    assert len(written) == 10

    monkeypatch.setenv("CWL_CRUNCH_HOME", str(tmp_path / "home"))
    assert main(["jobs", "tree", parent.uuid]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 11, captured.out

    root = LINE.match(lines[0])
    assert root is not None and root["prefix"] == "" and root["uuid"] == parent.uuid
    assert "  parent  Complete  " in lines[0]
    assert lines[0].endswith(f"  out {record.output_pdh}")

    child_lines = [LINE.match(line) for line in lines[1:]]
    assert all(match is not None for match in child_lines), lines
    assert [m["prefix"] for m in child_lines] == ["├── "] * 9 + ["└── "]
    seen = {}
    for match in child_lines:
        child = client.get_job(match["uuid"])
        assert child.parent_uuid == parent.uuid
        assert child.state == "Complete" and child.exit_code == 0
        assert child.output_pdh is not None
        assert match["rest"].startswith(f"{child.name}  Complete  "), match.group(0)
        assert match["rest"].endswith(f"  out {child.output_pdh}"), match.group(0)
        seen[child.uuid] = child.output_pdh
        index = child.name.removeprefix("child-")
        assert cluster.read_text(child.output_pdh, f"child-{index}.txt") == f"child {index}\n"
    assert seen == written
    assert sorted(client.get_job(u).name for u in seen) == sorted(
        f"child-{i}" for i in range(10))
