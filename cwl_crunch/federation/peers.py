"""Reaching a peer: a client with the token it issued to this cluster, and a probe of
whether it answers (``cwl-crunch peers``)."""

from __future__ import annotations

import dataclasses
import time

import httpx

from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import Config, Peer

HELLO = "/api/v1/federation/hello"
PROBE_TIMEOUT = 5.0
"""Seconds a probe waits for a peer's answer."""


def peer_client(config: Config, peer: Peer, *, reconnect_for: float = 0.0) -> HttpClient:
    """An HTTP client of ``peer``, with the token that peer issued to this cluster."""
    return HttpClient(config.replace(api_url=peer.url, api_token=peer.token, peers={}),
                      reconnect_for=reconnect_for)


@dataclasses.dataclass(frozen=True)
class PeerStatus:
    cluster_id: str
    url: str
    answers: bool
    version: str | None = None
    round_trip: float | None = None
    """Seconds of the probe's request."""
    problem: str | None = None
    """Why it does not answer as a peer should (down, refused token, another id)."""


def probe(peer: Peer, *, timeout: float = PROBE_TIMEOUT) -> PeerStatus:
    """Ask ``peer`` who it is, with its token: it answers if it is up, takes the token
    and says it is the cluster the config names."""
    started = time.monotonic()
    try:
        answer = httpx.get(peer.url + HELLO, timeout=timeout,
                           headers={"Authorization": f"Bearer {peer.token}"})
    except httpx.HTTPError as error:
        return PeerStatus(peer.cluster_id, peer.url, False,
                          problem=f"does not answer: {error or type(error).__name__}")
    took = time.monotonic() - started
    if answer.status_code != 200:
        detail = _detail(answer)
        return PeerStatus(peer.cluster_id, peer.url, False, round_trip=took,
                          problem=f"HTTP {answer.status_code}: {detail}")
    body = answer.json()
    if body.get("cluster_id") != peer.cluster_id:
        return PeerStatus(peer.cluster_id, peer.url, False, body.get("version"), took,
                          problem=f"it is cluster {body.get('cluster_id')!r}, not "
                                  f"{peer.cluster_id!r}")
    return PeerStatus(peer.cluster_id, peer.url, True, body.get("version"), took)


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail") or answer.text)
    except ValueError:
        return answer.text[:200]
