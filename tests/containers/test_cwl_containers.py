"""cwl-crunch-runner with DockerRequirement: on a real engine (Podman or Docker; the tests
marked ``podman``), and without one."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cwl_crunch
from cwl_crunch.client import JobFilter
from cwl_crunch.containers.images import BUILD_REPOSITORY

BASE_IMAGE = "docker.io/debian:stable-slim"
TEST_LABEL = "cwl-crunch-test"
"""Label the ``images`` fixture removes images by (value: the test's nonce)."""


def run_runner(home: Path, *args: str, cwd: Path,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cwl_crunch.cli.runner", *args], cwd=cwd, capture_output=True,
        text=True, timeout=120, check=False,
        env={"CWL_CRUNCH_HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin",
             **(env or {})})


def write_tool(directory: Path, name: str, *, command: list[str],
               requirements: dict[str, Any] | None = None,
               hints: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
               outputs: dict[str, Any] | None = None, stdout: str | None = "out.txt") -> Path:
    tool: dict[str, Any] = {
        "cwlVersion": "v1.2", "class": "CommandLineTool", "baseCommand": command,
        "inputs": inputs or {},
        "outputs": outputs if outputs is not None else {"out": "stdout"},
    }
    if requirements:
        tool["requirements"] = requirements
    if hints:
        tool["hints"] = hints
    if stdout:
        tool["stdout"] = stdout
    path = directory / name
    path.write_text(json.dumps(tool, indent=2))
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def steps_of_last_run(home: Path) -> list[Any]:
    with cwl_crunch.connect(home=home, container_engine="none") as cluster:
        run = cluster.client.list_jobs(JobFilter(top_level=True, limit=1))[0]
        return cluster.client.list_jobs(JobFilter(parent_uuid=run.uuid, limit=100))


def succeeded(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


# -- images: pulled, built, loaded -------------------------------------------------------

@pytest.mark.podman
def test_docker_pull_tool_runs_in_the_image(tmp_path, work, engine_url, docker_client):
    (work / "data.txt").write_text("from a file\n")
    (work / "inputs.json").write_text(json.dumps(
        {"message": "hi", "data": {"class": "File", "path": "data.txt"}}))
    write_tool(work, "pull.cwl", command=["sh", "-c"],
               requirements={"DockerRequirement": {"dockerPull": BASE_IMAGE}},
               inputs={"message": "string", "data": "File"})
    # The command as an argument: its own pid namespace shows as pid 1.
    tool = json.loads((work / "pull.cwl").read_text())
    tool["arguments"] = [{"valueFrom": 'echo "$(inputs.message) as pid $$"; '
                                       'cat "$(inputs.data.path)"', "shellQuote": False}]
    (work / "pull.cwl").write_text(json.dumps(tool))
    home, outdir = tmp_path / "home", tmp_path / "out"

    output = succeeded(run_runner(home, "--outdir", str(outdir), "--container-engine",
                                  engine_url, "pull.cwl", "inputs.json", cwd=work))
    assert output["out"]["basename"] == "out.txt"
    assert (outdir / "out.txt").read_text() == "hi as pid 1\nfrom a file\n"
    [step] = steps_of_last_run(home)
    assert step.spec.image == BASE_IMAGE
    assert step.image_digest == docker_client.images.get(BASE_IMAGE).id
    assert step.spec.network is False


@pytest.mark.podman
def test_docker_file_is_built_once(tmp_path, work, engine_url, docker_client, images,
                                   nonce):
    import docker.errors

    dockerfile = (f"FROM {BASE_IMAGE}\nRUN echo built > /built.txt\n"
                  f"LABEL {TEST_LABEL}={nonce}\n")
    tag = f"{BUILD_REPOSITORY}:{hashlib.sha256(dockerfile.encode()).hexdigest()[:20]}"
    write_tool(work, "build.cwl", command=["cat", "/built.txt"],
               requirements={"DockerRequirement": {"dockerFile": dockerfile}})
    home = tmp_path / "home"
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)

    succeeded(run_runner(home, "--outdir", str(tmp_path / "o1"), "--container-engine",
                         engine_url, "build.cwl", cwd=work))
    assert (tmp_path / "o1" / "out.txt").read_text() == "built\n"
    built = docker_client.images.get(tag)
    [first] = steps_of_last_run(home)
    assert first.image_digest == built.id

    succeeded(run_runner(home, "--outdir", str(tmp_path / "o2"), "--container-engine",
                         engine_url, "build.cwl", cwd=work))
    assert (tmp_path / "o2" / "out.txt").read_text() == "built\n"
    [second] = steps_of_last_run(home)
    assert second.reused_job_uuid == first.uuid
    again = docker_client.images.get(tag)
    assert (again.id, again.attrs["Created"]) == (built.id, built.attrs["Created"])

    # Proof that the image is not built again: other content under the build's tag is
    # what the next run gets (a build, even from cache, would put the tag back).
    swapped = images.build(f"FROM {BASE_IMAGE}\nRUN echo swapped > /built.txt")
    assert swapped.tag(*tag.rsplit(":", 1))
    succeeded(run_runner(home, "--outdir", str(tmp_path / "o3"), "--container-engine",
                         engine_url, "build.cwl", cwd=work))
    assert (tmp_path / "o3" / "out.txt").read_text() == "swapped\n"


@pytest.mark.podman
def test_docker_load_loads_the_archive(tmp_path, work, engine_url, docker_client, images,
                                       nonce):
    import docker.errors

    name = f"localhost/crunch-load-{nonce}:v1"
    image = images.build(f"FROM {BASE_IMAGE}\nRUN echo loaded-{nonce} > /loaded.txt",
                         tag=name)
    with (work / "image.tar").open("wb") as archive:
        for chunk in image.save(named=name):
            archive.write(chunk)
    docker_client.images.remove(image.id, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(name)
    write_tool(work, "load.cwl", command=["cat", "/loaded.txt"],
               requirements={"DockerRequirement": {"dockerLoad": "image.tar",
                                                   "dockerImageId": name}})
    home = tmp_path / "home"

    succeeded(run_runner(home, "--outdir", str(tmp_path / "out"), "--container-engine",
                         engine_url, "load.cwl", cwd=work))
    assert (tmp_path / "out" / "out.txt").read_text() == f"loaded-{nonce}\n"
    assert docker_client.images.get(name).id == image.id
    [step] = steps_of_last_run(home)
    assert step.image_digest == image.id


# -- fixed paths in the container --------------------------------------------------------

@pytest.mark.podman
def test_docker_output_directory_is_the_output(tmp_path, work, engine_url):
    write_tool(work, "outdir.cwl",
               command=["sh", "-c", "echo thing > /other/thing; touch /other/empty"],
               requirements={"DockerRequirement": {"dockerPull": BASE_IMAGE,
                                                   "dockerOutputDirectory": "/other"}},
               outputs={"thing": {"type": "File", "outputBinding": {"glob": "thing"}},
                        "empty": {"type": "File", "outputBinding": {"glob": "empty"}}},
               stdout=None)
    outdir = tmp_path / "out"
    output = succeeded(run_runner(tmp_path / "home", "--outdir", str(outdir),
                                  "--container-engine", engine_url, "outdir.cwl", cwd=work))
    assert (outdir / "thing").read_text() == "thing\n"
    assert output["empty"]["size"] == 0 and (outdir / "empty").exists()


@pytest.mark.podman
def test_absolute_initial_work_dir_entries_in_a_container(tmp_path, work, engine_url):
    (work / "data.txt").write_text("input file\n")
    (work / "inputs.json").write_text(json.dumps({"data": {"class": "File",
                                                           "path": "data.txt"}}))
    write_tool(work, "iwd.cwl", command=["cat", "/data/greeting.txt", "/data/in.txt"],
               requirements={
                   "DockerRequirement": {"dockerPull": BASE_IMAGE},
                   "InitialWorkDirRequirement": {"listing": [
                       {"entryname": "/data/greeting.txt", "entry": "hello from iwd\n"},
                       {"entryname": "/data/in.txt", "entry": "$(inputs.data)"},
                   ]},
               },
               inputs={"data": "File"})
    outdir = tmp_path / "out"
    succeeded(run_runner(tmp_path / "home", "--outdir", str(outdir), "--container-engine",
                         engine_url, "iwd.cwl", "inputs.json", cwd=work))
    assert (outdir / "out.txt").read_text() == "hello from iwd\ninput file\n"


def features_tool(network: bool) -> dict[str, Any]:
    requirements: dict[str, Any] = {
        "DockerRequirement": {"dockerPull": BASE_IMAGE, "dockerOutputDirectory": "/other"},
        "EnvVarRequirement": {"envDef": {"GREETING": "bonjour"}},
        "InitialWorkDirRequirement": {"listing": [
            {"entryname": "conf.txt", "entry": "conf\n"},
            {"entryname": "editable.txt", "entry": "$(inputs.data)", "writable": True},
        ]},
    }
    if network:
        requirements["NetworkAccess"] = {"networkAccess": True}
    script = ("wc -c > /other/count.txt; echo appended >> editable.txt; "
              "cat /other/conf.txt > conf-seen.txt; echo $GREETING > greet.txt; "
              "ls /sys/class/net > net.txt")
    return {
        "class": "CommandLineTool", "requirements": requirements,
        "inputs": {"data": "File"}, "stdin": "$(inputs.data.path)",
        "baseCommand": ["sh", "-c", script],
        "outputs": {name.replace(".", "_").replace("-", "_"): {
            "type": "File", "outputBinding": {"glob": name}}
            for name in ("count.txt", "editable.txt", "conf-seen.txt", "greet.txt",
                         "net.txt")},
    }


@pytest.mark.podman
def test_step_features_inside_a_container(tmp_path, work, engine_url):
    """stdin, environment, writable and relative InitialWorkDir entries (seen through
    dockerOutputDirectory too), and NetworkAccess, in a two-step workflow."""
    (work / "data.txt").write_text("hello\n")
    (work / "inputs.json").write_text(json.dumps({"data": {"class": "File",
                                                           "path": "data.txt"}}))
    outputs = ("count_txt", "editable_txt", "conf_seen_txt", "greet_txt", "net_txt")
    workflow = {
        "cwlVersion": "v1.2", "class": "Workflow",
        "requirements": {"StepInputExpressionRequirement": {}},
        "inputs": {"data": "File"},
        "outputs": {f"{step}_{name}": {"type": "File", "outputSource": f"{step}/{name}"}
                    for step in ("offline", "online") for name in outputs},
        "steps": {step: {"run": features_tool(network=step == "online"),
                         "in": {"data": "data"}, "out": list(outputs)}
                  for step in ("offline", "online")},
    }
    (work / "wf.cwl").write_text(json.dumps(workflow))
    output = succeeded(run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"),
                                  "--container-engine", engine_url, "wf.cwl", "inputs.json",
                                  cwd=work))

    def text(step: str, name: str) -> str:
        return Path(output[f"{step}_{name}"]["path"]).read_text()

    for step in ("offline", "online"):
        assert text(step, "count_txt") == "6\n"
        assert text(step, "editable_txt") == "hello\nappended\n"
        assert text(step, "conf_seen_txt") == "conf\n"
        assert text(step, "greet_txt") == "bonjour\n"
    assert text("offline", "net_txt").split() == ["lo"]
    online = text("online", "net_txt").split()
    assert "lo" in online and len(online) > 1, online
    # The input the writable entry was copied from is unchanged.
    assert (work / "data.txt").read_text() == "hello\n"
    steps = {step.name.rsplit("/", 1)[-1]: step for step in steps_of_last_run(tmp_path / "home")}
    assert steps["online"].spec.network is True
    assert steps["offline"].spec.network is False


# -- without a usable engine -------------------------------------------------------------

def required_tool(work: Path) -> None:
    write_tool(work, "tool.cwl", command=["echo", "hi"],
               requirements={"DockerRequirement": {"dockerPull": BASE_IMAGE}})


def hinted_tool(work: Path) -> None:
    write_tool(work, "tool.cwl", command=["sh", "-c", 'echo "hi as pid $$"'],
               hints={"DockerRequirement": {"dockerPull": BASE_IMAGE}})


def test_no_container_refuses_a_required_docker_requirement(tmp_path, work):
    required_tool(work)
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"),
                        "--no-container", "tool.cwl", cwd=work)
    assert result.returncode != 0
    assert "DockerRequirement" in result.stderr
    assert "--no-container" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "out.txt").exists()


