"""A step's stored output is damaged (its block or its manifest), then the workflow is run
again with the real runner (``cwl-crunch-runner`` in a process of its own): the run must
succeed, the step must run again rather than be reused, the job it would have reused must
be recorded ineligible with the reason, and the store must hold good bytes again.

Embedded (the runner opens the cluster home itself) and over HTTP (a ``cwl-crunch server``
process on the home; the runner talks to it with --cluster).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_until

from cwl_crunch.config import load_config
from cwl_crunch.errors import CorruptBlock
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database
from cwl_crunch.store.blocks import BLOCK_MTIME_NS
from cwl_crunch.store.manifest import Manifest

TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments: ["seq 1 3000 > result.txt"]
inputs: []
outputs:
  result: {type: File, outputBinding: {glob: result.txt}}
"""
RESULT = "".join(f"{n}\n" for n in range(1, 3001)).encode()
RESULT_HASH = hashlib.sha256(RESULT).hexdigest()
RUN_TIMEOUT = 120


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    path = tmp_path / "tool.cwl"
    path.write_text(TOOL)
    return path


def run_tool(tool: Path, env: dict[str, str], outdir: Path,
             *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.runner", *extra, "--outdir", str(outdir),
         str(tool)], cwd=tool.parent, env=env, capture_output=True, text=True,
        timeout=RUN_TIMEOUT, check=False)


def step_jobs(home: Path) -> list[jobs.JobRow]:
    """The tool's step jobs in the home's records, oldest first (not the runners)."""
    database = Database(load_config(home=home).database)
    try:
        with database.reading() as connection:
            rows = jobs.list_jobs(connection, parent_uuid=None, top_level=False,
                                  only_states=None, limit=1000)
    finally:
        database.close()
    return sorted((row for row in rows if row.parent_uuid is not None),
                  key=lambda row: row.created_at)


def manifest_path(store: Path, pdh: str) -> Path:
    digest = pdh.split("+")[0]
    return store / "manifests" / digest[:2] / digest


def block_path(store: Path, digest: str) -> Path:
    return store / "blocks" / digest[:2] / digest


def damage(path: Path, how: str) -> None:
    """Damage a store file as a misbehaving process or a disk would."""
    if how == "delete":
        path.unlink()
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    os.chmod(path, 0o644)
    if how == "truncate":
        os.truncate(path, path.stat().st_size // 2)
    elif how == "append":
        with path.open("ab") as damaged:
            damaged.write(b"TAMPERED\n")
    else:  # flip one byte, then put the mtime back: a stat sees nothing
        before = path.stat()
        with path.open("r+b") as damaged:
            damaged.seek(3)
            byte = damaged.read(1)
            damaged.seek(3)
            damaged.write(bytes([byte[0] ^ 0x20]))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.chmod(path, mode)


def check_healed(home: Path, tool: Path, env: dict[str, str], tmp_path: Path, *,
                 target: str, how: str, extra: tuple[str, ...] = ()) -> None:
    store = home / "store"
    first = run_tool(tool, env, tmp_path / "out1", *extra)
    assert first.returncode == 0, first.stderr
    [made] = step_jobs(home)
    assert made.output_pdh is not None and made.reused_job_uuid is None
    manifest = manifest_path(store, made.output_pdh)
    stored = Manifest.from_text(manifest.read_bytes())
    [locator] = stored.file("result.txt").locators
    assert locator.startswith(RESULT_HASH), "the output is not the expected one block"
    damaged = manifest if target == "manifest" else block_path(store, RESULT_HASH)
    damage(damaged, how)

    second = run_tool(tool, env, tmp_path / "out2", *extra)

    assert second.returncode == 0, second.stderr
    assert (tmp_path / "out2" / "result.txt").read_bytes() == RESULT
    older, rerun = step_jobs(home)
    assert older.uuid == made.uuid
    assert rerun.reused_job_uuid is None, "the damaged output was reused"
    assert rerun.state == "Complete" and rerun.exit_code == 0
    assert rerun.output_pdh == made.output_pdh  # same work, same collection
    assert rerun.reuse_ineligible is None
    reason = older.reuse_ineligible
    assert reason is not None, "the job whose output is damaged is still eligible"
    what = f"corrupt manifest of collection {made.output_pdh}" if target == "manifest" \
        else f"corrupt block {locator}"
    if how == "delete" and target == "manifest":
        what = f"collection {made.output_pdh} is not in the store"
    assert what in reason, reason
    # Repaired on disk, by a complete rewrite (read-only, as every store file is).
    assert hashlib.sha256(damaged.read_bytes()).hexdigest() == \
        (RESULT_HASH if target == "block" else made.output_pdh.split("+")[0])
    assert stat.S_IMODE(damaged.stat().st_mode) == 0o444
    if target == "block":
        assert damaged.stat().st_mtime_ns == BLOCK_MTIME_NS
    if how != "flip":
        return
    # And the next run reuses the job that repaired it.
    third = run_tool(tool, env, tmp_path / "out3", *extra)
    assert third.returncode == 0, third.stderr
    assert step_jobs(home)[-1].reused_job_uuid == rerun.uuid


@pytest.mark.parametrize("how", ["truncate", "append", "flip", "delete"])
@pytest.mark.parametrize("target", ["block", "manifest"])
def test_a_rerun_repairs_a_damaged_step_output(tmp_path, home, tool, child_env, target, how):
    check_healed(home, tool, child_env, tmp_path, target=target, how=how)


@contextlib.contextmanager
def server_process(home: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """``cwl-crunch server`` on a free loopback port over ``home``: its URL."""
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "cwl_crunch.cli.main", "server", "--listen",
             "127.0.0.1:0"], stderr=sink, stdout=sink, stdin=subprocess.DEVNULL, env=env)
    try:
        banner = wait_until(lambda: re.search(r" at (http://\S+)", log.read_text()),
                            what="the server's banner", timeout=90)
        yield banner[1]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.parametrize("target, how", [("block", "flip"), ("block", "delete"),
                                         ("manifest", "flip")])
