"""Absolute paths a CWL command sees, as job-dir paths (and container binds)."""

from __future__ import annotations

import pytest
from cwltool.errors import UnsupportedRequirement

from cwl_crunch.cwl.containers import JobPaths
from cwl_crunch.cwl.layout import JOB_ROOT


def test_paths_under_the_job_root_are_job_dir_paths():
    for paths in (JobPaths(in_container=False), JobPaths(in_container=True)):
        assert paths.job_path(f"{JOB_ROOT}/in/abc/x.txt") == "in/abc/x.txt"
    assert JobPaths(in_container=True).binds == {}


@pytest.mark.parametrize("absolute", ["/data/x.txt", JOB_ROOT, "relative/x"])
def test_on_the_host_other_paths_are_unsupported(absolute):
    with pytest.raises(UnsupportedRequirement, match="job directory"):
        JobPaths(in_container=False).job_path(absolute)


def test_in_a_container_other_absolute_paths_become_binds():
    paths = JobPaths(in_container=True)
    assert paths.job_path("/tmp2j3y7rpb/input/stuff.txt") == "abs/tmp2j3y7rpb/input/stuff.txt"
    assert paths.binds == {"/tmp2j3y7rpb/input/stuff.txt": "abs/tmp2j3y7rpb/input/stuff.txt"}


def test_paths_inside_an_existing_bind_use_it():
    paths = JobPaths(in_container=True, binds={"/output": "out"})
    assert paths.job_path("/output/head.txt") == "out/head.txt"
    assert paths.job_path("/outputs/x") == "abs/outputs/x"  # only a prefix, not inside
    assert paths.binds == {"/output": "out", "/outputs/x": "abs/outputs/x"}


def test_the_job_root_itself_cannot_be_a_mount_target():
    with pytest.raises(UnsupportedRequirement):
        JobPaths(in_container=True).job_path(JOB_ROOT)
