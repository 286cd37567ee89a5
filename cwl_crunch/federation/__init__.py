"""Federation: the peers a cluster knows, and moving collections between clusters."""

from __future__ import annotations

from cwl_crunch.federation.peers import PeerStatus, peer_client, probe
from cwl_crunch.federation.pull import PullReport, pull_collection

__all__ = ["PeerStatus", "PullReport", "peer_client", "probe", "pull_collection"]
