"""The Python SDK: connect, submit, futures, wait_all, collections, and jobs that submit jobs."""

from __future__ import annotations

import sys
import textwrap
import time
import uuid

import pytest
from polling import wait_until

import cwl_crunch
from cwl_crunch import CollectionMount, JobFailed
from cwl_crunch.cli.main import main as cli_main
from cwl_crunch.client import JobFilter
from cwl_crunch.errors import SubmitError

WAIT = 30


# Futures ---------------------------------------------------------------------------------

def test_future_of_a_successful_job(cluster):
    future = cluster.submit(["sh", "-c", "echo hello > out/greeting.txt"], cores=0.25)
    assert isinstance(future, cwl_crunch.Future)
    assert future.uuid.startswith("local-job-")
    record = future.result(timeout=WAIT)
    assert record.uuid == future.uuid
    assert record.succeeded
    assert future.done()
    assert future.output == record.output_pdh
    assert future.record() == record
    assert cluster.read_text(future.output, "greeting.txt") == "hello\n"
    assert future.uuid in repr(future)


def test_future_done_is_false_while_running(cluster):
    future = cluster.submit(["sh", "-c", "sleep 0.5; echo x > out/x"])
    assert not future.done()
    assert future.record().state in ("Queued", "Running")
    future.result(timeout=WAIT)
    assert future.done()
    assert future.record().state == "Complete"


def test_result_timeout_raises_timeout_error(cluster):
    future = cluster.submit(["sleep", "20"])
    start = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        future.result(timeout=0.3)
    assert time.monotonic() - start < 3
    assert future.uuid in str(raised.value)
    future.cancel()


def test_nonzero_exit_raises_job_failed(cluster):
    future = cluster.submit(["sh", "-c", "echo bad news >&2; exit 3"])
    with pytest.raises(JobFailed) as raised:
        future.result(timeout=WAIT)
    message = str(raised.value)
    assert future.uuid in message
    assert "cwl-crunch jobs logs" in message
    assert "3" in message
    assert raised.value.job.state == "Complete"
    assert raised.value.job.exit_code == 3
    assert future.done()
    record = future.record()
    assert record.state == "Complete" and record.exit_code == 3
    with pytest.raises(JobFailed):
        _ = future.output


def test_job_failed_is_a_crunch_error(cluster):
    future = cluster.submit([f"no-such-program-{uuid.uuid4().hex[:6]}"])
    with pytest.raises(cwl_crunch.CrunchError) as raised:
        future.result(timeout=WAIT)
    assert isinstance(raised.value, JobFailed)
    assert "Failed" in str(raised.value)
    assert "no-such-program" in str(raised.value)


def test_logs_named_by_job_failed_show_the_output(cluster, tmp_path, monkeypatch, capsys):
    future = cluster.submit(["sh", "-c", "echo visible-stdout; echo visible-stderr >&2; exit 2"])
    with pytest.raises(JobFailed):
        future.result(timeout=WAIT)
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(tmp_path / "home"))
    capsys.readouterr()
    assert cli_main(["jobs", "logs", future.uuid]) == 0
    shown = capsys.readouterr().out
    assert "visible-stdout" in shown
    assert "visible-stderr" in shown


def test_cancel_through_the_future(cluster):
    future = cluster.submit(["sleep", "60"])
    wait_until(lambda: future.record().state == "Running", what="the job to run")
    start = time.monotonic()
    future.cancel()
    with pytest.raises(JobFailed) as raised:
        future.result(timeout=WAIT)
    assert time.monotonic() - start < 10
    assert raised.value.job.state == "Cancelled"
    assert "Cancelled" in str(raised.value)
    assert future.record().state == "Cancelled"


def test_cancel_a_finished_future(cluster):
    future = cluster.submit(["true"])
    record = future.result(timeout=WAIT)
    assert future.cancel() == record
    assert future.record().state == "Complete"


def test_submit_passes_spec_fields(cluster, tmp_path):
    (tmp_path / "words.txt").write_text("b\na\n")
    pdh = cluster.put(tmp_path / "words.txt")
    future = cluster.submit(["sort"], stdin="in/words.txt", stdout="out/sorted.txt",
                            mounts={"in": CollectionMount(pdh)}, name="sorter", cores=0.5,
                            ram=32 << 20, env={"LC_ALL": "C"}, time_limit=20, priority=2)
    record = future.result(timeout=WAIT)
    assert record.name == "sorter"
    assert record.spec.cores == 0.5
    assert record.spec.ram == 32 << 20
    assert record.spec.environment == {"LC_ALL": "C"}
    assert record.spec.priority == 2
    assert cluster.read_text(future.output, "sorted.txt") == "a\nb\n"


