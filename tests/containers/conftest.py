"""Fixtures for tests that run containers: the engine's own client, a cluster that uses
the engine, and images built offline that are removed after the test."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import cwl_crunch
from cwl_crunch.client import JobFilter
from cwl_crunch.containers.plan import LABEL

BASE_IMAGE = "docker.io/debian:stable-slim"
"""Local on the test machine (there is no network): every test image derives from it."""
TEST_LABEL = "cwl-crunch-test"
"""Label on every image a test builds (value: the test's nonce), to find and remove them."""


@pytest.fixture(scope="session")
def docker_client(engine_url: str) -> Iterator[Any]:
    """The docker SDK's client for the engine: to inspect what the cluster did."""
    import docker

    client = docker.DockerClient(base_url=engine_url, timeout=120)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def nonce() -> str:
    """Unique per test: names of images and tags the test makes."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def job_containers(docker_client: Any) -> Callable[[str], list[Any]]:
    """The containers (any state) labelled with a job's UUID."""

    def find(job_uuid: str) -> list[Any]:
        return list(docker_client.containers.list(
            all=True, filters={"label": f"{LABEL}={job_uuid}"}))

    return find


def remove_job_containers(docker_client: Any, job_uuids: list[str]) -> None:
    import docker.errors

    for job_uuid in job_uuids:
        for container in docker_client.containers.list(
                all=True, filters={"label": f"{LABEL}={job_uuid}"}):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)


@pytest.fixture
def engine_cluster(tmp_path: Path, engine_url: str,
                   docker_client: Any) -> Iterator[cwl_crunch.Cluster]:
    """An embedded cluster in this test's tmp_path that runs images on the engine.

    At the end: unfinished jobs are cancelled, and containers a failed test left behind
    are removed (by the label carrying the job's UUID)."""
    cluster = cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05,
                                 container_engine=engine_url)
    uuids: list[str] = []
    try:
        yield cluster
    finally:
        try:
            everything = cluster.client.list_jobs(JobFilter(limit=10_000))
            uuids = [job.uuid for job in everything]
            for job in everything:
                if not job.finished:
                    cluster.client.cancel(job.uuid)
        finally:
            cluster.close()
            remove_job_containers(docker_client, uuids)


class ImageMaker:
    """Builds images offline (``FROM`` a local image) and removes them afterwards."""

    def __init__(self, docker_client: Any, nonce: str) -> None:
        self.client = docker_client
        self.nonce = nonce

    def build(self, dockerfile: str, tag: str | None = None) -> Any:
        text = f"{dockerfile.rstrip()}\nLABEL {TEST_LABEL}={self.nonce}\n"
        image, _ = self.client.images.build(fileobj=io.BytesIO(text.encode()), tag=tag,
                                            rm=True, forcerm=True, pull=False)
        return image

    def cleanup(self) -> None:
        import docker.errors

        for image in self.client.images.list(filters={"label": f"{TEST_LABEL}={self.nonce}"}):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(image.id, force=True)


@pytest.fixture
def images(docker_client: Any, nonce: str) -> Iterator[ImageMaker]:
    maker = ImageMaker(docker_client, nonce)
    try:
        yield maker
    finally:
        maker.cleanup()