def test_over_http_a_rerun_repairs_a_damaged_step_output(tmp_path, home, tool, child_env,
                                                          target, how):
    with server_process(home, child_env, tmp_path / "server.log") as url:
        token = subprocess.run(
            [sys.executable, "-m", "cwl_crunch.cli.main", "token", "create"], env=child_env,
            capture_output=True, text=True, timeout=60, check=True).stdout.strip()
        runner_env = {**child_env, "CWL_CRUNCH_HOME": str(tmp_path / "runner-home"),
                      "CWL_CRUNCH_API_TOKEN": token}
        check_healed(home, tool, runner_env, tmp_path, target=target, how=how,
                     extra=("--cluster", url))


def test_a_reader_finding_a_job_output_damaged_stops_its_reuse(cluster, home, child_env,
                                                               tmp_path):
    """The reader path (client.read_file, and ``cwl-crunch get`` for the embedded home):
    the error says block and what to do, and the job that made it is not reused again."""
    command = ["sh", "-c", "seq 1 3000 > out/result.txt"]
    made = cluster.submit(command, cores=0.25).result(timeout=RUN_TIMEOUT)
    damage(block_path(home / "store", RESULT_HASH), "flip")

    with pytest.raises(CorruptBlock) as raised:
        b"".join(cluster.client.read_file(made.output_pdh, "result.txt"))

    message = str(raised.value)
    assert message.startswith(f"corrupt block {RESULT_HASH}+{len(RESULT)} in collection "
                              f"{made.output_pdh}: "), message
    assert f"job {made.uuid} made it and will not be reused" in message, message
    reason = cluster.client.get_job(made.uuid).reuse_ineligible
    assert reason is not None and f"corrupt block {RESULT_HASH}" in reason, reason
    if cluster.client.__class__.__name__ == "EmbeddedClient":
        got = subprocess.run(
            [sys.executable, "-m", "cwl_crunch.cli.main", "get", made.output_pdh,
             str(tmp_path / "got")], env=child_env, capture_output=True, text=True,
            timeout=60, check=False)
        assert got.returncode == 1 and "will not be reused" in got.stderr, got
    again = cluster.submit(command, cores=0.25).result(timeout=RUN_TIMEOUT)
    assert again.reused_job_uuid is None and again.output_pdh == made.output_pdh
    assert b"".join(cluster.client.read_file(again.output_pdh, "result.txt")) == RESULT
