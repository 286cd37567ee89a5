"""cwl_crunch.records.reuse_key: what the key covers and what it leaves out."""

from __future__ import annotations

import dataclasses

import pytest

from cwl_crunch.model import CollectionMount, JobSpec, LiteralMount
from cwl_crunch.records.reuse_key import reuse_key

PDH_A = "0123456789abcdef0123456789abcdef+10"
PDH_B = "fedcba9876543210fedcba9876543210+10"

BASE = JobSpec(
    command=("sort", "in/data.txt"),
    name="sort it",
    environment={"LANG": "C", "TZ": "UTC"},
    mounts={"in": CollectionMount(PDH_A, "dir"), "conf/x.txt": LiteralMount("hello\n")},
    output_path="out",
    cwd="out",
    stdin="in/data.txt",
    stdout="out/sorted.txt",
    stderr="out/err.txt",
    image="debian:12",
    cores=1.0,
    ram=1 << 30,
    gpus=0,
    time_limit=None,
    priority=0,
    properties={"label": "a"},
)


def changed(**changes):
    return dataclasses.replace(BASE, **changes)


def test_key_is_a_sha256_hex_digest():
    key = reuse_key(BASE)
    assert len(key) == 64
    int(key, 16)


def test_same_spec_same_key():
    assert reuse_key(BASE) == reuse_key(changed())
    # A separately built equal spec, not the same object.
    again = JobSpec(**{f.name: getattr(BASE, f.name) for f in dataclasses.fields(BASE)})
    assert reuse_key(again) == reuse_key(BASE)


@pytest.mark.parametrize("changes", [
    {"cores": 0.25},
    {"cores": 16.0},
    {"ram": 1},
    {"gpus": 2},
    {"time_limit": 60.0},
    {"priority": 100},
    {"priority": -5},
    {"name": "another name"},
    {"properties": {}},
    {"properties": {"label": "b", "more": "c"}},
    {"reuse": False},
], ids=lambda c: next(iter(c)))
def test_resources_and_labels_do_not_change_the_key(changes):
    assert reuse_key(changed(**changes)) == reuse_key(BASE)


@pytest.mark.parametrize("changes", [
    {"command": ("sort", "-r", "in/data.txt")},
    {"command": ("sort", "in/data.txt", "")},
    {"command": ("in/data.txt", "sort")},
    {"environment": {"LANG": "C"}},
    {"environment": {"LANG": "C", "TZ": "Europe/Paris"}},
    {"environment": {"LANG": "C", "TZ": "UTC", "X": ""}},
    {"output_path": "results"},
    {"cwd": "."},
    {"stdin": None},
    {"stdin": "in/other.txt"},
    {"stdout": None},
    {"stdout": "out/other.txt"},
    {"stderr": None},
    {"stderr": "out/e.txt"},
    {"image": None},
    {"image": "debian:11"},
    {"binds": {"/output": "out"}},
    {"network": True},
], ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}")
def test_what_determines_the_result_changes_the_key(changes):
    assert reuse_key(changed(**changes)) != reuse_key(BASE)


@pytest.mark.parametrize("mounts", [
    {"in": CollectionMount(PDH_B, "dir"), "conf/x.txt": LiteralMount("hello\n")},
    {"in": CollectionMount(PDH_A, "other"), "conf/x.txt": LiteralMount("hello\n")},
    {"in": CollectionMount(PDH_A, ""), "conf/x.txt": LiteralMount("hello\n")},
    {"in": CollectionMount(PDH_A, "dir", writable=True), "conf/x.txt": LiteralMount("hello\n")},
    {"in2": CollectionMount(PDH_A, "dir"), "conf/x.txt": LiteralMount("hello\n")},
    {"in": CollectionMount(PDH_A, "dir"), "conf/x.txt": LiteralMount("hello")},
    {"in": CollectionMount(PDH_A, "dir"), "conf/x.txt": LiteralMount("hello\n", writable=True)},
    {"in": CollectionMount(PDH_A, "dir"),
     "conf/x.txt": LiteralMount("hello\n", executable=True)},
    {"in": CollectionMount(PDH_A, "dir")},
    {"in": CollectionMount(PDH_A, "dir"), "conf/x.txt": LiteralMount("hello\n"),
     "extra": LiteralMount("")},
], ids=["pdh", "path", "whole-collection", "collection-writable", "target", "literal-content",
        "literal-writable", "literal-executable", "mount-removed", "mount-added"])
