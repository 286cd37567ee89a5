"""Shared fixtures: a private embedded cluster per test, and a clean environment."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from leftovers import cancel_unfinished
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

import cwl_crunch
from cwl_crunch.containers import find_engine
from cwl_crunch.containers.engine import connect
from cwl_crunch.errors import EngineUnavailable


@pytest.fixture(autouse=True)
def _clean_cwl_crunch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's CWL_CRUNCH_* settings out of every test."""
    for name in list(os.environ):
        if name.startswith("CWL_CRUNCH_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["embedded", "http"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[cwl_crunch.Cluster]:
    """A cluster whose home is under this test's tmp_path, reached two ways: embedded in
    this process, and over HTTP through a ``cwl-crunch server`` on that home (so the two
    ClusterClient implementations cannot drift apart).

    Jobs a test left unfinished are cancelled first: closing waits for running jobs,
    and a failed test must not hang on its ``sleep 60``.
    """
    with contextlib.ExitStack() as stack:
        if request.param == "embedded":
            cl = cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05)
        else:
            from cwl_crunch.config import load_config
            from cwl_crunch.server.serve import ServerThread

            server = stack.enter_context(ServerThread(
                load_config(home=tmp_path / "home", poll_interval=0.05)))
            cl = cwl_crunch.connect(home=tmp_path / "client-home", api_url=server.url,
                                    api_token=server.create_token())
        yield from _cancelling_leftovers(cl)


def _cancelling_leftovers(cl: cwl_crunch.Cluster) -> Iterator[cwl_crunch.Cluster]:
    try:
        yield cl
    finally:
        try:
            cancel_unfinished(cl.client)
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


# PostgreSQL ----------------------------------------------------------------------------

POSTGRES_DEFAULT_URL = "postgresql+psycopg://crunch:crunch@127.0.0.1:5432/crunch_test"
"""What ``scripts/postgres-setup.sh`` makes (as root) and prints."""


def _service_missing(message: str) -> NoReturn:
    if os.environ.get("TESTS_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _drop_stale_databases(connection: Connection, prefix: str) -> None:
    """Drop the databases of earlier sessions on this machine whose pytest process is
    gone (killed before its teardown ran): their names end with that process's pid."""
    names = connection.execute(
        text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
        {"pattern": prefix.replace("_", r"\_") + r"\_%"}).scalars().all()
    for name in names:
        match = re.fullmatch(re.escape(prefix) + r"_\w+?_(\d+)", name)
        if match is not None and not Path(f"/proc/{match.group(1)}").exists():
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database for this test session, dropped at its end.

    One per session and xdist worker (``<database>_<worker>_<pid>``), made through
    ``TESTS_POSTGRES_URL`` (a role allowed to create databases), else through
    POSTGRES_DEFAULT_URL. No server answering, or no psycopg: the test is skipped, or
    fails when TESTS_REQUIRE_SERVICES=1.
    """
    try:
        import psycopg  # noqa: F401  (the driver the URLs name)
    except ImportError:
        _service_missing("no PostgreSQL driver: pip install 'psycopg[binary]'")
    base = make_url(os.environ.get("TESTS_POSTGRES_URL") or POSTGRES_DEFAULT_URL)
    prefix = base.database or "crunch_test"
    name = f"{prefix}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool,
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            if base.host in (None, "localhost", "127.0.0.1", "::1"):
                _drop_stale_databases(connection, prefix)
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        _service_missing(f"no PostgreSQL server at {base}: {' '.join(str(error.orig).split())} "
                         "(scripts/postgres-setup.sh starts one, as root)")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _postgres_schema_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT", pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_fresh_url(postgres_url: str, _postgres_schema_engine: Engine) -> str:
    """``postgres_url`` emptied: the tables and sequences earlier tests made are dropped
    (about 10 ms; a new database per test would take longer)."""
    with _postgres_schema_engine.connect() as connection:
        # Fail, not hang, if a test left a transaction holding one of the tables.
        connection.execute(text("SET lock_timeout = '20s'"))
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    return postgres_url


# SLURM ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def slurm_cpus() -> int:
    """CPUs of the node of the SLURM cluster ``scripts/slurm-setup.sh`` starts (one node).
    No cluster answering: the test is skipped, or fails when TESTS_REQUIRE_SERVICES=1.

    Tests using it also take ``pytest.mark.xdist_group("slurm")``: they share the node,
    and some take it down on purpose."""
    try:
        shown = subprocess.run(["sinfo", "--noheader", "--format", "%c"], text=True,
                               capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        _service_missing(f"no SLURM: {error} (scripts/slurm-setup.sh starts one, as root)")
    if shown.returncode != 0 or not shown.stdout.split():
        _service_missing(f"no SLURM: sinfo said {shown.stderr.strip()!r} "
                         "(scripts/slurm-setup.sh starts one, as root)")
    return int(shown.stdout.split()[0])
