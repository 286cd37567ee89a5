"""Container images between clusters, by digest: siteb's engine has none of sitea's
images; a step sent there runs in the image sitea has under that name, exported from
sitea's engine and loaded into siteb's while the run waits, and no other image of
sitea's can be asked for."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from federation_sites import Site, leaves, runner_process, start_sites
from polling import wait_until

pytestmark = [pytest.mark.federation, pytest.mark.podman, pytest.mark.slow,
              pytest.mark.xdist_group("images")]

IMAGE = "docker.io/debian:stable-slim"
"""What in-image.cwl runs in (scripts/podman-setup.sh makes it)."""
OTHER_IMAGE = "docker.io/bash:4.4"
"""An image of sitea's that no run offers siteb."""


def _answers(url: str) -> bool:
    try:
        with contextlib.closing(docker.DockerClient(base_url=url)) as client:
            return bool(client.ping())
    except docker.errors.DockerException:
        return False


@pytest.fixture(scope="module")
def second_engine(engine_url: str) -> Iterator[str]:
    """A Podman API service with empty storage of its own: another cluster's engine."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed (scripts/podman-setup.sh installs it)")
    base = Path(tempfile.mkdtemp(prefix="crunch-e2-", dir="/tmp"))  # Podman: runroot
    storage = []                                                      # under 50 chars
    for option, folder in (("--root", "root"), ("--runroot", "run"), ("--tmpdir", "tmp")):
        (base / folder).mkdir()
        storage += [option, str(base / folder)]
    url = f"unix://{base / 'podman.sock'}"
    with (base / "service.log").open("w") as log:
        service = subprocess.Popen(["podman", *storage, "system", "service", "--time=0", url],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: service.poll() is not None or _answers(url), timeout=60,
                   what="the second Podman service")
        assert service.poll() is None, (base / "service.log").read_text()
        yield url
    finally:
        service.terminate()
        service.wait(timeout=60)
        subprocess.run(["podman", *storage, "system", "reset", "--force"],
                       capture_output=True, timeout=300, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def two_engines(tmp_path_factory: pytest.TempPathFactory, engine_url: str,
                second_engine: str) -> Iterator[dict[str, Site]]:
    started = start_sites(tmp_path_factory.mktemp("federation-images"), ("sitea", "siteb"),
                          engines={"sitea": engine_url, "siteb": second_engine})
    try:
        yield started
    finally:
        for site in started.values():
            site.server.__exit__(None, None, None)


def _digest(url: str, name: str) -> str | None:
    with contextlib.closing(docker.DockerClient(base_url=url)) as client:
        try:
            return str(client.images.get(name).id)
        except docker.errors.ImageNotFound:
            return None


def test_a_remote_step_runs_in_the_image_its_sender_has_fetched_by_digest(
        two_engines, second_engine, engine_url, tmp_path):
    sitea, siteb = two_engines["sitea"], two_engines["siteb"]
    digest = _digest(engine_url, IMAGE)
    assert digest is not None, f"{IMAGE}: run scripts/podman-setup.sh"
    assert _digest(second_engine, digest) is None  # siteb's engine starts empty
    (tmp_path / "in.txt").write_text("in the image\n")
    reasons: set[str] = set()
    with runner_process(sitea, "in-image.cwl",
                        {"text": {"class": "File", "path": str(tmp_path / "in.txt")}},
                        tmp_path, containers=True) as runner:
        while runner.poll() is None:  # siteb holds the run while the image comes
            reasons |= {job["queue_reason"] for job in siteb.api(
                "GET", "/jobs?limit=1000").json() if job["queue_reason"]}
            time.sleep(0.2)
        _, stderr = runner.communicate(timeout=300)
    assert runner.returncode == 0, stderr
    # siteb held the run while the image came (and the run's small files).
    assert any(re.fullmatch(rf"fetching (\d+ blocks?, [\d.]+ MB, and )?image "
                            rf"{re.escape(IMAGE)} \({digest[:19]}…, [\d.]+ MB\) from sitea",
                            reason) for reason in reasons), reasons
    said = (tmp_path / "out" / "said.txt").read_text().splitlines()
    assert said[0] == "in the image" and re.fullmatch(r"\d+(\.\d+)*", said[1]), said
    # Loaded by digest into siteb's engine (no name there), and the step ran in it.
    assert _digest(second_engine, digest) == digest
    [run] = [job for job in sitea.api("GET", "/jobs?top_level=true&limit=1000").json()
             if job["spec"]["name"] == "in-image.cwl"]
    [step] = [leaf for leaf in leaves(two_engines, run["uuid"]) if leaf["cluster"] == "siteb"]
    assert step["image_digest"] == digest and step["spec"]["image"] == digest
    # sitea recorded the offer: siteb's token may ask for that image, not another.
    offered = sitea.api("GET", f"/federation/images/{digest}", token=sitea.peer_tokens["siteb"])
    assert offered.status_code == 200 and offered.json()["size"] > 100 << 20, offered.text


def test_an_image_not_offered_to_a_peer_is_not_exported(two_engines, engine_url, tmp_path):
    sitea, siteb = two_engines["sitea"], two_engines["siteb"]
    other = _digest(engine_url, OTHER_IMAGE)
    assert other is not None, f"{OTHER_IMAGE}: run scripts/podman-setup.sh"
    for path in (f"/federation/images/{other}", f"/federation/images/{other}/archive"):
        refused = sitea.api("GET", path, token=sitea.peer_tokens["siteb"])
        assert refused.status_code == 403, refused.text
        assert "was not offered to cluster siteb" in refused.json()["detail"]
        assert sitea.api("GET", path).status_code == 403  # a person's token: not a peer's
    assert sitea.api("GET", "/federation/images/latest",
                     token=sitea.peer_tokens["siteb"]).status_code == 422
    # A run that names sitea's image with a digest sitea never offered: siteb asks sitea,
    # is refused, and starts nothing.
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "workflow.cwl").write_text("{}")
    (folder / "inputs.json").write_text("{}")
    with _client(sitea, tmp_path) as client:
        run_pdh = client.put_paths([folder / "workflow.cwl", folder / "inputs.json"])
    sent = sitea.api("POST", "/peers/siteb/runs", json={"run_pdh": run_pdh})
    assert sent.status_code == 201, sent.text  # siteb has the run's collection now
    with _client(siteb, tmp_path) as client:
        client.wait([sent.json()["uuid"]], timeout=120)
    before = siteb.api("GET", "/jobs?top_level=true&limit=1000").json()
    unknown = "sha256:" + "0" * 64
    forged = {"run_pdh": run_pdh, "images": {OTHER_IMAGE: unknown}, "parent_uuid": None,
              "owner": f"sitea-tok-{'a' * 15}"}
    refused = siteb.api("POST", "/federation/runs", token=siteb.peer_tokens["sitea"],
                        json=forged)
    assert refused.status_code >= 400, refused.text
    assert f"image {OTHER_IMAGE} ({unknown})" in refused.json()["detail"], refused.text
    assert "was not offered to cluster siteb" in refused.json()["detail"], refused.text
    assert siteb.api("GET", "/jobs?top_level=true&limit=1000").json() == before


def _client(site: Site, tmp_path: Path):  # type: ignore[no-untyped-def]
    from cwl_crunch.client.http import HttpClient
    from cwl_crunch.config import load_config

    return HttpClient(load_config({"CWL_CRUNCH_HOME": str(tmp_path / "client-home")},
                                  api_url=site.url, api_token=site.token))
