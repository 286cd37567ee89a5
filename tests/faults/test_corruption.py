"""A stored block is damaged on disk: readers must notice, name it, and never go on.

Two kinds of damage: a plain flip (the block file's mtime changes, as with any write)
and a stealthy one (same size, mtime put back with os.utime), which a stat-only check
cannot see. Reading through the client or ``cwl-crunch get`` verifies every block;
a job mounting the collection must end Failed naming the block, never Complete on
corrupt input.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import damage
import pytest

import cwl_crunch
from cwl_crunch import CollectionMount, CrunchError
from cwl_crunch.cli.main import main

CONTENT = b"ACGT" * 1000 + b"\n"
HASH = hashlib.sha256(CONTENT).hexdigest()


def flip_byte(path, *, stealthy, offset=100):
    """Change one byte of ``path`` in place; ``stealthy`` restores mtime and mode."""
    before = os.stat(path)
    damage.flip_byte(path, offset, stealthy=stealthy)
    if stealthy:
        after = os.stat(path)
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.fixture(params=["flip", "stealthy"])
def corrupt(request, tmp_path, cluster, home):
    """A collection holding data.txt, whose only block was then damaged: its PDH."""
    source = tmp_path / "data.txt"
    source.write_bytes(CONTENT)
    pdh = cluster.put(source)
    block = home / "store" / "blocks" / HASH[:2] / HASH
    assert block.is_file(), "the store layout changed: update this test"
    # Checked on disk, not read through the client: an HTTP client keeps small blocks it
    # read (they are named by their hash) and would not ask the server again.
    assert hashlib.sha256(block.read_bytes()).hexdigest() == HASH
    flip_byte(block, stealthy=request.param == "stealthy")
    return pdh


def test_read_file_names_the_block_and_the_collection(client, corrupt):
    with pytest.raises(CrunchError) as raised:
        b"".join(client.read_file(corrupt, "data.txt"))
    message = str(raised.value)
    assert HASH in message and corrupt in message, message


def test_cli_get_reports_corruption_in_one_line(tmp_path, home, corrupt, monkeypatch,
                                                 capsys):
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(home))
    dest = tmp_path / "exported"
    dest.mkdir()
    assert main(["get", f"{corrupt}/data.txt", str(dest)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cwl-crunch get: "), lines
    assert HASH in lines[0] and corrupt in lines[0], lines
    assert "Traceback" not in captured.err
    assert list(dest.iterdir()) == [], "corrupt or partial data was left at the destination"


def test_cli_get_as_a_process_has_no_traceback(tmp_path, home, corrupt, child_env):
    result = subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.main", "get", corrupt, str(tmp_path / "d")],
        env=child_env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert HASH in result.stderr and corrupt in result.stderr


def mount_job(cluster, pdh, mount):
    """Submit a job reading the damaged file; its final record, or the SubmitError text."""
    try:
        future = cluster.submit(["sh", "-c", "cat in/data.txt > out/copy.txt"],
                                mounts={"in": mount}, cores=0.25)
    except CrunchError as error:
        return None, str(error)
    record = cwl_crunch.wait_all([future], timeout=20)[0]
    return record, record.failure_reason or ""


def check_job_refused_corrupt_input(cluster, corrupt, mount):
    record, reason = mount_job(cluster, corrupt, mount)
    if record is not None:
        assert record.finished, f"job stuck in {record.state}"
        if record.state == "Complete" and record.output_pdh:
            copied = b"".join(cluster.client.read_file(record.output_pdh, "copy.txt"))
            assert copied == CONTENT, "the job ran on corrupt input and completed"
        assert record.state == "Failed", record
        assert record.output_pdh is None
        # The failed job's logs are stored and readable.
        assert record.log_pdh is not None
        worker_log = cluster.read_text(record.log_pdh, "worker.txt")
        assert HASH in worker_log
    assert HASH in reason, reason
    # Nothing is left running or queued, and the cluster still runs jobs.
    assert cluster.submit(["true"], cores=0.25).result(timeout=20).succeeded


def test_job_with_a_writable_copy_of_a_corrupt_file_fails(cluster, corrupt):
    check_job_refused_corrupt_input(cluster, corrupt, CollectionMount(corrupt, writable=True))


def test_job_mounting_a_file_whose_block_mtime_changed_fails(cluster, home, tmp_path):
    source = tmp_path / "data.txt"
    source.write_bytes(CONTENT)
    pdh = cluster.put(source)
    flip_byte(home / "store" / "blocks" / HASH[:2] / HASH, stealthy=False)
    check_job_refused_corrupt_input(cluster, pdh, CollectionMount(pdh))


def test_job_mounting_a_stealthily_corrupted_file_fails(cluster, home, tmp_path):
    source = tmp_path / "data.txt"
    source.write_bytes(CONTENT)
    pdh = cluster.put(source)
    flip_byte(home / "store" / "blocks" / HASH[:2] / HASH, stealthy=True)
    check_job_refused_corrupt_input(cluster, pdh, CollectionMount(pdh))


def test_putting_the_file_again_repairs_a_damaged_block(cluster, home, tmp_path):
    source = tmp_path / "data.txt"
    source.write_bytes(CONTENT)
    pdh = cluster.put(source)
    flip_byte(home / "store" / "blocks" / HASH[:2] / HASH, stealthy=False)
    with pytest.raises(CrunchError):
        cluster.read_text(pdh, "data.txt")
    assert cluster.put(source) == pdh  # same file, unchanged: the put cache knows it
    assert cluster.read_text(pdh, "data.txt") == CONTENT.decode()
    future = cluster.submit(["sh", "-c", "cat in/data.txt > out/copy.txt"],
                            mounts={"in": CollectionMount(pdh)}, cores=0.25)
    assert cluster.read_text(future.output, "copy.txt") == CONTENT.decode()
