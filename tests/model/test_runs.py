"""A run as a job: the images a peer's run is pinned to travel in its command."""

from __future__ import annotations

import pytest

from cwl_crunch.cli.runner import build_parser
from cwl_crunch.cwl.containers import RunnerContainers, image_names
from cwl_crunch.model.runs import PIN_IMAGE, pinned_images, runner_spec

DIGEST = "sha256:" + "ab" * 32


def test_pinned_images_come_back_from_the_runner_command():
    spec = runner_spec("0" * 64 + "+1", [], name="run",
                       images={"debian:12": DIGEST, "a=b:1": "sha256:" + "cd" * 32})
    assert spec.command.count(PIN_IMAGE) == 2
    assert pinned_images(spec) == {"debian:12": DIGEST, "a=b:1": "sha256:" + "cd" * 32}
    assert pinned_images(runner_spec("0" * 64 + "+1", [], name="run")) == {}


def test_the_runner_refuses_a_pin_that_is_not_a_digest(capsys):
    parser = build_parser()
    assert parser.parse_args([PIN_IMAGE, f"debian:12={DIGEST}", "w.cwl"]).pin_image == [
        ("debian:12", DIGEST)]
    with pytest.raises(SystemExit):
        parser.parse_args([PIN_IMAGE, "debian:12=latest", "w.cwl"])
    assert "expected NAME=sha256:<64 hex digits>" in capsys.readouterr().err


def test_a_pinned_name_runs_as_its_digest_and_other_images_as_named():
    containers = RunnerContainers(None, remote=True, pins={"debian:12": DIGEST})
    assert containers.image_for({"dockerPull": "debian:12"}, True, "t") == DIGEST
    assert containers.image_for({"dockerPull": "alpine:3"}, True, "t") == "alpine:3"


def test_image_names_are_those_of_every_pulled_or_named_docker_requirement():
    packed = {"$graph": [
        {"class": "CommandLineTool",
         "requirements": [{"class": "DockerRequirement", "dockerPull": "debian:12"}]},
        {"class": "CommandLineTool",
         "hints": [{"class": "DockerRequirement", "dockerImageId": "alpine:3"}]},
        {"class": "CommandLineTool", "requirements": [
            {"class": "DockerRequirement", "dockerPull": "made:here", "dockerFile": "FROM x"}]},
    ]}
    assert image_names(packed) == ["alpine:3", "debian:12"]
