"""The ClusterClient interface and its implementations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cwl_crunch.config import Config
from cwl_crunch.model import (
    FINAL_STATES,
    Claim,
    ClusterClient,
    CollectionMount,
    EndReason,
    JobEvent,
    JobFilter,
    JobOutcome,
    JobRecord,
    JobSpec,
    LiteralMount,
    Mount,
    WorkerInfo,
)

if TYPE_CHECKING:
    from cwl_crunch.core import JobApiFactory


def open_client(config: Config, *, job_api: JobApiFactory | None = None) -> ClusterClient:
    """The client for the configured cluster: HTTP if an API URL is set, else embedded.
    ``job_api`` serves the embedded cluster to the jobs it runs (server.job_api.JobApi:
    without it their programs cannot reach it)."""
    if config.api_url:
        from cwl_crunch.client.http import HttpClient

        return HttpClient(config)
    from cwl_crunch.core import EmbeddedClient

    return EmbeddedClient(config, job_api=job_api)


__all__ = [
    "Claim",
    "ClusterClient",
    "CollectionMount",
    "EndReason",
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