def test_mounts_change_the_key(mounts):
    assert reuse_key(changed(mounts=mounts)) != reuse_key(BASE)


def test_collection_and_literal_mounts_are_told_apart():
    # Same target, and the literal's content equal to the PDH string: still different work.
    collection = changed(mounts={"m": CollectionMount(PDH_A)})
    literal = changed(mounts={"m": LiteralMount(PDH_A)})
    assert reuse_key(collection) != reuse_key(literal)


def test_mount_order_does_not_matter():
    forward = {"a": CollectionMount(PDH_A), "b": LiteralMount("x"), "c": CollectionMount(PDH_B)}
    backward = dict(reversed(list(forward.items())))
    assert list(forward) != list(backward)
    assert reuse_key(changed(mounts=forward)) == reuse_key(changed(mounts=backward))


def test_environment_order_does_not_matter():
    forward = {"A": "1", "B": "2", "C": "3"}
    backward = dict(reversed(list(forward.items())))
    assert reuse_key(changed(environment=forward)) == reuse_key(changed(environment=backward))


def test_environment_values_and_names_are_not_confused():
    one = changed(environment={"A": "B"})
    other = changed(environment={"B": "A"})
    assert reuse_key(one) != reuse_key(other)


def test_image_digest_stands_for_the_image():
    digest = "sha256:" + "1" * 64
    by_tag = reuse_key(BASE, image_digest=digest)
    # Another tag resolving to the same digest is the same work.
    assert reuse_key(changed(image="debian:bookworm"), image_digest=digest) == by_tag
    # Another digest is different work.
    assert reuse_key(BASE, image_digest="sha256:" + "2" * 64) != by_tag
    # The digest and the bare tag are not the same thing.
    assert by_tag != reuse_key(BASE)


def test_command_argument_boundaries_matter():
    assert reuse_key(changed(command=("echo", "a b"))) != reuse_key(changed(command=("echo", "a",
                                                                                     "b")))


def test_binds_order_does_not_matter_but_their_paths_do():
    forward = changed(binds={"/a": "out", "/b": "in"})
    backward = changed(binds={"/b": "in", "/a": "out"})
    assert reuse_key(forward) == reuse_key(backward)
    assert reuse_key(forward) != reuse_key(changed(binds={"/a": "in", "/b": "out"}))


# Keys computed by reuse_key as it was before it was derived from JobSpec's fields:
# databases hold keys like these, so a refactor must give the same ones.
PINNED = JobSpec(
    command=("tool", "--flag", "in/x"),
    name="step one",
    environment={"B": "two", "A": "1"},
    mounts={"in": CollectionMount(PDH_A, "sub/dir", writable=True),
            "whole": CollectionMount(PDH_A),
            "conf/run.sh": LiteralMount("#!/bin/sh\necho hi\n", executable=True),
            "notes.txt": LiteralMount("", writable=True)},
    output_path="results",
    cwd="work",
    root="/var/lib/job",
    stdin="in/x",
    stdout="results/out.txt",
    stderr="results/err.txt",
    image="debian:12",
    binds={"/output": "results", "/input": "in"},
    network=True,
    cores=0.25,
    ram=123456789,
    gpus=1,
    time_limit=3600.0,
    priority=-3,
    reuse=False,
    properties={"k": "v"},
)


@pytest.mark.parametrize("spec, digest, key", [
    (PINNED, None, "b82661b58b86b7e69afe12341c55ff8a9f3821a1c8620a9a35811b632451b1e3"),
    (PINNED, "sha256:" + "1" * 64,
     "80fccddd5d3f5b8e67dfc3b0bc47f3b9d3762a580381b33433412bd43c5b8052"),
    (JobSpec(command=("true",)), None,
     "70f5f47dc4b37880ec568e4e56cd7688c9e5720983b0844bdeb4561442ed3870"),
    (dataclasses.replace(PINNED, binds={}, network=False), None,
     "c5902ea058bac4dec021a04fcdfc5981d8eea9929c78546c6ea18bd2134795e5"),
], ids=["every-field", "image-digest", "defaults", "without-binds-network"])
def test_keys_stay_what_they_were(spec, digest, key):
    assert reuse_key(spec, digest) == key
