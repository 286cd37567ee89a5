"""The container plan: a pure function of the job spec (no engine needed)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from cwl_crunch.containers import CONTAINER_ROOT, ContainerRun, plan_container
from cwl_crunch.containers.plan import (
    LABEL,
    Bind,
    container_name,
    create_arguments,
    host_config_arguments,
    plan_binds,
)
from cwl_crunch.model import CollectionMount, JobSpec, LiteralMount

JOB_DIR = Path("/host/work/job-1/job")
PDH = "0" * 64 + "+0"


def spec(**fields) -> JobSpec:
    return JobSpec(command=("true",), image="debian:stable-slim", **fields)


def plan(job_spec: JobSpec, *, keep_id: bool = False) -> ContainerRun:
    return plan_container(
        job_spec, job_uuid="local-job-0123456789abcde", image_digest="sha256:" + "a" * 64,
        job_dir=JOB_DIR, log_dir=Path("/host/work/job-1/logs"),
        environment={"HOME": "/cwl-crunch/job", "X": "1"},
        engine_url="unix:///run/podman/podman.sock", user="1000:1000", keep_id=keep_id)


def by_target(binds: list[Bind]) -> dict[str, Bind]:
    targets = [bind.target for bind in binds]
    assert len(set(targets)) == len(targets), f"a target bound twice: {targets}"
    return {bind.target: bind for bind in binds}


def test_job_dir_is_bound_writable_at_the_default_root():
    binds = plan_binds(spec(), JOB_DIR)
    assert binds == [Bind(str(JOB_DIR), CONTAINER_ROOT, False)]


def test_job_dir_is_bound_at_the_specs_root():
    binds = plan_binds(spec(root="/tmp/.cwl-crunch/job"), JOB_DIR)
    assert binds == [Bind(str(JOB_DIR), "/tmp/.cwl-crunch/job", False)]


def test_read_only_collection_mounts_are_bound_again_read_only():
    binds = by_target(plan_binds(spec(mounts={
        "in/reads": CollectionMount(PDH),
        "in/ref.fa": CollectionMount(PDH, path="ref.fa"),
    }), JOB_DIR))
    assert binds[f"{CONTAINER_ROOT}/in/reads"] == Bind(
        str(JOB_DIR / "in/reads"), f"{CONTAINER_ROOT}/in/reads", True)
    assert binds[f"{CONTAINER_ROOT}/in/ref.fa"] == Bind(
        str(JOB_DIR / "in/ref.fa"), f"{CONTAINER_ROOT}/in/ref.fa", True)
    assert binds[CONTAINER_ROOT].read_only is False
    assert len(binds) == 3


def test_writable_and_literal_mounts_are_not_bound_separately():
    binds = plan_binds(spec(mounts={
        "work": CollectionMount(PDH, writable=True),
        "config.txt": LiteralMount("x"),
        "script.sh": LiteralMount("x", writable=True, executable=True),
    }), JOB_DIR)
    # They live in the writable job dir: the job dir's own bind shows them.
    assert binds == [Bind(str(JOB_DIR), CONTAINER_ROOT, False)]


def test_extra_binds_at_their_absolute_paths_read_only_only_inside_read_only_mounts():
    binds = by_target(plan_binds(spec(
        mounts={"in": CollectionMount(PDH), "scratch": CollectionMount(PDH, writable=True)},
        binds={
            "/output": "out",                   # job output dir: writable
            "/ref": "in/genome",                # inside a read-only mount
            "/whole": "in",                     # the read-only mount itself
            "/not-in": "input/x",               # shares a prefix with "in" only
            "/scratch": "scratch/sub",          # inside a writable mount
        },
    ), JOB_DIR))
    assert binds["/output"] == Bind(str(JOB_DIR / "out"), "/output", False)
    assert binds["/ref"] == Bind(str(JOB_DIR / "in/genome"), "/ref", True)
    assert binds["/whole"] == Bind(str(JOB_DIR / "in"), "/whole", True)
    assert binds["/not-in"] == Bind(str(JOB_DIR / "input/x"), "/not-in", False)
    assert binds["/scratch"] == Bind(str(JOB_DIR / "scratch/sub"), "/scratch", False)
    assert binds[f"{CONTAINER_ROOT}/in"].read_only is True
    assert f"{CONTAINER_ROOT}/scratch" not in binds


def test_binds_come_parents_before_children():
    binds = plan_binds(spec(
        root="/data",
        mounts={"in/deep/x": CollectionMount(PDH), "in": CollectionMount(PDH),
                "a": CollectionMount(PDH)},
        binds={"/data/in/deep/x/extra": "out/extra", "/opt/tool/ref": "a/ref",
               "/opt/tool": "out/tool", "/z": "out/z", "/data/b": "out/b"},
    ), JOB_DIR)
    targets = [PurePosixPath(bind.target) for bind in binds]
    assert len(targets) == 9
    for index, target in enumerate(targets):
        later = targets[index + 1:]
        assert not any(target.is_relative_to(other) and target != other for other in later), (
            f"{target} is bound before its parent: {[str(t) for t in targets]}")
    # A bind over a read-only mount's parent must not hide the mount: the root first.
    assert targets.index(PurePosixPath("/data")) < targets.index(PurePosixPath("/data/in"))
    assert targets.index(PurePosixPath("/data/in")) < targets.index(
        PurePosixPath("/data/in/deep/x"))
    assert targets.index(PurePosixPath("/opt/tool")) < targets.index(
        PurePosixPath("/opt/tool/ref"))


@pytest.mark.parametrize(("root", "cwd", "expected"), [
    (None, ".", CONTAINER_ROOT),
    (None, "", CONTAINER_ROOT),
    (None, "out", f"{CONTAINER_ROOT}/out"),
    ("/tmp/.cwl-crunch/job", "out", "/tmp/.cwl-crunch/job/out"),
    ("/tmp/.cwl-crunch/job", ".", "/tmp/.cwl-crunch/job"),
    ("/w", "a/b", "/w/a/b"),
])
def test_working_dir_is_the_cwd_under_the_root(root, cwd, expected):
    run = plan(spec(root=root, cwd=cwd))
    assert run.working_dir == expected
    assert create_arguments(run)["working_dir"] == expected


def test_no_network_unless_asked():
    assert host_config_arguments(plan(spec()))["network_mode"] == "none"
    assert host_config_arguments(plan(spec(network=True)))["network_mode"] == "bridge"


def test_keep_id_maps_the_users_own_id():
    assert host_config_arguments(plan(spec(), keep_id=True))["userns_mode"] == "keep-id"
    assert "userns_mode" not in host_config_arguments(plan(spec(), keep_id=False))


def test_host_config_mounts_follow_the_binds():
    run = plan(spec(mounts={"in": CollectionMount(PDH)}, binds={"/out": "out"}))
    mounts = host_config_arguments(run)["mounts"]
    assert [(m["Target"], m["Source"], m["Type"], m["ReadOnly"]) for m in mounts] == [
        ("/out", str(JOB_DIR / "out"), "bind", False),
        (CONTAINER_ROOT, str(JOB_DIR), "bind", False),
        (f"{CONTAINER_ROOT}/in", str(JOB_DIR / "in"), "bind", True),
    ]


def test_create_arguments_label_name_user_and_stdin():
    run = plan(JobSpec(command=("cat", "-n"), image="i", stdin="in/x.txt"))
    arguments = create_arguments(run)
    assert arguments["labels"] == {LABEL: "local-job-0123456789abcde"}
    assert arguments["name"] == container_name("local-job-0123456789abcde") == run.name
    assert "local-job-0123456789abcde" in arguments["name"]
    assert arguments["image"] == "sha256:" + "a" * 64, "runs the digest, never the name"
    assert arguments["command"] == ["cat", "-n"]
    assert arguments["user"] == "1000:1000"
    assert arguments["environment"] == {"HOME": "/cwl-crunch/job", "X": "1"}
    assert arguments["stdin_open"] is True
    assert create_arguments(plan(spec()))["stdin_open"] is False


def test_failure_file_is_in_the_log_dir():
    assert plan(spec()).failure_file == "/host/work/job-1/logs/container-failure.txt"


def test_container_run_json_round_trip():
    run = plan(spec(root="/r", cwd="out", network=True, stdin="in/a",
                    mounts={"in": CollectionMount(PDH)}, binds={"/o": "out"}),
               keep_id=True)
    again = ContainerRun.from_json(run.to_json())
    assert again == run
    assert all(isinstance(bind, Bind) for bind in again.binds)
    assert len(again.binds) == 3
    assert again.network and again.keep_id and again.attach_stdin
