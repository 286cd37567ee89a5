"""Commands run where a cluster's records are (the server's host): ``token`` and
``release``. What only the host's records may decide is not reachable through the API."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cwl_crunch.config import Config

if TYPE_CHECKING:
    from cwl_crunch.core import ClusterCore


def add_database_option(*parsers: argparse.ArgumentParser) -> None:
    for parser in parsers:
        parser.add_argument("--database", metavar="URL",
                            help="records database (default: the config's database_url)")


def with_database(config: Config, database: str | None) -> Config:
    """``config`` with the ``--database`` given, if any."""
    return config.replace(database_url=database) if database else config


@contextlib.contextmanager
def host_core(config: Config) -> Iterator[ClusterCore]:
    """The cluster's core, opened here (not through its API), closed afterwards."""
    from cwl_crunch.core import ClusterCore  # see cli.main: start-up time

    core = ClusterCore(config.replace(api_url="", api_token=""))
    try:
        yield core
    finally:
        core.close()
