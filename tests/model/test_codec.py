"""cwl_crunch.model.codec: job specs to and from JSON-able dicts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cwl_crunch.errors import SubmitError
from cwl_crunch.model import CollectionMount, JobSpec, LiteralMount
from cwl_crunch.model.codec import (
    mount_from_dict,
    mount_to_dict,
    mounts_from_dict,
    mounts_to_dict,
    spec_from_dict,
    spec_to_dict,
)

PDH = "0123456789abcdef0123456789abcdef+12"

FULL = JobSpec(
    command=("tool", "--flag", "in/x"),
    name="step one",
    environment={"A": "1", "B": "two"},
    mounts={
        "in": CollectionMount(PDH, "sub/dir", writable=True),
        "whole": CollectionMount(PDH),
        "conf/run.sh": LiteralMount("#!/bin/sh\necho hi\n", writable=False, executable=True),
        "notes.txt": LiteralMount("", writable=True),
    },
    output_path="results",
    cwd=".",
    stdin="in/x",
    stdout="results/out.txt",
    stderr="results/err.txt",
    image="debian:12",
    cores=0.25,
    ram=123456789,
    gpus=1,
    time_limit=3600.0,
    priority=-3,
    reuse=False,
    properties={"k": "v"},
)


def test_round_trip_with_both_mount_kinds():
    assert spec_from_dict(spec_to_dict(FULL)) == FULL


def test_round_trip_through_json():
    data = json.loads(json.dumps(spec_to_dict(FULL)))
    again = spec_from_dict(data)
    assert again == FULL
    assert isinstance(again.command, tuple)
    assert isinstance(again.mounts["in"], CollectionMount)
    assert isinstance(again.mounts["conf/run.sh"], LiteralMount)


def test_round_trip_of_defaults():
    minimal = JobSpec(command=("true",))
    assert spec_from_dict(spec_to_dict(minimal)) == minimal


def test_spec_to_dict_has_every_field():
    data = spec_to_dict(FULL)
    assert set(data) == set(JobSpec.__dataclass_fields__)
    assert data["command"] == ["tool", "--flag", "in/x"]
    assert data["mounts"]["in"] == {"kind": "collection", "pdh": PDH, "path": "sub/dir",
                                    "writable": True}
    assert data["mounts"]["conf/run.sh"] == {"kind": "literal",
                                             "content": "#!/bin/sh\necho hi\n",
                                             "writable": False, "executable": True}


def test_spec_from_dict_fills_defaults():
    spec = spec_from_dict({"command": ["echo", "hi"]})
    assert spec == JobSpec(command=("echo", "hi"))
    assert spec_from_dict({"command": ["x"], "mounts": None}).mounts == {}


def test_mounts_are_sorted_by_target():
    mounts = {"b": LiteralMount("1"), "a": LiteralMount("2"), "c/d": CollectionMount(PDH)}
    assert list(mounts_to_dict(mounts)) == ["a", "b", "c/d"]
    assert mounts_from_dict(mounts_to_dict(mounts)) == mounts


def test_mount_defaults_when_optional_fields_are_missing():
    assert mount_from_dict("t", {"kind": "collection", "pdh": PDH}) == CollectionMount(PDH)
    assert mount_from_dict("t", {"kind": "literal", "content": "c"}) == LiteralMount("c")


@pytest.mark.parametrize("mount", [CollectionMount(PDH, "p", True), LiteralMount("c", True, True),
                                   LiteralMount("c")])
def test_single_mount_round_trip(mount):
    assert mount_from_dict("t", mount_to_dict(mount)) == mount


@pytest.mark.parametrize("data", [{"kind": "volume", "pdh": PDH}, {"pdh": PDH},
                                  {"kind": None, "content": "x"}, {"kind": "Literal",
                                                                   "content": "x"}])
def test_bad_mount_kind(data):
    with pytest.raises(SubmitError) as info:
        mount_from_dict("in/thing", data)
    assert "'in/thing'" in str(info.value)
    assert "kind" in str(info.value)


@pytest.mark.parametrize("data, field", [({"kind": "collection", "path": "x"}, "pdh"),
                                         ({"kind": "literal", "writable": True}, "content")])
def test_missing_mount_field(data, field):
    with pytest.raises(SubmitError) as info:
        mount_from_dict("target", data)
    assert "'target'" in str(info.value)
    assert field in str(info.value)


def test_bad_mount_inside_a_spec_is_a_submit_error():
    data = spec_to_dict(FULL)
    data["mounts"]["in"] = {"kind": "collection"}
    with pytest.raises(SubmitError, match="'in'"):
        spec_from_dict(data)


def test_wire_format_stays_what_it_was():
    """What clients and servers of other versions send and read: a refactor of the codec
    must not change it."""
    spec = dataclasses.replace(FULL, root="/var/lib/job", binds={"/output": "results"},
                               network=True, mounts={"in": FULL.mounts["in"],
                                                     "conf/run.sh": FULL.mounts["conf/run.sh"]})
    assert json.dumps(spec_to_dict(spec)) == (
        '{"command": ["tool", "--flag", "in/x"], "name": "step one", '
        '"environment": {"A": "1", "B": "two"}, '
        '"mounts": {"conf/run.sh": {"kind": "literal", "content": "#!/bin/sh\\necho hi\\n", '
        '"writable": false, "executable": true}, '
        '"in": {"kind": "collection", "pdh": "0123456789abcdef0123456789abcdef+12", '
        '"path": "sub/dir", "writable": true}}, '
        '"output_path": "results", "cwd": ".", "root": "/var/lib/job", "stdin": "in/x", '
        '"stdout": "results/out.txt", "stderr": "results/err.txt", "image": "debian:12", '
        '"binds": {"/output": "results"}, "network": true, "cores": 0.25, "ram": 123456789, '
        '"gpus": 1, "time_limit": 3600.0, "priority": -3, "reuse": false, '
        '"properties": {"k": "v"}}')
