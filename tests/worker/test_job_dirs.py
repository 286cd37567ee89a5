"""Recycled host directories: emptying one never reaches through a symlink a job left."""

from __future__ import annotations

import os

import pytest

from cwl_crunch.worker.job_dirs import JobDirs


@pytest.fixture
def victim(tmp_path):
    top = tmp_path / "victim"
    (top / "sub").mkdir(parents=True)
    (top / "precious.txt").write_text("precious")
    (top / "sub" / "deep.txt").write_text("deep")
    return top


def contents(top):
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))


@pytest.mark.parametrize("part", ["", "job", "job/out", "logs", "tmp"])
def test_release_removes_a_symlink_a_job_left_and_nothing_it_points_to(
    tmp_path, victim, part
):
    dirs = JobDirs(tmp_path / "work", pooled=True)
    host_dir = dirs.acquire("job-1")
    replaced = host_dir / part if part else host_dir
    os.rename(replaced, tmp_path / "moved-away")
    replaced.symlink_to(victim, target_is_directory=True)
    before = contents(victim)
    dirs.release(host_dir)
    assert contents(victim) == before
    assert not os.path.lexists(host_dir)
    # The next job still gets a complete skeleton.
    fresh = dirs.acquire("job-2")
    assert all((fresh / p).is_dir() and not (fresh / p).is_symlink()
               for p in ("job/out", "logs", "tmp"))