def test_an_engine_that_is_not_there_fails_a_required_container_clearly(tmp_path, work):
    required_tool(work)
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"),
                        "--container-engine", "unix:///nonexistent.sock", "tool.cwl",
                        cwd=work)
    assert result.returncode != 0
    assert "container engine at unix:///nonexistent.sock does not answer" in result.stderr
    assert "--no-container" in result.stderr, "says how to do without one"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "out.txt").exists()


@pytest.mark.podman
def test_a_missing_image_fails_the_step_clearly(tmp_path, work, engine_url, nonce):
    missing = f"localhost/crunch-missing-{nonce}:v1"
    write_tool(work, "tool.cwl", command=["echo", "hi"],
               requirements={"DockerRequirement": {"dockerPull": missing}})
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"),
                        "--container-engine", engine_url, "tool.cwl", cwd=work)
    assert result.returncode != 0
    assert f"image {missing}: not on {engine_url} and pulling it failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_engine_fails_a_required_container_without_a_traceback(tmp_path, work):
    required_tool(work)
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"), "tool.cwl",
                        cwd=work, env={"CWL_CRUNCH_CONTAINER_ENGINE": "none"})
    assert result.returncode != 0
    assert "this tool requires a container (DockerRequirement" in result.stderr
    assert "--no-container" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.podman
