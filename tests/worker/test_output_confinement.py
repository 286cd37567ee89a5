"""A job cannot make the worker's ingest or cleanup touch anything outside its directory.

Each job here is a real process in an embedded cluster that points its output dir, its
job dir, its log dir or its whole host dir at a victim directory elsewhere (as a hostile
tool would), and the victim must come out exactly as it was: same names, content, modes,
inodes and link counts, with none of its inodes become a block of the store.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

import pytest

import cwl_crunch

WAIT = 30  # seconds: a bug must fail a test, not hang it


@pytest.fixture
def cluster(tmp_path):
    """Unisolated: ingest must stay confined where jobs cannot be isolated too, and
    isolation hides the host dir from the job, so most of these attacks cannot even be
    tried with it (test_isolated_job_cannot_reach_its_host_dir)."""
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05,
                            isolation="none") as cl:
        yield cl


@pytest.fixture
def victim(tmp_path):
    """Someone else's directory: files of several modes, a subdirectory."""
    top = tmp_path / "victim"
    (top / "sub").mkdir(parents=True)
    for name, content, mode in (("precious.txt", "precious\n", 0o640),
                                ("tool.sh", "#!/bin/sh\n", 0o755),
                                ("sub/deep.txt", "deep\n", 0o600)):
        (top / name).write_text(content)
        os.chmod(top / name, mode)
    return top


