"""cwl-crunch: CWL workflows whose every step is a job with content-addressed data.

The SDK::

    import cwl_crunch
    cluster = cwl_crunch.connect()
    future = cluster.submit(["sort", "in/data.txt"], stdout="out/sorted.txt", cores=0.5,
                            mounts={"in": cwl_crunch.CollectionMount(pdh)})
    print(future.output)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cwl_crunch._sdk import Cluster, Future, connect, wait_all
    from cwl_crunch.config import Config, load_config
    from cwl_crunch.errors import CrunchError, JobFailed
    from cwl_crunch.model import (
        ClusterClient,
        CollectionMount,
        JobRecord,
        JobSpec,
        LiteralMount,
    )

# Imported when first asked for: ``import cwl_crunch.config`` (every command, every
# worker) then loads the config, the errors and the model, not the SDK and its clients.
_HOMES = {"Cluster": "_sdk", "Future": "_sdk", "connect": "_sdk", "wait_all": "_sdk",
          "Config": "config", "load_config": "config", "CrunchError": "errors",
          "JobFailed": "errors", "ClusterClient": "model", "CollectionMount": "model",
          "JobRecord": "model", "JobSpec": "model", "LiteralMount": "model"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'cwl_crunch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cwl_crunch.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


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
