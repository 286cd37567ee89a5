"""The ClusterClient interface and its implementations."""

from __future__ import annotations

from cwl_crunch.client.base import (
    FINAL_STATES,
    Claim,
    ClusterClient,
    CollectionMount,
    JobEvent,
    JobFilter,
    JobOutcome,
    JobRecord,
    JobSpec,
    LiteralMount,
    Mount,
    WorkerInfo,
)
from cwl_crunch.config import Config


def open_client(config: Config) -> ClusterClient:
    """The client for the configured cluster: HTTP if an API URL is set, else embedded."""
    if config.api_url:
        from cwl_crunch.client.http import HttpClient

        return HttpClient(config)
    from cwl_crunch.client.embedded import EmbeddedClient

    return EmbeddedClient(config)


__all__ = [
    "Claim",
    "ClusterClient",
    "CollectionMount",
    "FINAL_STATES",
    "JobEvent",
    "JobFilter",
    "JobOutcome",
    "JobRecord",
    "JobSpec",
    "LiteralMount",
    "Mount",
    "WorkerInfo",
    "open_client",
]