def snapshot(top: Path) -> dict[str, tuple[bytes | None, int, int, int]]:
    """Every path below ``top``: (content of a file, mode, inode, link count)."""
    found = {}
    for path in sorted(top.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        found[str(path.relative_to(top))] = (content, info.st_mode, info.st_ino, info.st_nlink)
    return found


def block_inodes(tmp_path: Path) -> set[int]:
    blocks = tmp_path / "home" / "store" / "blocks"
    return {p.stat().st_ino for p in blocks.rglob("*") if p.is_file()}


def finished(cluster, tmp_path, command, **fields):
    """The record of the job once it ended and the worker is done with its host dir
    (released after the end is recorded: emptying it is part of what is tested)."""
    future = cluster.submit(["sh", "-c", command], **fields)
    with contextlib.suppress(cwl_crunch.JobFailed):
        future.result(timeout=WAIT)
    record = future.record()
    assert record.finished, f"job still {record.state} after {WAIT} s"
    host_dir = tmp_path / "home" / "work" / record.uuid
    deadline = time.monotonic() + WAIT
    while os.path.lexists(host_dir):
        assert time.monotonic() < deadline, f"{host_dir} still there after {WAIT} s"
        time.sleep(0.02)
    return record


def assert_untouched(victim, before, tmp_path):
    assert snapshot(victim) == before
    assert not block_inodes(tmp_path) & {entry[2] for entry in before.values()}


@pytest.mark.parametrize("attack", [
    "rmdir out; ln -s {victim} out",
    "rm -rf out; ln -s {victim}/sub out",
    # A component on the way to the output dir leads out: output_path is res/sub.
    "rm -rf res; ln -s {victim} res",
])
def test_output_dir_that_is_a_symlink_out_is_refused(cluster, victim, tmp_path, attack):
    before = snapshot(victim)
    output_path = "res/sub" if "res" in attack else "out"
    job = finished(cluster, tmp_path, attack.format(victim=victim), output_path=output_path)
    assert job.state == "Failed"
    assert job.output_pdh is None
    assert f"{output_path.split('/')[0]} is a symlink to" in job.failure_reason
    assert str(victim) in job.failure_reason
    assert "nothing there was stored or changed" in job.failure_reason
    assert_untouched(victim, before, tmp_path)
    # Its log collection is still stored, and says why.
    log = b"".join(cluster.client.read_file(job.log_pdh, "worker.txt")).decode()
    assert "refused to store" in log


def test_cd_up_and_replace_out_from_the_output_dir(cluster, victim, tmp_path):
    # A CWL tool runs in its output dir: this is the command of finding 1, verbatim.
    before = snapshot(victim)
    job = finished(cluster, tmp_path, f"cd ..; rm -rf out; ln -s {victim} out", cwd="out")
    assert job.state == "Failed"
    assert "out is a symlink to" in job.failure_reason
    assert_untouched(victim, before, tmp_path)


@pytest.mark.parametrize("replaced", ["logs", "job"])
def test_log_or_job_dir_replaced_by_a_symlink_is_refused(cluster, victim, tmp_path, replaced):
    # The command runs in <host dir>/job: its parent holds logs/ and job/.
    (victim / "out").mkdir()
    (victim / "out" / "result.txt").write_text("victim's result\n")
    before = snapshot(victim)
    job = finished(cluster, tmp_path, f"cd ..; mv {replaced} gone; ln -s {victim} {replaced}")
    assert job.state == "Failed"
    assert f"replaced {tmp_path / 'home'}" in job.failure_reason
    assert f"{replaced} by a symlink to {victim}" in job.failure_reason
    assert job.output_pdh is None and job.log_pdh is None
    assert_untouched(victim, before, tmp_path)


def test_whole_host_dir_replaced_by_a_symlink_is_refused(cluster, victim, tmp_path):
    # What a recycled host dir holds, so that emptying it through the link would "work".
    for part in ("job/out", "logs", "tmp"):
        (victim / part).mkdir(parents=True)
    (victim / "job" / "out" / "result.txt").write_text("victim's result\n")
    before = snapshot(victim)
    job = finished(cluster, tmp_path, 'host=$(basename "$(dirname "$PWD")"); cd ../..; '
                   f'mv "$host" "$host.gone"; ln -s {victim} "$host"')
    assert job.state == "Failed"
    assert f"by a symlink to {victim}" in job.failure_reason
    assert_untouched(victim, before, tmp_path)


def test_stdout_file_replaced_by_a_symlink_is_not_linked_into_the_logs(cluster, victim,
                                                                       tmp_path):
    before = snapshot(victim)
    job = finished(cluster, tmp_path,
                   f"echo mine; rm out/o.txt; ln -s {victim}/precious.txt out/o.txt",
                   stdout="out/o.txt")
    assert job.state == "Complete"
    assert sorted(e.path for e in cluster.client.list_collection(job.output_pdh)) == []
    logs = {e.path for e in cluster.client.list_collection(job.log_pdh)}
    assert "stdout.txt" not in logs
    assert_untouched(victim, before, tmp_path)


def test_file_sharing_its_inode_with_one_outside_is_copied_not_adopted(cluster, victim,
                                                                       tmp_path):
    before = snapshot(victim)
    job = finished(cluster, tmp_path,
                   f"ln {victim}/precious.txt out/shared.txt; echo own > out/own.txt")
    assert job.state == "Complete", job.failure_reason
    assert b"".join(cluster.client.read_file(job.output_pdh, "shared.txt")) == b"precious\n"
    assert_untouched(victim, before, tmp_path)
    assert before["precious.txt"][1:] == (stat.S_IFREG | 0o640, before["precious.txt"][2], 1)


def test_symlink_loops_in_the_output_are_skipped(cluster, tmp_path):
    job = finished(cluster, tmp_path, "mkdir -p out/a/b; ln -s .. out/a/b/up; ln -s .. out/a/top; "
                   "ln -s l2 out/l1; ln -s l1 out/l2; echo kept > out/a/f.txt")
    assert job.state == "Complete", job.failure_reason
    entries = [(e.path, e.kind) for e in cluster.client.list_collection(job.output_pdh)]
    assert entries == [("a", "dir"), ("a/b", "dir"), ("a/f.txt", "file")]


def test_link_out_of_the_log_dir_is_not_stored_in_the_logs(cluster, victim, tmp_path):
    before = snapshot(victim)
    job = finished(cluster, tmp_path, f"ln -s {victim}/precious.txt ../logs/extra.txt")
    assert job.state == "Complete", job.failure_reason
    logs = sorted(e.path for e in cluster.client.list_collection(job.log_pdh))
    assert logs == ["stderr.txt", "stdout.txt", "worker.txt"]
    assert_untouched(victim, before, tmp_path)


def test_isolated_job_cannot_reach_its_host_dir(victim, tmp_path):
    for part in ("job/out", "logs", "tmp"):
        (victim / part).mkdir(parents=True)
    before = snapshot(victim)
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05) as isolated:
        finished(isolated, tmp_path, 'host=$(basename "$(dirname "$PWD")"); cd ../..; '
                 f'mv "$host" "$host.gone"; ln -s {victim} "$host"; ls -a')
    assert_untouched(victim, before, tmp_path)