def test_a_missing_docker_load_archive_fails_without_a_traceback(tmp_path, work,
                                                                 engine_url, nonce):
    write_tool(work, "tool.cwl", command=["echo", "hi"], requirements={"DockerRequirement": {
        "dockerLoad": "missing.tar", "dockerImageId": f"localhost/crunch-none-{nonce}:v1"}})
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"),
                        "--container-engine", engine_url, "tool.cwl", cwd=work)
    assert result.returncode != 0
    assert f"dockerLoad {work / 'missing.tar'}: No such file" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_hint_with_a_named_engine_that_is_not_there_fails(tmp_path, work):
    """A named engine is used or the run fails: no silent fallback to the host."""
    hinted_tool(work)
    result = run_runner(tmp_path / "home", "--outdir", str(tmp_path / "out"),
                        "--container-engine", "unix:///nonexistent.sock", "tool.cwl",
                        cwd=work)
    assert result.returncode != 0
    assert "unix:///nonexistent.sock does not answer" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["environment", "config file"])
def test_a_hint_runs_on_the_host_with_a_warning_when_containers_are_off(tmp_path, work,
                                                                       how):
    hinted_tool(work)
    home = tmp_path / "home"
    env = {}
    if how == "environment":
        env["CWL_CRUNCH_CONTAINER_ENGINE"] = "none"
    else:
        home.mkdir()
        (home / "config.toml").write_text('container_engine = "none"\n')
    outdir = tmp_path / "out"
    result = run_runner(home, "--outdir", str(outdir), "tool.cwl", cwd=work, env=env)
    succeeded(result)
    text = (outdir / "out.txt").read_text()
    assert text.startswith("hi as pid ") and text != "hi as pid 1\n", text
    assert "running tools that only hint at a container" in result.stderr
    [step] = steps_of_last_run(home)
    assert step.spec.image is None and step.image_digest is None