def test_submit_unknown_field_is_an_error(cluster):
    with pytest.raises(TypeError):
        cluster.submit(["true"], no_such_field=1)
    assert cluster.client.list_jobs(JobFilter()) == []


def test_submit_refusal_raises_submit_error(cluster):
    with pytest.raises(SubmitError):
        cluster.submit(["true"], cores=0)
    with pytest.raises(SubmitError):
        cluster.submit(["true"], ram=10**15)
    assert cluster.client.list_jobs(JobFilter()) == []


# wait_all --------------------------------------------------------------------------------

def test_wait_all_keeps_the_order_given(cluster):
    slow = cluster.submit(["sh", "-c", "sleep 0.8; echo slow > out/o"], cores=0.25)
    failing = cluster.submit(["sh", "-c", "exit 4"], cores=0.25)
    fast = cluster.submit(["sh", "-c", "echo fast > out/o"], cores=0.25)
    records = cwl_crunch.wait_all([slow, failing, fast], timeout=WAIT)
    assert [r.uuid for r in records] == [slow.uuid, failing.uuid, fast.uuid]
    assert all(r.finished for r in records)
    # They did finish out of order.
    assert records[2].finished_at < records[0].finished_at
    assert records[1].exit_code == 4  # wait_all does not raise for a failure
    assert cluster.read_text(records[0].output_pdh, "o") == "slow\n"
    assert cluster.read_text(records[2].output_pdh, "o") == "fast\n"
    assert slow.done() and fast.done()


def test_wait_all_with_repeats_and_reused_jobs(cluster):
    first = cluster.submit(["sh", "-c", "echo same > out/s"])
    first.result(timeout=WAIT)
    reused = cluster.submit(["sh", "-c", "echo same > out/s"])
    records = cwl_crunch.wait_all([reused, first, reused], timeout=WAIT)
    assert [r.uuid for r in records] == [reused.uuid, first.uuid, reused.uuid]
    assert records[0].reused_job_uuid == first.uuid


def test_wait_all_of_nothing(cluster):
    assert cwl_crunch.wait_all([], timeout=1) == []


def test_wait_all_timeout_returns_unfinished(cluster):
    slow = cluster.submit(["sleep", "20"])
    quick = cluster.submit(["true"])
    start = time.monotonic()
    records = cwl_crunch.wait_all([slow, quick], timeout=1.0)
    assert time.monotonic() - start < 5
    assert records[0].state in ("Queued", "Running")
    assert records[1].state == "Complete"
    slow.cancel()


def test_wait_all_across_two_clusters(tmp_path):
    with cwl_crunch.connect(home=tmp_path / "a", poll_interval=0.05) as a, \
            cwl_crunch.connect(home=tmp_path / "b", poll_interval=0.05) as b:
        fa = a.submit(["sh", "-c", "sleep 0.3; echo a > out/x"])
        fb = b.submit(["sh", "-c", "echo b > out/x"])
        records = cwl_crunch.wait_all([fa, fb], timeout=WAIT)
        assert [r.uuid for r in records] == [fa.uuid, fb.uuid]
        assert a.read_text(records[0].output_pdh, "x") == "a\n"
        assert b.read_text(records[1].output_pdh, "x") == "b\n"


# Collections -----------------------------------------------------------------------------

def test_put_and_read_text(cluster, tmp_path):
    (tmp_path / "notes.txt").write_text("some notes\n")
    (tmp_path / "data" / "deep").mkdir(parents=True)
    (tmp_path / "data" / "deep" / "x.csv").write_text("a,b\n1,2\n")
    pdh = cluster.put(tmp_path / "notes.txt", str(tmp_path / "data"))
    assert cluster.read_text(pdh, "notes.txt") == "some notes\n"
    assert cluster.read_text(pdh, "data/deep/x.csv") == "a,b\n1,2\n"
    assert cluster.client.has_collection(pdh)
    # Content-addressed: storing the same thing again gives the same PDH.
    assert cluster.put(tmp_path / "notes.txt", tmp_path / "data") == pdh


def test_put_output_of_one_job_feeds_the_next(cluster, tmp_path):
    (tmp_path / "n.txt").write_text("3\n1\n2\n")
    pdh = cluster.put(tmp_path / "n.txt")
    first = cluster.submit(["sort", "-n", "in/n.txt"], stdout="out/sorted.txt",
                           mounts={"in": CollectionMount(pdh)}, cores=0.25)
    second = cluster.submit(["head", "-1", "prev/sorted.txt"], stdout="out/min.txt",
                            mounts={"prev": CollectionMount(first.output)}, cores=0.25)
    assert cluster.read_text(second.output, "min.txt") == "1\n"


def test_read_text_of_a_missing_file(cluster, tmp_path):
    (tmp_path / "a.txt").write_text("a")
    pdh = cluster.put(tmp_path / "a.txt")
    with pytest.raises(cwl_crunch.CrunchError):
        cluster.read_text(pdh, "b.txt")


