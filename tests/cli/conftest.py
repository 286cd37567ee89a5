"""The CLI's cluster, reached both ways: ``cli`` is the ``cluster`` fixture (embedded, or
a live server on loopback) with the environment the ``cwl-crunch`` command needs to reach
the same cluster the same way. Embedded, that is the cluster's home; over HTTP, the
server's URL and a person's token, and a home of the CLI's own that holds nothing of
the cluster (so that a command that quietly opened its home would find nothing there).

The environment is set in this process too, for tests that call ``main()`` directly.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cwl_crunch


@dataclasses.dataclass(frozen=True)
class CliCluster:
    mode: str
    """"embedded" or "http"."""
    cluster: cwl_crunch.Cluster
    env: dict[str, str]
    """The whole environment of a ``cwl-crunch`` subprocess."""
    home: Path
    """The cluster's own home (the server's, over HTTP): its records and store."""

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'records.sqlite'}"

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``cwl-crunch ARGV...`` as a process of its own."""
        return subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", *argv],
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.home.parent, check=False)


@pytest.fixture
def cli(cluster: cwl_crunch.Cluster, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> CliCluster:
    config = cluster.client.config  # type: ignore[attr-defined]
    mode = "http" if config.api_url else "embedded"
    crunch = {"CWL_CRUNCH_HOME": str(config.home)}
    if mode == "http":
        crunch.update(CWL_CRUNCH_API_URL=config.api_url, CWL_CRUNCH_API_TOKEN=config.api_token)
    for name, value in crunch.items():
        monkeypatch.setenv(name, value)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **crunch}
    if "PYTHONPATH" in os.environ:  # the code under test, not an installed copy
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return CliCluster(mode, cluster, env, tmp_path / "home")
