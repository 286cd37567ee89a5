"""The records tests run on each database cwl-crunch supports: SQLite, and PostgreSQL
(marked ``postgres``: skipped without a server, see ``postgres_url`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cwl_crunch.records.database import Database

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty records database: a new SQLite file, or an emptied PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/r.sqlite"
    url: str = request.getfixturevalue("postgres_fresh_url")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A Database on ``database_url``, closed after the test."""
    database = Database(database_url)
    yield database
    database.close()