# connect ---------------------------------------------------------------------------------

def test_connect_honours_cwl_crunch_home(tmp_path, monkeypatch):
    home = tmp_path / "from-env"
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(home))
    with cwl_crunch.connect() as cluster:
        record = cluster.submit(["sh", "-c", "echo env-home > out/h"]).result(timeout=WAIT)
    assert (home / "records.sqlite").exists()
    # Another connection to that home sees the job.
    with cwl_crunch.connect(home=home, poll_interval=0.05) as again:
        assert again.client.get_job(record.uuid).state == "Complete"
        assert again.read_text(record.output_pdh, "h") == "env-home\n"


def test_connect_argument_beats_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(tmp_path / "env"))
    with cwl_crunch.connect(home=tmp_path / "arg", poll_interval=0.05) as cluster:
        cluster.submit(["true"]).result(timeout=WAIT)
    assert (tmp_path / "arg" / "records.sqlite").exists()
    assert not (tmp_path / "env" / "records.sqlite").exists()


def test_connect_honours_other_environment_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("CWL_CRUNCH_CLUSTER_ID", "sitea")
    monkeypatch.setenv("CWL_CRUNCH_MAX_CORES", "1")
    with cwl_crunch.connect() as cluster:
        assert cluster.client.cluster_id == "sitea"
        future = cluster.submit(["true"])
        assert future.uuid.startswith("sitea-job-")
        with pytest.raises(cwl_crunch.CrunchError):
            cluster.submit(["true"], cores=2)
        future.result(timeout=WAIT)


def test_two_connections_to_one_home_see_each_other(tmp_path):
    home = tmp_path / "shared"
    with cwl_crunch.connect(home=home, poll_interval=0.05) as one, \
            cwl_crunch.connect(home=home, poll_interval=0.05) as two:
        future = one.submit(["sh", "-c", "sleep 0.2; echo shared > out/s"])
        record = two.client.wait([future.uuid], timeout=WAIT)[0]
        assert record.succeeded
        assert two.read_text(record.output_pdh, "s") == "shared\n"


# Jobs that submit jobs ---------------------------------------------------------------------

CHILD_PROGRAM = textwrap.dedent("""
    import pathlib
    import cwl_crunch
    cluster = cwl_crunch.connect()
    child = cluster.submit(["sh", "-c", "echo from-child > out/c.txt"], cores=0.25,
                           name="the child")
    record = child.result(timeout=60)
    pathlib.Path("out/child_uuid").write_text(child.uuid)
    pathlib.Path("out/child_says").write_text(cluster.read_text(child.output, "c.txt"))
""")


def test_job_program_submits_a_child_of_itself(cluster):
    parent = cluster.submit([sys.executable, "-c", CHILD_PROGRAM], cores=0.25, name="parent")
    record = parent.result(timeout=WAIT)
    assert record.parent_uuid is None
    child_uuid = cluster.read_text(parent.output, "child_uuid")
    assert cluster.read_text(parent.output, "child_says") == "from-child\n"
    children = cluster.client.list_jobs(JobFilter(parent_uuid=parent.uuid))
    assert [c.uuid for c in children] == [child_uuid]
    child = children[0]
    assert child.parent_uuid == parent.uuid
    assert child.name == "the child"
    assert child.succeeded
    top = cluster.client.list_jobs(JobFilter(top_level=True))
    assert [j.uuid for j in top] == [parent.uuid]


GRANDPARENT_PROGRAM = textwrap.dedent("""
    import sys
    import cwl_crunch
    cluster = cwl_crunch.connect()
    child = cluster.submit([sys.executable, "-c", sys.argv[1]], cores=0.25)
    child.result(timeout=60)
""")


def test_grandchildren_chain_their_parents(cluster):
    grandparent = cluster.submit([sys.executable, "-c", GRANDPARENT_PROGRAM, CHILD_PROGRAM],
                                 cores=0.25)
    grandparent.result(timeout=WAIT)
    (parent,) = cluster.client.list_jobs(JobFilter(parent_uuid=grandparent.uuid))
    (grandchild,) = cluster.client.list_jobs(JobFilter(parent_uuid=parent.uuid))
    assert parent.parent_uuid == grandparent.uuid
    assert grandchild.parent_uuid == parent.uuid
    assert grandchild.succeeded
    assert cluster.read_text(grandchild.output_pdh, "c.txt") == "from-child\n"


def test_top_level_submissions_have_no_parent(cluster):
    futures = [cluster.submit(["sh", "-c", f"echo {i} > out/i"], cores=0.25) for i in range(3)]
    for record in cwl_crunch.wait_all(futures, timeout=WAIT):
        assert record.parent_uuid is None
