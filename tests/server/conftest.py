"""Shared fixtures of the HTTP API tests: a live server on this test's own home and a
person's token for it (helper functions are in api_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_helpers import api_config, http_client, raw_http

from cwl_crunch.client.http import HttpClient
from cwl_crunch.server.serve import ServerThread


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[ServerThread]:
    """``cwl-crunch server`` on a free port, over a cluster home of this test's own."""
    with ServerThread(api_config(tmp_path / "home")) as server:
        yield server


@pytest.fixture
def api_token(api_server: ServerThread) -> str:
    """A person's token for ``api_server``."""
    return api_server.create_token()


@pytest.fixture
def api_client(api_server: ServerThread, api_token: str) -> Iterator[HttpClient]:
    """An HttpClient of ``api_server`` with a person's token."""
    client = http_client(api_server, api_token)
    yield client
    client.close()


@pytest.fixture
def api_http(api_server: ServerThread, api_token: str) -> Iterator[httpx.Client]:
    """Raw httpx on ``api_server``'s /api/v1 with a person's token (malformed requests)."""
    with raw_http(api_server, api_token) as http:
        yield http
