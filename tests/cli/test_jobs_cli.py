"""``cwl-crunch jobs list | show | tree | logs | cancel`` against real jobs, of an embedded
cluster and of a live server (the ``cli`` fixture)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time

import pytest
from procs import processes_with

from cwl_crunch.cli.jobs import last_lines
from cwl_crunch.cli.main import main
from cwl_crunch.client import JobFilter

COLUMNS = re.compile(r" {2,}")
PARENT_PROGRAM = """
import cwl_crunch
cluster = cwl_crunch.connect()
cluster.submit(["sh", "-c", "echo kid > out/kid.txt"], cores=0.25, name="kid").result()
"""


def jobs_cli(capsys, *argv):
    code = main(["jobs", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table(out):
    """Header cells and rows of a table the CLI printed."""
    header, *rows = out.splitlines()
    return COLUMNS.split(header), [COLUMNS.split(row) for row in rows]


def wait_until(predicate, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.fixture
def some_jobs(cluster):
    """Four top-level jobs (one Failed, one with a child), oldest first, all finished."""
    first = cluster.submit(["sh", "-c", "echo a > out/a"], cores=0.25, name="first")
    first.result(timeout=20)
    second = cluster.submit(["sh", "-c", "echo b > out/b"], cores=0.25, name="second")
    second.result(timeout=20)
    broken = cluster.submit(["/nonexistent/command"], cores=0.25, name="broken")
    assert cluster.client.wait([broken.uuid], 20)[0].state == "Failed"
    parent = cluster.submit([sys.executable, "-c", PARENT_PROGRAM], cores=0.25,
                            name="parent")
    parent.result(timeout=30)
    return [first, second, broken, parent]


def test_list_shows_top_level_jobs_newest_first(cli, some_jobs, capsys):
    code, out, err = jobs_cli(capsys, "list")
    assert (code, err) == (0, "")
    header, rows = table(out)
    assert header == ["UUID", "NAME", "STATE", "CREATED", "DURATION", "REUSED", "OUTPUT"]
    assert [row[0] for row in rows] == [job.uuid for job in reversed(some_jobs)]
    assert [(row[1], row[2]) for row in rows] == [
        ("parent", "Complete"), ("broken", "Failed"), ("second", "Complete"),
        ("first", "Complete")]
    assert rows[0][-1] == some_jobs[3].output
    assert rows[1][-1] == "-"


def test_list_all_includes_children(cli, some_jobs, client, capsys):
    code, out, _ = jobs_cli(capsys, "list", "--all")
    assert code == 0
    _, rows = table(out)
    assert len(rows) == 5
    kid = rows[0]
    assert kid[1:3] == ["kid", "Complete"]
    assert client.get_job(kid[0]).parent_uuid == some_jobs[3].uuid
    assert [row[0] for row in rows[1:]] == [job.uuid for job in reversed(some_jobs)]


def test_list_filters_by_state(cli, some_jobs, capsys):
    code, out, _ = jobs_cli(capsys, "list", "--state", "Failed")
    assert code == 0
    _, rows = table(out)
    assert [(row[0], row[2]) for row in rows] == [(some_jobs[2].uuid, "Failed")]
    code, out, _ = jobs_cli(capsys, "list", "--all", "--state", "Failed", "--state", "Complete")
    _, rows = table(out)
    assert len(rows) == 5


def test_show_prints_the_record(cli, cluster, capsys):
    job = cluster.submit(["sh", "-c", "echo shown > out/s.txt; exit 0"], cores=0.25,
                         name="shown", env={"COLOR": "blue"})
    record = job.result(timeout=20)
    code, out, err = jobs_cli(capsys, "show", job.uuid)
    assert (code, err) == (0, "")
    header, rows = table(out)
    assert header == ["FIELD", "VALUE"]
    fields = {row[0]: row[1] for row in rows}
    assert fields["uuid"] == job.uuid
    assert fields["name"] == "shown"
    assert fields["state"] == "Complete"
    assert fields["exit code"] == "0"
    assert (fields["end reason"], fields["backend"]) == ("exit", "local")
    assert fields["output"] == record.output_pdh
    assert fields["log"] == record.log_pdh
    assert fields["reuse key"] == record.reuse_key
    assert fields["parent"] == "-"
    assert "echo shown" in fields["command"]
    assert "blue" in fields["environment"]


def test_logs_prints_worker_log_stdout_and_stderr(cli, cluster, capsys):
    job = cluster.submit(["sh", "-c", "echo to-stdout-123; echo to-stderr-456 >&2"],
                         cores=0.25, name="chatty")
    job.result(timeout=20)
    code, out, err = jobs_cli(capsys, "logs", job.uuid)
    assert (code, err) == (0, "")
    sections = re.split(r"^==> (\S+) <==\n", out, flags=re.MULTILINE)
    assert sections[0] == ""
    named = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert list(named) == ["worker.txt", "stdout.txt", "stderr.txt"]
    assert named["stdout.txt"] == "to-stdout-123\n"
    assert named["stderr.txt"] == "to-stderr-456\n"
    assert job.uuid in named["worker.txt"]
    assert "running: sh -c" in named["worker.txt"]
    assert "exit code 0" in named["worker.txt"]


def test_cancel_stops_a_running_job(cli, cluster, capsys):
    marker = f"0.000{random.randrange(10**8, 10**9)}"
    job = cluster.submit(["sleep", "300", marker], cores=0.25, name="sleeper")
    try:
        wait_until(lambda: job.record().state == "Running", "the job to run")
        wait_until(lambda: processes_with(marker), "its command to start")
        time.sleep(0.2)
        code, out, err = jobs_cli(capsys, "cancel", job.uuid)
        assert (code, err) == (0, "")
        assert out.startswith(f"{job.uuid} "), out
        assert len(out.splitlines()) == 1
        record = wait_until(lambda: (r := job.record()).finished and r, "the cancel")
        assert record.state == "Cancelled"
        wait_until(lambda: not processes_with(marker), "the command to be killed", 5)
        code, out, _ = jobs_cli(capsys, "show", job.uuid)
        assert re.search(r"^state +Cancelled$", out, flags=re.MULTILINE), out
    finally:
        job.cancel()


@pytest.mark.parametrize("action", ["show", "tree", "logs", "cancel"])
def test_unknown_job_is_a_one_line_error(cli, cluster, capsys, action):
    uuid = "local-job-doesnotexist0000"
    code, out, err = jobs_cli(capsys, action, uuid)
    assert code == 1
    assert out == ""
    assert err == f"cwl-crunch jobs: no job {uuid}\n"


def test_unknown_job_from_a_process_has_no_traceback(cli):
    result = cli.run("jobs", "show", "local-job-nope")
    assert result.returncode == 1
    assert result.stderr == "cwl-crunch jobs: no job local-job-nope\n"
    assert result.stdout == ""


def test_tree_draws_a_run_and_its_children(cli, some_jobs, client, capsys):
    # Over HTTP this asked for a million children in one request: a 422 (issue 12).
    parent = some_jobs[3]
    code, out, err = jobs_cli(capsys, "tree", parent.uuid)
    assert (code, err) == (0, "")
    [kid] = [job for job in client.list_jobs(JobFilter(parent_uuid=parent.uuid))]
    root_line, kid_line = out.splitlines()
    assert root_line.startswith(f"{parent.uuid}  parent  Complete  ")
    assert kid_line.startswith(f"└── {kid.uuid}  kid  Complete  ")
    assert kid_line.endswith(f"out {kid.output_pdh}")


TAIL_PROGRAM = r"""
import sys
print("\n".join(f"out {n}" for n in range(1, 2001)))
sys.stdout.write("no newline at the end")
print("\n".join(f"err {n}" for n in range(1, 4)), file=sys.stderr)
"""


def test_logs_tail_prints_the_last_lines_of_each_log(cli, cluster, capsys):
    job = cluster.submit([sys.executable, "-c", TAIL_PROGRAM], cores=0.25, name="long")
    job.result(timeout=20)
    code, out, err = jobs_cli(capsys, "logs", job.uuid, "--tail", "3")
    assert (code, err) == (0, "")
    sections = re.split(r"^==> (\S+) <==\n", out, flags=re.MULTILINE)
    named = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert list(named) == ["worker.txt", "stdout.txt", "stderr.txt"]
    # As tail(1): the last line counts even without its newline, and the next header
    # comes on a line of its own.
    assert named["stdout.txt"] == "out 1999\nout 2000\nno newline at the end\n"
    assert named["stderr.txt"] == "err 1\nerr 2\nerr 3\n"  # fewer lines than asked: all
    assert len(named["worker.txt"].splitlines()) == 3
    assert "exit code 0" in named["worker.txt"]
    code, out, _ = jobs_cli(capsys, "logs", job.uuid, "--tail", "0")
    assert out == "==> worker.txt <==\n==> stdout.txt <==\n==> stderr.txt <==\n"


@pytest.mark.parametrize("seed", range(40))
def test_last_lines_is_what_tail_prints_however_the_log_is_cut(seed, tmp_path):
    # A log is read block by block: lines cut across blocks must come out whole.
    rng = random.Random(seed)
    text = bytes(rng.choice(b"ab\n\n") for _ in range(rng.randrange(0, 60)))
    cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randrange(1, 6))))
    chunks = [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    count = rng.randrange(0, 8)
    (tmp_path / "log").write_bytes(text)
    expected = subprocess.run(["tail", "-n", str(count), str(tmp_path / "log")],
                              capture_output=True, check=True).stdout
    assert last_lines(iter(chunks), count) == expected, (chunks, count)
