"""cwl_crunch.cli.job_tree: one line per job, children drawn as a tree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cwl_crunch.cli.job_tree import job_line, render_tree
from cwl_crunch.model import JobRecord, JobSpec

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PDH = "0123456789abcdef0123456789abcdef+9"


def job(uuid, name="", state="Queued", created=0, parent=None, ran=None, **fields):
    started = finished = None
    if ran is not None:
        started = T0 + timedelta(seconds=created)
        finished = started + timedelta(seconds=ran)
    return JobRecord(uuid=uuid, spec=JobSpec(command=("x",), name=name), state=state,
                     parent_uuid=parent, reuse_key="k",
                     created_at=T0 + timedelta(seconds=created),
                     started_at=started, finished_at=finished, **fields)


def test_line_of_a_queued_job():
    assert job_line(job("u1", "step")) == "u1  step  Queued  -"


def test_line_of_an_unnamed_job():
    assert job_line(job("u1")) == "u1  -  Queued  -"


def test_line_of_a_successful_job():
    line = job_line(job("u1", "n", "Complete", ran=5, exit_code=0, output_pdh=PDH))
    assert line == f"u1  n  Complete  5.00s  out {PDH}"


def test_nonzero_exit_is_shown():
    line = job_line(job("u1", "n", "Complete", ran=75, exit_code=3))
    assert line == "u1  n  Complete (exit 3)  1m15s"


def test_failure_reason_is_shown():
    assert job_line(job("u1", "n", "Failed", ran=1, failure_reason="oom")) == \
        "u1  n  Failed (oom)  1.00s"
    assert job_line(job("u1", "n", "Failed", ran=1)) == "u1  n  Failed  1.00s"


def test_reuse_is_shown_before_the_output():
    line = job_line(job("u2", "n", "Complete", ran=0, exit_code=0, reused_job_uuid="u1",
                        output_pdh=PDH))
    assert line == f"u2  n  Complete  0.00s  reused u1  out {PDH}"


def test_cancelled_job():
    assert job_line(job("u1", "n", "Cancelled", failure_reason="cancelled")) == \
        "u1  n  Cancelled  -"


def test_three_level_tree():
    root = job("root", "workflow", "Running", created=0)
    jobs = [
        # Given out of creation order: the tree sorts children by creation time.
        job("b", "second", created=2, parent="root"),
        job("a", "first", created=1, parent="root"),
        job("a2", "a-two", created=4, parent="a"),
        job("a1", "a-one", created=3, parent="a"),
        job("a2x", "deep", created=6, parent="a2"),
        job("b1", "b-one", created=5, parent="b"),
    ]
    asked = []

    def children(uuid):
        asked.append(uuid)
        return [j for j in jobs if j.parent_uuid == uuid]

    lines = render_tree(root, children)
    root_line = job_line(root)
    assert lines == [
        root_line,
        "├── a  first  Queued  -",
        "│   ├── a1  a-one  Queued  -",
        "│   └── a2  a-two  Queued  -",
        "│       └── a2x  deep  Queued  -",
        "└── b  second  Queued  -",
        "    └── b1  b-one  Queued  -",
    ]
    assert sorted(asked) == sorted(["root", "a", "b", "a1", "a2", "a2x", "b1"])


def test_children_with_equal_creation_times_sort_by_name_then_uuid():
    root = job("r")
    kids = [job("z", "same", parent="r"), job("y", "same", parent="r"),
            job("x", "b", parent="r"), job("w", "a", parent="r")]
    lines = render_tree(root, lambda uuid: kids if uuid == "r" else [])
    assert [line.split()[1] for line in lines[1:]] == ["w", "x", "y", "z"]
    assert lines[-1].startswith("└── ")
    assert all(line.startswith("├── ") for line in lines[1:-1])


def test_tree_of_a_lone_job():
    root = job("r", "solo")
    assert render_tree(root, lambda uuid: []) == [job_line(root)]


def test_children_of_a_job_that_reused_work_are_not_asked_for():
    # It never had a token, so it has no children: the job whose work it took has them.
    root = job("r", "run", "Running")
    kids = [job("a", "ran", "Complete", created=1, parent="r", ran=1, exit_code=0),
            job("b", "reused", "Complete", created=2, parent="r", ran=0, exit_code=0,
                reused_job_uuid="old")]
    asked = []

    def children(uuid):
        asked.append(uuid)
        return kids if uuid == "r" else []

    lines = render_tree(root, children)
    assert [line.split()[1] for line in lines[1:]] == ["a", "b"]
    assert asked == ["r", "a"]
