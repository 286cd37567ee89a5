"""The ``sites`` fixture: three peered clusters (see tests/federation_sites.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from federation_sites import Site, start_sites


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Site]]:
    started = start_sites(tmp_path_factory.mktemp("federation"))
    try:
        yield started
    finally:
        for site in started.values():
            site.server.__exit__(None, None, None)
