"""JobSpec.root: the command sees its job directory at a fixed absolute path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import cwl_crunch
from cwl_crunch import CollectionMount, JobSpec
from cwl_crunch.errors import SubmitError
from cwl_crunch.records.reuse_key import reuse_key

ROOT = "/tmp/.cwl-crunch-test/job"


def run(cluster, script, **fields):
    future = cluster.submit(["sh", "-c", script], root=ROOT, cwd="out", **fields)
    return future.result(timeout=30)


def test_command_sees_its_job_dir_at_the_root(cluster, tmp_path):
    source = tmp_path / "reads.fa"
    source.write_text(">r1\nACGT\n")
    pdh = cluster.put(source)
    job = run(cluster, 'pwd > where; echo "$HOME $TMPDIR" >> where; '
                       f'cat {ROOT}/in/reads.fa > copy; echo t > "$TMPDIR/scratch"; '
                       f'test -f {ROOT}/tmp/scratch && echo tmp-ok >> where',
              mounts={"in": CollectionMount(pdh)})
    assert cluster.read_text(job.output_pdh, "where").splitlines() == [
        f"{ROOT}/out", f"{ROOT}/out {ROOT}/tmp", "tmp-ok"]
    assert cluster.read_text(job.output_pdh, "copy") == ">r1\nACGT\n"
    # tmp/ is the job's scratch space, not part of its output.
    assert {e.path for e in cluster.client.list_collection(job.output_pdh)} == {
        "where", "copy"}


def test_links_to_the_root_are_stored_as_what_they_point_to(cluster, tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("payload\n")
    pdh = cluster.put(source)
    job = run(cluster, f"ln -s {ROOT}/in/data.txt link.txt", mounts={"in": CollectionMount(pdh)})
    assert job.exit_code == 0
    assert cluster.read_text(job.output_pdh, "link.txt") == "payload\n"


def test_the_host_never_sees_the_mount(cluster):
    started = threading.Event()
    seen_on_host: list[list[str]] = []

    def watch() -> None:
        started.wait(10)
        root = Path(ROOT)
        seen_on_host.append(sorted(p.name for p in root.iterdir()) if root.is_dir() else [])

    watcher = threading.Thread(target=watch)
    watcher.start()
    future = cluster.submit(["sh", "-c", "touch marker; sleep 1"], root=ROOT, cwd="out")
    deadline = time.monotonic() + 10
    while future.record().state != "Running" and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    started.set()
    watcher.join()
    assert future.result(timeout=30).exit_code == 0
    assert seen_on_host == [[]]  # an empty mountpoint: the job dir is only in the namespace


def test_concurrent_jobs_with_the_same_root_each_see_their_own_dir(tmp_path):
    with cwl_crunch.connect(home=tmp_path / "home", max_cores=2.0) as cluster:
        futures = [cluster.submit(["sh", "-c", f"echo {n} > n; sleep 0.5; cat n > seen"],
                                  root=ROOT, cwd="out", cores=0.5) for n in range(4)]
        records = cwl_crunch.wait_all(futures, timeout=60)
        assert [cluster.read_text(r.output_pdh or "", "seen") for r in records] == [
            f"{n}\n" for n in range(4)]


def test_root_is_part_of_the_reuse_key():
    base = JobSpec(("true",), root=ROOT)
    assert reuse_key(base) == reuse_key(JobSpec(("true",), root=ROOT))
    assert reuse_key(base) != reuse_key(JobSpec(("true",), root="/tmp/other/job"))
    assert reuse_key(base) != reuse_key(JobSpec(("true",)))


@pytest.mark.parametrize("root", ["relative/job", "/", "/tmp/../etc", "/tmp//job", "/tmp/job/"])
def test_a_bad_root_is_refused_at_submit(cluster, root):
    with pytest.raises(SubmitError, match="root"):
        cluster.submit(["true"], root=root)
    assert cluster.client.list_jobs(cwl_crunch.client.JobFilter()) == []
