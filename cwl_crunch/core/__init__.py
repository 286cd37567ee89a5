"""The cluster core: one ClusterCore per cluster in a process, and the embedded client
over it. See docs/design.md for where this sits among the layers."""

from __future__ import annotations

from cwl_crunch.core.cluster import ClusterCore, JobApi, JobApiFactory, cluster_environment
from cwl_crunch.core.embedded import EmbeddedClient

__all__ = ["ClusterCore", "EmbeddedClient", "JobApi", "JobApiFactory", "cluster_environment"]
