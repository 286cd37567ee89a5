"""Three clusters on one machine: three ``cwl-crunch server`` processes on loopback
ports, each with its own cluster id, home, records database and store, and peer tokens
exchanged (each cluster's config lists the other two with a token they issued to it).

One set per test module (starting three servers takes a few seconds); the module's
tests share it, so they look at what they made themselves, never at totals.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from server_process import ROOT, ServerProcess

from cwl_crunch.config import load_config
from cwl_crunch.core import ClusterCore

SITES = ("sitea", "siteb", "sitec")


@dataclasses.dataclass
class Site:
    cluster_id: str
    home: Path
    server: ServerProcess
    token: str = ""
    """A person's token of this cluster."""
    peer_tokens: dict[str, str] = dataclasses.field(default_factory=dict)
    """Tokens this cluster issued to each other cluster, by that cluster's id."""

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, method: str, path: str, *, token: str | None = None,
            **kwargs: Any) -> httpx.Response:
        """A request to this cluster's API (``/api/v1`` + path), as ``token`` (default:
        its person's)."""
        return httpx.request(method, f"{self.url}/api/v1{path}", timeout=120,
                             headers={"Authorization": f"Bearer {token or self.token}"},
                             **kwargs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _issue(home: Path, **kwargs: Any) -> str:
    core = ClusterCore(load_config(home=home))
    try:
        return core.create_token(**kwargs)
    finally:
        core.close()


def start_sites(root: Path, names: tuple[str, ...] = SITES,
                dispatchers: dict[str, str] | None = None,
                engines: dict[str, str] | None = None) -> dict[str, Site]:
    """The clusters ``names`` under ``root``, peered with each other and started;
    ``dispatchers``: a cluster's dispatcher other than local (``{"sitec": "slurm"}``);
    ``engines``: a cluster's container engine (default: none)."""
    sites = {}
    for name in names:
        home = root / name / "home"
        home.mkdir(parents=True)
        (home / "config.toml").write_text(f'cluster_id = "{name}"\n')
        server = ServerProcess(home, root / name / "server.log")
        if name in (engines or {}):
            server.environment["CWL_CRUNCH_CONTAINER_ENGINE"] = (engines or {})[name]
        server.port = _free_port()
        sites[name] = Site(name, home, server)
    for site in sites.values():
        site.token = _issue(site.home)
        site.peer_tokens = {other: _issue(site.home, peer_id=other)
                            for other in sites if other != site.cluster_id}
    for site in sites.values():
        lines = [f'cluster_id = "{site.cluster_id}"']
        if site.cluster_id in (dispatchers or {}):
            lines.append(f'dispatcher = "{(dispatchers or {})[site.cluster_id]}"')
        for other in sites.values():
            if other is not site:
                lines += [f"[peers.{other.cluster_id}]", f'url = "{other.url}"',
                          f"token = {json.dumps(other.peer_tokens[site.cluster_id])}"]
        (site.home / "config.toml").write_text("\n".join(lines) + "\n")
    for site in sites.values():
        site.server.start()
    return sites


WORKFLOWS = Path(__file__).parent / "federation" / "workflows"


@dataclasses.dataclass
class FederatedRun:
    returncode: int
    outputs: dict[str, Any]
    stderr: str
    run_uuid: str | None


def runner_process(site: Site, workflow: str, inputs: dict[str, Any], tmp_path: Path,
                   *extra: str, containers: bool = False) -> subprocess.Popen[str]:
    """``cwl-crunch-runner --cluster <site>`` of a workflow in WORKFLOWS, as the site's
    person, started (stdout and stderr piped); the outputs in ``tmp_path/out``.
    ``containers``: run the tools' containers (default: ``--no-container``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CWL_CRUNCH_")}
    env.update(CWL_CRUNCH_API_TOKEN=site.token, CWL_CRUNCH_HOME=str(tmp_path / "home"),
               PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "cwl_crunch.cli.runner", "--cluster", site.url,
         *([] if containers else ["--no-container"]), "--outdir", str(tmp_path / "out"),
         *extra,
         str(WORKFLOWS / workflow), str(tmp_path / "inputs.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_workflow(site: Site, workflow: str, inputs: dict[str, Any], tmp_path: Path,
                 *extra: str, timeout: float = 300, containers: bool = False,
                 ) -> FederatedRun:
    """``runner_process`` to its end, with the run it recorded at ``site`` (if any)."""
    before = {job["uuid"] for job in site.api("GET", "/jobs?top_level=true&limit=1000").json()}
    with runner_process(site, workflow, inputs, tmp_path, *extra,
                        containers=containers) as runner:
        try:
            stdout, stderr = runner.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            runner.kill()
            raise
    runs = [job["uuid"] for job in site.api("GET", "/jobs?top_level=true&limit=1000").json()
            if job["uuid"] not in before]
    outputs = json.loads(stdout) if stdout.strip().startswith("{") else {}
    return FederatedRun(runner.returncode, outputs, stderr, runs[0] if runs else None)


def children(sites: dict[str, Site], uuid: str) -> list[dict[str, Any]]:
    """The children of job ``uuid`` on every cluster (a step's remote runner is on
    another cluster than the step)."""
    found = []
    for site in sites.values():
        found += site.api("GET", f"/jobs?parent={uuid}&limit=1000").json()
    return found


def leaves(sites: dict[str, Site], uuid: str) -> list[dict[str, Any]]:
    """The jobs below ``uuid`` that ran a command (no children of their own), on
    whichever cluster they ran, with a "cluster" key added. A reused job stands for the
    one whose work it reused (a reused runner's steps are that runner's)."""
    found = []
    for child in children(sites, uuid):
        below = leaves(sites, child["reused_job_uuid"] or child["uuid"])
        found += below or [{**child, "cluster": child["uuid"][:5]}]
    return found


def tags_by_cluster(sites: dict[str, Site], uuid: str) -> dict[str, str]:
    """tag.cwl's steps below ``uuid``: tag -> the cluster it ran on."""
    placed = {}
    for leaf in leaves(sites, uuid):
        command = leaf["spec"]["command"]
        if command[:2] == ["sh", "-c"]:
            placed[command[-1]] = leaf["cluster"]
    return placed


def descendants(sites: dict[str, Site], uuid: str) -> list[dict[str, Any]]:
    """Every job below ``uuid`` on every cluster (reused ones as they are)."""
    found = []
    for child in children(sites, uuid):
        found += [child, *descendants(sites, child["uuid"])]
    return found
