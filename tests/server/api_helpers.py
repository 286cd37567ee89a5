"""Helpers of the HTTP API tests (tests/server/test_api_*.py and their neighbours)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import Config, load_config
from cwl_crunch.records.blob_signing import BlobSigner, signer_for, token_uuid_of
from cwl_crunch.records.jobs import JOBS
from cwl_crunch.server.serve import ServerThread


def api_config(home: Path, **overrides: Any) -> Config:
    """A quick-polling cluster with no container engine (nothing is pulled or run in one)."""
    return load_config(home=home, poll_interval=0.05, container_engine="none", **overrides)


def http_client(server: ServerThread, token: str) -> HttpClient:
    return HttpClient(server.core.config.replace(api_url=server.url, api_token=token))


def raw_http(server: ServerThread, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30)


def error_body(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response's JSON error body, checked: that status, and ``error`` and ``detail``
    both non-empty strings (what every refusal of the API looks like)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


def job_count(server: ServerThread) -> int:
    """Job records in the server's database."""
    with server.core.database.reading() as connection:
        return int(connection.scalar(select(func.count()).select_from(JOBS)) or 0)


def store_files(server: ServerThread) -> list[str]:
    """Every block and manifest file in the server's store (not its tmp or cache)."""
    root = server.core.store.root
    return sorted(str(path.relative_to(root)) for top in ("blocks", "manifests")
                  for path in (root / top).rglob("*") if path.is_file())


def server_signer(server: ServerThread) -> BlobSigner:
    """A signer with the server's own key (read from its home, as a worker reads it)."""
    config = server.core.config
    return signer_for(config.home, config.blob_signing_key, config.blob_signature_ttl)


def signed_for(server: ServerThread, locator: str, token: str, now: float | None = None) -> str:
    """``locator`` signed as the server signs it for ``token`` (at ``now``)."""
    return server_signer(server).sign(locator, token_uuid_of(token), now)
