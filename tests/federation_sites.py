"""Three clusters on one machine: three ``cwl-crunch server`` processes on loopback
ports, each with its own cluster id, home, records database and store, and peer tokens
exchanged (each cluster's config lists the other two with a token they issued to it).

One set per test module (starting three servers takes a few seconds); the module's
tests share it, so they look at what they made themselves, never at totals.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import httpx
from server_process import ServerProcess

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


def start_sites(root: Path, names: tuple[str, ...] = SITES) -> dict[str, Site]:
    """The clusters ``names`` under ``root``, peered with each other and started."""
    sites = {}
    for name in names:
        home = root / name / "home"
        home.mkdir(parents=True)
        (home / "config.toml").write_text(f'cluster_id = "{name}"\n')
        server = ServerProcess(home, root / name / "server.log")
        server.port = _free_port()
        sites[name] = Site(name, home, server)
    for site in sites.values():
        site.token = _issue(site.home)
        site.peer_tokens = {other: _issue(site.home, peer_id=other)
                            for other in sites if other != site.cluster_id}
    for site in sites.values():
        lines = [f'cluster_id = "{site.cluster_id}"']
        for other in sites.values():
            if other is not site:
                lines += [f"[peers.{other.cluster_id}]", f'url = "{other.url}"',
                          f"token = {json.dumps(other.peer_tokens[site.cluster_id])}"]
        (site.home / "config.toml").write_text("\n".join(lines) + "\n")
    for site in sites.values():
        site.server.start()
    return sites
