"""cwl_crunch.model.validation: spec checks that need no cluster."""

from __future__ import annotations

import dataclasses

import pytest

from cwl_crunch.errors import CrunchError, SubmitError
from cwl_crunch.model import CollectionMount, JobSpec, LiteralMount
from cwl_crunch.model.validation import check_job_path, check_spec

GOOD = JobSpec(
    command=("sort", "in/data.txt"),
    environment={"LANG": "C", "EMPTY": ""},
    mounts={"in": CollectionMount("0123456789abcdef0123456789abcdef+1"),
            "conf/a.txt": LiteralMount("x")},
    output_path="out",
    cwd="out",
    stdin="in/data.txt",
    stdout="out/sorted.txt",
    stderr="logs/err.txt",
    cores=0.25,
    ram=1,
    gpus=0,
    time_limit=0.5,
)


def spec(**changes):
    return dataclasses.replace(GOOD, **changes)


def test_good_spec_passes():
    check_spec(GOOD)
    check_spec(JobSpec(command=("true",)))  # the defaults are valid
    check_spec(spec(cwd="."))  # the job dir itself
    check_spec(spec(cores=3, gpus=2, time_limit=10))  # ints are numbers too


@pytest.mark.parametrize("cores", [0, 0.0, -1, -0.25, float("nan"), float("inf"), "1", None])
def test_bad_cores(cores):
    with pytest.raises(SubmitError, match="cores"):
        check_spec(spec(cores=cores))


@pytest.mark.parametrize("ram", [0, -1, 1.5, "1024", None])
def test_bad_ram(ram):
    with pytest.raises(SubmitError, match="ram"):
        check_spec(spec(ram=ram))


@pytest.mark.parametrize("gpus", [-1, 0.5, "1"])
def test_bad_gpus(gpus):
    with pytest.raises(SubmitError, match="gpus"):
        check_spec(spec(gpus=gpus))


@pytest.mark.parametrize("time_limit", [0, -5, "60"])
def test_bad_time_limit(time_limit):
    with pytest.raises(SubmitError, match="time_limit"):
        check_spec(spec(time_limit=time_limit))


@pytest.mark.parametrize("command", [(), ("",), ("sort", 3), (None,)])
def test_bad_command(command):
    with pytest.raises(SubmitError, match="command"):
        check_spec(spec(command=command))


def test_empty_arguments_after_the_executable_are_fine():
    check_spec(spec(command=("echo", "")))


BAD_PATHS = ["/abs", "/", "..", "../x", "a/../b", "a/..", ""]


@pytest.mark.parametrize("path", BAD_PATHS)
@pytest.mark.parametrize("field", ["output_path", "stdin", "stdout", "stderr"])
def test_bad_paths_in_fields(field, path):
    with pytest.raises(SubmitError, match=field):
        check_spec(spec(**{field: path}))


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_cwd(path):
    with pytest.raises(SubmitError, match="cwd"):
        check_spec(spec(cwd=path))


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_mount_targets(path):
    mounts = {**GOOD.mounts, path: LiteralMount("x")}
    with pytest.raises(SubmitError, match="mount") as info:
        check_spec(spec(mounts=mounts))
    assert repr(path) in str(info.value)


@pytest.mark.parametrize("name", ["A=B", "=", "", "PATH=/bin"])
def test_bad_environment_names(name):
    with pytest.raises(SubmitError, match="environment"):
        check_spec(spec(environment={"OK": "1", name: "v"}))


def test_environment_values_must_be_strings():
    with pytest.raises(SubmitError, match="environment"):
        check_spec(spec(environment={"N": 1}))


def test_environment_values_may_contain_equals():
    check_spec(spec(environment={"OPTS": "a=b=c"}))


@pytest.mark.parametrize("path, normal", [
    ("out", "out"),
    ("out/", "out"),
    ("./out", "out"),
    ("a//b", "a/b"),
    ("a/./b", "a/b"),
    ("..x/y", "..x/y"),
    ("x..", "x.."),
])
def test_check_job_path_normalizes(path, normal):
    assert check_job_path("thing", path) == normal


def test_check_job_path_names_what_and_path():
    with pytest.raises(SubmitError) as info:
        check_job_path("stdout", "/etc/passwd")
    assert "stdout" in str(info.value)
    assert "/etc/passwd" in str(info.value)


def test_submit_error_is_a_crunch_error():
    with pytest.raises(CrunchError):
        check_spec(spec(cores=0))


@pytest.mark.parametrize("changes", [
    {"mounts": {".": LiteralMount("x")}},
    {"mounts": {"./": CollectionMount("0123456789abcdef0123456789abcdef+1")}},
    {"stdout": "."},
    {"stdin": "."},
], ids=["literal-mount", "collection-mount", "stdout", "stdin"])
def test_job_dir_itself_is_not_a_file_or_mount_target(changes):
    with pytest.raises(SubmitError):
        check_spec(spec(**changes))
