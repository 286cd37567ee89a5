"""HttpClient against a real server: a client with a job's token outlives a restart of
its server (a workflow runner inside a job must not fail its run then); a person's
client says at once that the server is not there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cwl_crunch.client import JobFilter, JobSpec
from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import Config, load_config
from cwl_crunch.errors import ApiError
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.worker.processes import this_worker

pytest.importorskip("fastapi")


def quiet(server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> ServerThread:
    """Its jobs stay queued: nothing runs, so stopping it waits for nothing."""
    monkeypatch.setattr(server.core.dispatcher, "start", lambda: None)
    monkeypatch.setattr(server.core.dispatcher, "wake", lambda: None)
    return server


@pytest.fixture
def restartable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                ) -> Iterator[tuple[Config, ServerThread, str]]:
    """A config, a server on it, and the token of a job this process runs (as a worker
    would: a restarted server leaves it alone while this process lives)."""
    config = load_config(home=tmp_path / "home", container_engine="none")
    server = quiet(ServerThread(config), monkeypatch).__enter__()
    job = server.core.submit(JobSpec(("true",), reuse=False))
    claim = server.core.claim_job(job.uuid, this_worker())
    assert claim is not None
    yield config, server, claim.token


def test_a_jobs_client_waits_for_its_server_to_come_back(restartable, monkeypatch):
    config, first, token = restartable
    client = HttpClient(config.replace(api_url=first.url, api_token=token))
    job_uuid = client.caller_job()
    assert job_uuid is not None
    first.__exit__(None, None, None)
    port = int(first.url.rsplit(":", 1)[1])
    servers: list[ServerThread] = []

    def restart() -> None:
        servers.append(quiet(ServerThread(config, port=port), monkeypatch).__enter__())

    timer = threading.Timer(2.0, restart)
    timer.start()
    try:
        assert client.get_job(job_uuid).state == "Running"  # refused for 2 s, then answered
    finally:
        timer.join()
        client.close()
        for server in servers:
            server.__exit__(None, None, None)


def test_a_persons_client_says_at_once_that_the_server_is_gone(restartable):
    config, server, _ = restartable
    client = HttpClient(config.replace(api_url=server.url, api_token=server.create_token()))
    assert client.caller_job() is None
    server.__exit__(None, None, None)
    with pytest.raises(ApiError, match="cannot reach the cluster"):
        client.list_jobs(JobFilter())
    client.close()
