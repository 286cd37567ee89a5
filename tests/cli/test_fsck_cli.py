"""``cwl-crunch fsck [--repair]`` as a process, on a real embedded cluster's home: damaged
blocks and manifests are listed with the collections and jobs using them (exit 1);
--repair rewrites what a put file still holds and makes the jobs whose output stays
damaged run again, after which fsck finds nothing (exit 0)."""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
import sys
import time

import damage
import pytest

import cwl_crunch
from cwl_crunch.store.put_cache import RACY_WINDOW_NS

TIMEOUT = 60


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def env(home):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CWL_CRUNCH_")}
    environment.update(CWL_CRUNCH_HOME=str(home), CWL_CRUNCH_POLL_INTERVAL="0.05")
    return environment


@pytest.fixture
def cluster(home):
    with cwl_crunch.connect(home=home, poll_interval=0.05) as connected:
        yield connected


def fsck(env, *args, stderr=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", "fsck", *args],
                          env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
                          timeout=TIMEOUT, check=False)


def settled_file(path, content):
    """A new file, old enough for the put cache to remember it as a source."""
    path.write_bytes(content)
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)
    return path


def store_file(home, kind, name):
    digest = name.split("+")[0]
    return home / "store" / kind / digest[:2] / digest


def stealthy_flip(path, offset=5):
    damage.stealthy_flip(path, offset)


def append(path):
    os.chmod(path, 0o644)
    with path.open("ab") as damaged:
        damaged.write(b"TAMPERED\n")
    os.chmod(path, 0o444)


def row_of(stdout, name):
    [line] = [line for line in stdout.splitlines() if f" {name} " in line]
    return line


def seq_job(cluster, count, name):
    return cluster.submit(["sh", "-c", f"seq 1 {count} > out/{name}"], cores=0.25)


def test_fsck_lists_damage_and_repair_makes_its_jobs_run_again(tmp_path, home, env, cluster):
    source = settled_file(tmp_path / "a.txt", b"put data\n" * 5000)
    put_pdh = cluster.put(source)
    job_j = seq_job(cluster, 2000, "r.txt").result(timeout=TIMEOUT)
    job_k = seq_job(cluster, 3000, "s.txt").result(timeout=TIMEOUT)
    put_locator = f"{hashlib.sha256(source.read_bytes()).hexdigest()}+{source.stat().st_size}"
    k_content = "".join(f"{n}\n" for n in range(1, 3001)).encode()
    k_locator = f"{hashlib.sha256(k_content).hexdigest()}+{len(k_content)}"
    append(store_file(home, "blocks", put_locator))
    stealthy_flip(store_file(home, "manifests", job_j.output_pdh))
    store_file(home, "blocks", k_locator).unlink()

    checked = fsck(env)

    assert checked.returncode == 1, checked
    manifest_row = row_of(checked.stdout, job_j.output_pdh.split("+")[0])
    assert manifest_row.startswith("manifest ") and job_j.uuid in manifest_row
    put_row = row_of(checked.stdout, put_locator)
    assert put_row.startswith("block ") and put_pdh in put_row
    k_row = row_of(checked.stdout, k_locator)
    assert "block file is missing" in k_row and job_k.output_pdh in k_row \
        and job_k.uuid in k_row
    assert "3 damaged, 0 repaired" in checked.stdout
    assert cluster.client.get_job(job_j.uuid).reuse_ineligible is None  # only looked

    repaired = fsck(env, "--repair")

    assert repaired.returncode == 1, repaired  # two need their jobs to run again
    assert f"repaired from {source}" in row_of(repaired.stdout, put_locator)
    assert hashlib.sha256(store_file(home, "blocks", put_locator).read_bytes()).hexdigest() \
        == put_locator.split("+")[0]
    for job, name in ((job_j, job_j.output_pdh.split("+")[0]), (job_k, k_locator)):
        assert "will run again" in row_of(repaired.stdout, name)
        reason = cluster.client.get_job(job.uuid).reuse_ineligible
        assert reason is not None and reason.startswith("fsck: "), reason
    # Submitted again, they run (not reused) and their outputs rewrite what was damaged.
    again_j = seq_job(cluster, 2000, "r.txt")
    again_k = seq_job(cluster, 3000, "s.txt")
    for again, old in ((again_j, job_j), (again_k, job_k)):
        record = again.result(timeout=TIMEOUT)
        assert record.reused_job_uuid is None and record.output_pdh == old.output_pdh
    final = fsck(env)
    assert final.returncode == 0, final
    assert "0 damaged" in final.stdout


def test_repair_from_a_put_source_exits_0_with_a_progress_line(tmp_path, home, env, cluster):
    source = settled_file(tmp_path / "data.bin", os.urandom(200_000))
    pdh = cluster.put(source)
    locator = f"{hashlib.sha256(source.read_bytes()).hexdigest()}+{source.stat().st_size}"
    stealthy_flip(store_file(home, "blocks", locator))
    controller, terminal = pty.openpty()
    try:
        checked = fsck(env, stderr=terminal)
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert checked.returncode == 1, checked
    assert b"\rfsck: 1/1 blocks, 195.3 KiB, 1 damaged" in shown, shown
    assert pdh in row_of(checked.stdout, locator)

    repaired = fsck(env, "--repair")

    assert repaired.returncode == 0, repaired
    assert "1 damaged, 1 repaired" in repaired.stdout
    assert f"repaired from {source}" in row_of(repaired.stdout, locator)
    assert b"".join(cluster.client.read_file(pdh, "data.bin")) == source.read_bytes()
    after = fsck(env)
    assert after.returncode == 0 and after.stdout.startswith("fsck: 1 manifests and 1 blocks")


def test_fsck_without_a_store_says_where_to_run_it(tmp_path, env):
    result = fsck({**env, "CWL_CRUNCH_HOME": str(tmp_path / "nothing")})
    assert result.returncode == 1
    assert result.stderr.startswith("cwl-crunch fsck: no store at "), result.stderr
    assert "host of the cluster's store" in result.stderr
