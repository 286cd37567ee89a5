"""cwl-crunch: CWL workflows whose every step is a job with content-addressed data.

The SDK::

    import cwl_crunch
    cluster = cwl_crunch.connect()
    future = cluster.submit(["sort", "in/data.txt"], stdout="out/sorted.txt", cores=0.5,
                            mounts={"in": cwl_crunch.CollectionMount(pdh)})
    print(future.output)
"""

from __future__ import annotations

from cwl_crunch._sdk import Cluster, Future, connect, wait_all
from cwl_crunch.client import (
    ClusterClient,
    CollectionMount,
    JobRecord,
    JobSpec,
    LiteralMount,
)
from cwl_crunch.config import Config, load_config
from cwl_crunch.errors import CrunchError, JobFailed

__version__ = "0.1.0"

__all__ = [
    "Cluster",
    "ClusterClient",
    "CollectionMount",
    "Config",
    "CrunchError",
    "Future",
    "JobFailed",
    "JobRecord",
    "JobSpec",
    "LiteralMount",
    "connect",
    "load_config",
    "wait_all",
]
