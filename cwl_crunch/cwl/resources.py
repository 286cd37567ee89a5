"""A step's cores and RAM, judged against the largest node of the cluster that runs it.

cwltool's own executors judge a step against the host they run on; here the steps run on
the cluster, which may be a 2-core machine or SLURM nodes of 64 cores seen from a 2-core
login node. A step gets what its ResourceRequirement asks at least (``coresMin``,
``ramMin``; cwltool's default without a hook, and what the reuse key has always held).
When that is more than the largest node has, a hint is scaled down to the node (as
cwltool scales down to its host) with a warning, and a requirement fails before the
step is submitted, naming the step and the limit. ``fit_resources`` decides; the
runner asks the cluster for its largest node once (``ClusterClient.largest_node``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from cwltool.errors import WorkflowException

from cwl_crunch.model import NodeSize

MIB = 1 << 20


class ResourcesUnavailable(WorkflowException):
    """A step's ResourceRequirement (under ``requirements``) that no node can meet."""


@dataclasses.dataclass(frozen=True)
class Fitted:
    resources: dict[str, int | float]
    """What cwltool's ``select_resources`` hook returns: cores, ram (MiB), tmpdirSize,
    outdirSize (and cudaDeviceCount when asked for)."""
    warnings: tuple[str, ...] = ()


def fit_resources(request: Mapping[str, int | float], node: NodeSize, *, required: bool,
                  step: str) -> Fitted:
    """``request`` is cwltool's evaluated request (coresMin, ramMin in MiB, ...);
    ``required``: the ResourceRequirement is under ``requirements`` (else a hint, or
    none: cwltool's defaults). Raises ResourcesUnavailable for a requirement no node
    meets."""
    cores, ram = float(request["coresMin"]), float(request["ramMin"])
    node_ram = node.ram // MIB
    too_much = []
    if cores > node.cores:
        too_much.append((f"{cores:g} cores (coresMin)", f"{node.cores:g} cores"))
    if ram > node_ram:
        too_much.append((f"{ram:g} MiB of RAM (ramMin)", f"{node_ram} MiB"))
    warnings = []
    for asked, limit in too_much:
        if required:
            raise ResourcesUnavailable(
                f"[step {step}] requires {asked}, but the largest node of the cluster "
                f"has {limit}: no node can run it")
        warnings.append(f"[step {step}] asks for {asked} in a hint; the largest node of "
                        f"the cluster has {limit}: it gets {limit}")
    # As given when it fits: $(runtime.cores) prints 1, not 1.0.
    node_cores = int(node.cores) if node.cores.is_integer() else node.cores
    resources: dict[str, int | float] = {
        "cores": request["coresMin"] if cores <= node.cores else node_cores,
        "ram": min(math.ceil(ram), node_ram),
        "tmpdirSize": math.ceil(request["tmpdirMin"]),
        "outdirSize": math.ceil(request["outdirMin"]),
    }
    if "cudaDeviceCountMin" in request:
        resources["cudaDeviceCount"] = request["cudaDeviceCountMin"]
    return Fitted(resources, tuple(warnings))
