"""Property-based tests of the whole HTTP API from its own OpenAPI document: schemathesis
(``pip install schemathesis``) sends valid and invalid requests, boundary values first,
to every operation of a live server with a person's token; no answer may be a server
error. One test per operation, named after it.

Generation is seeded (``SEED``) and derandomized: every machine sends the same cases, so
CI gives the same answer everywhere (on a fresh machine it once generated a 180 KB query
string that the machines where this was written never had; test_http_limits.py keeps
that case, and every other one found here, as an explicit test).

Jobs submitted here are never run: the server's dispatcher is switched off, so no
generated command is executed on this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import api_config

from cwl_crunch.server.serve import ServerThread

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

SEED = 20261201
"""Any fixed number: schemathesis derives each operation's seed from it."""
EXAMPLES = 30
"""Random examples per operation, after the boundary values: ~30 s per database."""
STREAM = "/api/v1/events/stream"
"""Never ends while the client reads it: test_events_resume.py covers it."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def quiet_server(request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    """A server on either records database (PostgreSQL refuses more than SQLite: NUL in
    text, 32-bit integers) whose dispatcher never starts."""
    url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_fresh_url")
    with ServerThread(api_config(tmp_path / "home", database_url=url)) as server:
        dispatcher = server.core.dispatcher
        monkeypatch.setattr(dispatcher, "start", lambda: None)
        monkeypatch.setattr(dispatcher, "wake", lambda: None)
        yield server


@pytest.fixture
def person_headers(quiet_server: ServerThread) -> dict[str, str]:
    return {"Authorization": f"Bearer {quiet_server.create_token()}"}


@pytest.fixture
def api_schema(quiet_server: ServerThread) -> Any:
    schema = schemathesis.openapi.from_url(f"{quiet_server.url}/openapi.json")
    schema.config.seed = SEED
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    max_examples=EXAMPLES, deterministic=True)
    return schema


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=STREAM)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_error(case: Any, person_headers: dict[str, str]) -> None:
    if case.query and "timeout" in case.query:
        case.query["timeout"] = 0  # the long poll waits up to 30 s per example otherwise
    case.call_and_validate(headers=person_headers, checks=[not_a_server_error], timeout=30)


def test_the_schema_names_every_operation(api_server: ServerThread) -> None:
    """The OpenAPI document the test above walks covers every route of the app."""
    import httpx

    paths = httpx.get(f"{api_server.url}/openapi.json").json()["paths"]
    operations = {(method.upper(), path) for path, item in paths.items() for method in item}
    assert len(operations) >= 19, sorted(operations)
    assert ("GET", STREAM) in operations
    assert ("PUT", "/api/v1/blocks/{locator}") in operations
