"""Shared fixtures: a private embedded cluster per test, and a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import cwl_crunch
from cwl_crunch.client import JobFilter
from cwl_crunch.containers import find_engine
from cwl_crunch.containers.engine import connect
from cwl_crunch.errors import EngineUnavailable


@pytest.fixture(autouse=True)
def _clean_cwl_crunch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's CWL_CRUNCH_* settings out of every test."""
    for name in list(os.environ):
        if name.startswith("CWL_CRUNCH_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[cwl_crunch.Cluster]:
    """An embedded cluster whose home is under this test's tmp_path.

    Jobs a test left unfinished are cancelled first: closing waits for running jobs,
    and a failed test must not hang on its ``sleep 60``.
    """
    cl = cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05)
    try:
        yield cl
    finally:
        try:
            live = cl.client.list_jobs(JobFilter(states=frozenset({"Queued", "Running"}),
                                                 limit=10_000))
            for job in live:
                cl.client.cancel(job.uuid)
        finally:
            cl.close()


@pytest.fixture
def client(cluster: cwl_crunch.Cluster) -> cwl_crunch.ClusterClient:
    """The ClusterClient behind ``cluster``."""
    return cluster.client


@pytest.fixture(scope="session")
def engine_url() -> str:
    """URL of a container engine (Docker Engine API) that answers.

    Found as the cluster finds one with no setting (``DOCKER_HOST``, else the usual
    sockets). None answering: the test is skipped, or fails when TESTS_REQUIRE_SERVICES=1
    (CI that must not silently skip the container tests).
    """
    url = find_engine("")
    problem = "none found (no DOCKER_HOST and no Docker or Podman socket)"
    if url is not None:
        try:
            connect(url).close()
        except EngineUnavailable as error:
            problem = str(error)
        else:
            return url
    if os.environ.get("TESTS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"no container engine: {problem}")
    pytest.skip(f"no container engine: {problem}")
